"""The ONNX model contract shared by the exporter (training side) and the runtime.

This module imports only the standard library (and classes.py, which does too): both the torch-only training package and the
torch-free runtime import it, so the metadata key names and the tensor layout cannot drift
apart between the side that writes a model and the side that reads it.

A model that honours the contract has:
  * one input, float32, shape (N, 2, frame_len): raw I/Q rows (row 0 = I, row 1 = Q), any gain;
    every normalisation happens inside the graph;
  * a first output, float32, shape (N, n_classes): class probabilities (softmax in the graph);
  * a dynamic batch axis N;
  * ``metadata_props`` holding every key in ``REQUIRED_METADATA`` (all values are strings).

Version 2 adds, all optional, so that a model can say what is *not* one of its classes:
  * an output named ``SNR_OUTPUT_NAME``, float32 (N,): the estimated per-sample SNR of each
    frame in dB, under the synthetic generator's definition (training/data/generator.py);
  * an output named ``LOGITS_OUTPUT_NAME``, float32 (N, n_classes): the scores before the softmax;
  * ``NOISE_CLASS``: the class meaning "no signal in this frame" (receiver noise, silence);
  * ``UNKNOWN_SCORE`` and ``UNKNOWN_THRESHOLD``: an open-set score and its calibrated threshold; a
    frame whose score is above the threshold is ``unknown`` (a modulation the model never learnt),
    ``UNKNOWN_FALSE_RATE`` the rate of known frames the threshold calls unknown on validation data.
A reader of version 2 reads every version-1 model unchanged (READABLE_VERSIONS).
"""

import json
import math
from dataclasses import dataclass

from .classes import UNKNOWN_CLASS, canonical_class_name

CONTRACT_VERSION = "2"  # what the exporter writes
READABLE_VERSIONS = ("1", "2")  # what the runtime reads

INPUT_NAME = "iq"
PROBS_OUTPUT_NAME = "probs"
SNR_OUTPUT_NAME = "snr_db"  # version 2, optional: (N,) estimated per-sample SNR, dB
LOGITS_OUTPUT_NAME = "logits"  # version 2, optional: (N, C) scores before the softmax
BATCH_AXIS_NAME = "batch"
IQ_ROWS = 2

# Metadata keys. Every metadata value is stored as a string (ONNX metadata_props are string ->
# string); no other module spells a key out.
CLASSES = "classes"  # JSON list of class names, index i = output column i
FRAME_LEN = "frame_len"  # int: complex samples per frame
SAMPLES_PER_SYMBOL = "samples_per_symbol"  # int: the oversampling the model was trained at
ARCHITECTURE = "architecture"  # registry name, e.g. "cnn3"
DISTILLATION = "distillation"  # "none" or the distillation method
PRUNING = "pruning"  # PRUNING_NONE or "<criterion>:<ratio>" (encode_pruning / decode_pruning)
EXITS = "exits"  # int: number of exits (1 = plain model)
PARAMS = "params"  # int: trainable parameters
FLOPS = "flops"  # int: floating-point operations per frame (multiply-add = 2)
TRAINING = "training"  # JSON object: command, seed, data description
VERSION = "version"  # contract version this model was written for

REQUIRED_METADATA = (CLASSES, FRAME_LEN, SAMPLES_PER_SYMBOL, ARCHITECTURE, DISTILLATION, PRUNING, EXITS, PARAMS,
                     FLOPS, TRAINING, VERSION)

INT_METADATA = (FRAME_LEN, SAMPLES_PER_SYMBOL, EXITS, PARAMS, FLOPS)
JSON_METADATA = (CLASSES, TRAINING)

PRUNING_NONE = "none"  # the PRUNING value of a model that was not pruned

# Optional keys of an early-exit model's entry file (training/exits/export.py writes them, the
# runtime reads them through decode_exit_metadata). An entry file is an ordinary contract model
# (the whole network up to its final exit) with EXITS = K > 1 and:
EXIT_STAGES = "exit_stages"  # JSON list of K stage file names, beside the entry file, in order
EXIT_POLICY = "exit_policy"  # the exit rule: one of EXIT_POLICIES
EXIT_THRESHOLDS = "exit_thresholds"  # JSON list of K - 1 numbers, one per early exit
EXIT_GATES = "exit_gates"  # policy "gate": JSON list of K - 1 objects {w1, b1, w2, b2}, one per early exit
EXIT_FLOPS = "exit_flops"  # optional: JSON list of K ints, FLOPs of each stage (its blocks and its exit head)
EXIT_ALL = "exit_all"  # optional: file name of the graph that computes every exit in one run
EXIT_PLACEMENTS = "exit_placements"  # optional: JSON list of K - 1 ints, backbone blocks before each early exit
EXIT_METADATA = (EXIT_STAGES, EXIT_POLICY, EXIT_THRESHOLDS, EXIT_GATES, EXIT_FLOPS, EXIT_ALL, EXIT_PLACEMENTS)

# Keys of a stage file and of the all-exits file (informational: the runtime reads neither).
STAGE_INDEX = "stage"  # int: which stage this file is (not in the all-exits file)
STAGE_COUNT = "stages"  # int: K
STAGE_ENTRY = "entry"  # file name of the entry file
# (and CLASSES, as in the entry file)

# The exit rules (runtime/early_exit.py: uncertainty): normalised entropy, 1 - max probability, a
# learned gate per early exit (weights in EXIT_GATES).
POLICY_ENTROPY = "entropy"
POLICY_MAXPROB = "maxprob"
POLICY_GATE = "gate"
EXIT_POLICIES = (POLICY_ENTROPY, POLICY_MAXPROB, POLICY_GATE)


# Optional keys of version 2 (decode_open_set_metadata decodes them): what a frame is when it is
# none of the model's modulations.
NOISE_CLASS = "noise_class"  # name of the class (one of CLASSES) that means "no signal"
UNKNOWN_SCORE = "unknown_score"  # the open-set score UNKNOWN_THRESHOLD applies to: one of UNKNOWN_SCORES
UNKNOWN_THRESHOLD = "unknown_threshold"  # float: a frame whose score is above it is unknown
UNKNOWN_FALSE_RATE = "unknown_false_rate"  # float in [0, 1]: known frames called unknown at the threshold (validation)
OPEN_SET_METADATA = (NOISE_CLASS, UNKNOWN_SCORE, UNKNOWN_THRESHOLD, UNKNOWN_FALSE_RATE)

# The open-set scores (runtime/open_set.py computes them; larger = less like a known class):
SCORE_MAXPROB = "maxprob"  # 1 - max softmax probability (Hendrycks & Gimpel, ICLR 2017)
SCORE_ENERGY = "energy"  # -logsumexp(logits) (Liu et al., NeurIPS 2020); needs the logits output
UNKNOWN_SCORES = (SCORE_MAXPROB, SCORE_ENERGY)

# Optional keys of any version, informational (the runtime reads a graph the same way whatever
# they say; `modrec models` and the cards show them):
CONV_LAYOUT = "conv_layout"  # how the graph computes its 1-D convolutions: one of CONV_LAYOUTS
CONV_LAYOUT_1D = "1d"  # Conv on (N, C, L)
CONV_LAYOUT_2D = "2d"  # Conv on (N, C, 1, L), (1 x k) kernels: ONNX Runtime's faster NCHWc path (training/conv2d_layout.py)
CONV_LAYOUTS = (CONV_LAYOUT_1D, CONV_LAYOUT_2D)
QUANTIZATION = "quantization"  # QUANTIZATION_NONE, or how the weights and activations were quantised
QUANTIZATION_NONE = "none"


class ContractError(ValueError):
    """A model file does not honour the model contract; the message names file and field."""


def encode_metadata(values):
    """Turn python values into the string -> string mapping stored in ``metadata_props``.

    ``values`` must hold every key of REQUIRED_METADATA except ``version`` (added here).
    Extra keys are kept (as strings, JSON for non-strings) so later capabilities can add fields.
    """
    values = dict(values)
    values.setdefault(VERSION, CONTRACT_VERSION)
    missing = [k for k in REQUIRED_METADATA if k not in values]
    if missing:
        raise ContractError(f"cannot export: metadata lacks {', '.join(missing)}")
    encoded = {}
    for key, value in values.items():
        if isinstance(value, str):
            encoded[key] = value
        elif key in INT_METADATA:
            encoded[key] = str(int(value))
        else:
            encoded[key] = json.dumps(value, sort_keys=True)
    return encoded


def decode_metadata(props, source="model"):
    """Parse and validate ``metadata_props`` (a str -> str mapping) into python values.

    The required fields come back decoded (ints, JSON); optional ones (the early-exit fields)
    stay as stored: ``decode_exit_metadata`` decodes those.
    Raises ContractError naming ``source`` and the offending field.
    """
    missing = [k for k in REQUIRED_METADATA if k not in props]
    if missing:
        raise ContractError(
            f"{source}: metadata_props lacks required field(s) {', '.join(missing)} "
            f"(expected all of {', '.join(REQUIRED_METADATA)})"
        )
    decoded = dict(props)
    for key in INT_METADATA:
        try:
            decoded[key] = int(props[key])
        except ValueError:
            raise ContractError(
                f"{source}: metadata field '{key}' should be an integer, got {props[key]!r}"
            ) from None
    for key in JSON_METADATA:
        decoded[key] = _json_field(props, key, source)
    classes = decoded[CLASSES]
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) and c for c in classes)):
        raise ContractError(
            f"{source}: metadata field '{CLASSES}' should be a non-empty JSON list of strings (none empty), "
            f"got {props[CLASSES][:80]!r}"
        )
    keys = [canonical_class_name(c) for c in classes]
    twins = sorted({c for c, k in zip(classes, keys) if keys.count(k) > 1})
    if twins:
        raise ContractError(f"{source}: metadata field '{CLASSES}' names one class more than once ({', '.join(twins)}; "
                            f"names are compared across spellings: 16QAM = QAM16); expected distinct classes")
    if canonical_class_name(UNKNOWN_CLASS) in keys:
        raise ContractError(f"{source}: metadata field '{CLASSES}' holds {UNKNOWN_CLASS!r}, the label the classifier "
                            f"gives frames it cannot classify; expected modulation names only")
    for key in (FRAME_LEN, SAMPLES_PER_SYMBOL):
        if decoded[key] <= 0:
            raise ContractError(f"{source}: metadata field '{key}' must be > 0, got {decoded[key]}")
    if not isinstance(decoded[TRAINING], dict):
        raise ContractError(
            f"{source}: metadata field '{TRAINING}' should be a JSON object, got {props[TRAINING][:80]!r}"
        )
    if decoded[VERSION] not in READABLE_VERSIONS:
        raise ContractError(
            f"{source}: metadata field '{VERSION}' is {decoded[VERSION]!r}, but this gr-modrec reads "
            f"contract versions {', '.join(READABLE_VERSIONS)} (re-export the model, or update gr-modrec)"
        )
    if decoded[EXITS] < 1:
        raise ContractError(f"{source}: metadata field '{EXITS}' must be >= 1, got {decoded[EXITS]}")
    return decoded


def _json_field(props, key, source):
    """``props[key]`` parsed as JSON (a value that is not a string is taken as already parsed)."""
    raw = props[key]
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise ContractError(f"{source}: metadata field '{key}' is not valid JSON ({err}): {raw[:80]!r}") from None


def _shown(value):
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text[:80])


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_early_exit(metadata):
    """Whether decoded metadata describes an early-exit entry file: more than one exit, and stage files."""
    return metadata.get(EXITS, 1) > 1 and EXIT_STAGES in metadata


@dataclass(frozen=True)
class ExitMetadata:
    """The early-exit fields of an entry file, decoded and checked (see decode_exit_metadata)."""

    stages: tuple  # K stage file names (as stored: relative to the entry file's directory)
    policy: str  # one of EXIT_POLICIES
    thresholds: tuple  # K - 1 floats
    gates: tuple = None  # policy gate: K - 1 dicts {w1, b1, w2, b2} as stored (the runtime checks the shapes)
    flops: tuple = None  # K ints, or None when the file does not say
    all_exits: str = None  # the all-exits file name, or None
    placements: tuple = None  # K - 1 ints, or None when the file does not say

    @property
    def n_exits(self):
        return len(self.stages)


def decode_exit_metadata(metadata, source="model"):
    """The early-exit fields of ``metadata`` (what decode_metadata returned for an entry file) as
    an ExitMetadata: JSON parsed, types and lengths checked against ``exits``. Raises
    ContractError naming ``source`` and the field."""
    for key in (EXIT_STAGES, EXIT_POLICY, EXIT_THRESHOLDS):
        if key not in metadata:
            raise ContractError(f"{source}: early-exit metadata lacks {key}")
    names = _json_field(metadata, EXIT_STAGES, source)
    if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):
        raise ContractError(f"{source}: metadata field '{EXIT_STAGES}' should be a non-empty JSON list of stage "
                            f"file names, got {_shown(metadata[EXIT_STAGES])}")
    policy = metadata[EXIT_POLICY]
    stored = _json_field(metadata, EXIT_THRESHOLDS, source)
    if not (isinstance(stored, list) and all(_number(t) for t in stored)):
        raise ContractError(f"{source}: metadata field '{EXIT_THRESHOLDS}' should be a JSON list of numbers, got "
                            f"{_shown(metadata[EXIT_THRESHOLDS])}")
    flops = _json_field(metadata, EXIT_FLOPS, source) if EXIT_FLOPS in metadata else None
    if flops is not None and not (isinstance(flops, list) and all(isinstance(f, int) and not isinstance(f, bool)
                                                                   and f >= 0 for f in flops)):
        raise ContractError(f"{source}: metadata field '{EXIT_FLOPS}' should be a JSON list of integers >= 0, got "
                            f"{_shown(metadata[EXIT_FLOPS])}")
    exits = metadata[EXITS]
    if exits != len(names) or len(stored) != len(names) - 1:
        raise ContractError(f"{source}: exits = {exits} but {len(names)} stage files and "
                            f"{len(stored)} thresholds (need exits and exits - 1)")
    if flops and len(flops) != len(names):
        raise ContractError(f"{source}: metadata field '{EXIT_FLOPS}' lists {len(flops)} stage cost(s) for "
                            f"{len(names)} stage files; expected one per stage")
    if policy not in EXIT_POLICIES:
        raise ContractError(f"{source}: {EXIT_POLICY} must be one of {', '.join(EXIT_POLICIES)}, got {policy!r}")
    gates = None
    if policy == POLICY_GATE:
        if EXIT_GATES not in metadata:
            raise ContractError(f"{source}: {EXIT_POLICY} is '{POLICY_GATE}' but the metadata lacks {EXIT_GATES}")
        gates = _json_field(metadata, EXIT_GATES, source)
        if not isinstance(gates, list) or len(gates) != len(names) - 1:
            raise ContractError(f"{source}: {EXIT_GATES} should list {len(names) - 1} gate(s), one per early exit")
        if not all(isinstance(g, dict) for g in gates):
            raise ContractError(f"{source}: {EXIT_GATES} should list JSON objects {{w1, b1, w2, b2}}, got "
                                f"{_shown(metadata[EXIT_GATES])}")
        gates = tuple(gates)
    all_exits = metadata.get(EXIT_ALL) or None
    if all_exits is not None and not isinstance(all_exits, str):
        raise ContractError(f"{source}: metadata field '{EXIT_ALL}' should be a file name, got {all_exits!r}")
    placements = _json_field(metadata, EXIT_PLACEMENTS, source) if EXIT_PLACEMENTS in metadata else None
    if placements is not None and not (isinstance(placements, list) and len(placements) == len(names) - 1
                                       and all(isinstance(p, int) and not isinstance(p, bool) for p in placements)):
        raise ContractError(f"{source}: metadata field '{EXIT_PLACEMENTS}' should be a JSON list of "
                            f"{len(names) - 1} integer(s), one per early exit, got {_shown(metadata[EXIT_PLACEMENTS])}")
    return ExitMetadata(stages=tuple(names), policy=policy, thresholds=tuple(float(t) for t in stored), gates=gates,
                        flops=None if flops is None else tuple(flops), all_exits=all_exits,
                        placements=None if placements is None else tuple(placements))


@dataclass(frozen=True)
class OpenSetMetadata:
    """The version-2 open-set fields of a model, decoded and checked (decode_open_set_metadata)."""

    noise_class: str = None  # the class meaning "no signal", or None
    score: str = None  # one of UNKNOWN_SCORES, or None: no calibrated unknown threshold
    threshold: float = None
    false_rate: float = None


def decode_open_set_metadata(metadata, source="model"):
    """The open-set fields of decoded ``metadata`` as an OpenSetMetadata (all None for a version-1
    model or one without them). Raises ContractError naming ``source`` and the field."""
    if metadata.get(VERSION) == "1":
        return OpenSetMetadata()
    noise = metadata.get(NOISE_CLASS) or None
    if noise is not None and noise not in metadata[CLASSES]:
        raise ContractError(f"{source}: metadata field '{NOISE_CLASS}' is {noise!r}, which is not one of its classes "
                            f"{metadata[CLASSES]}")
    score = metadata.get(UNKNOWN_SCORE) or None
    if (score is None) != (UNKNOWN_THRESHOLD not in metadata):
        raise ContractError(f"{source}: metadata fields '{UNKNOWN_SCORE}' and '{UNKNOWN_THRESHOLD}' go together; "
                            f"it has only one of them")
    if score is not None and score not in UNKNOWN_SCORES:
        raise ContractError(f"{source}: metadata field '{UNKNOWN_SCORE}' must be one of {', '.join(UNKNOWN_SCORES)}, "
                            f"got {score!r}")
    numbers = {}
    for key, low, high in ((UNKNOWN_THRESHOLD, -math.inf, math.inf), (UNKNOWN_FALSE_RATE, 0.0, 1.0)):
        if key not in metadata:
            continue
        try:
            numbers[key] = float(metadata[key])
        except (TypeError, ValueError):
            numbers[key] = math.nan
        if not (math.isfinite(numbers[key]) and low <= numbers[key] <= high):
            raise ContractError(f"{source}: metadata field '{key}' should be a finite number"
                                f"{'' if low == -math.inf else f' in [{low:g}, {high:g}]'}, got {_shown(metadata[key])}")
    return OpenSetMetadata(noise_class=noise, score=score, threshold=numbers.get(UNKNOWN_THRESHOLD),
                           false_rate=numbers.get(UNKNOWN_FALSE_RATE))


def encode_pruning(criterion=None, ratio=None):
    """The PRUNING value: PRUNING_NONE, or ``<criterion>:<ratio>`` (ratio as %g)."""
    if criterion is None:
        return PRUNING_NONE
    return f"{criterion}:{float(ratio):g}"


def decode_pruning(value, source="model"):
    """A PRUNING value as None (not pruned) or (criterion, ratio); ContractError naming ``source``
    and the field when it is neither ``none`` nor ``<criterion>:<ratio>`` with a ratio in (0, 1)."""
    if value == PRUNING_NONE:
        return None
    criterion, sep, ratio = str(value).rpartition(":")
    try:
        ratio = float(ratio)
    except ValueError:
        ratio = None
    if not sep or not criterion or ratio is None or not 0.0 < ratio < 1.0:
        raise ContractError(f"{source}: metadata field '{PRUNING}' should be '{PRUNING_NONE}' or "
                            f"'<criterion>:<ratio>' with a ratio in (0, 1), got {value!r}")
    return criterion, ratio
