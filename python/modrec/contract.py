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
"""

import json

from .classes import UNKNOWN_CLASS, canonical_class_name

CONTRACT_VERSION = "1"

INPUT_NAME = "iq"
PROBS_OUTPUT_NAME = "probs"
BATCH_AXIS_NAME = "batch"
IQ_ROWS = 2

# Every metadata value is stored as a string (ONNX metadata_props are string -> string).
REQUIRED_METADATA = (
    "classes",  # JSON list of class names, index i = output column i
    "frame_len",  # int: complex samples per frame
    "samples_per_symbol",  # int: the oversampling the model was trained at
    "architecture",  # registry name, e.g. "cnn3"
    "distillation",  # "none" or the distillation method
    "pruning",  # "none" or "<criterion>:<ratio>"
    "exits",  # int: number of exits (1 = plain model)
    "params",  # int: trainable parameters
    "flops",  # int: floating-point operations per frame (multiply-add = 2)
    "training",  # JSON object: command, seed, data description
    "version",  # contract version this model was written for
)

INT_METADATA = ("frame_len", "samples_per_symbol", "exits", "params", "flops")
JSON_METADATA = ("classes", "training")


class ContractError(ValueError):
    """A model file does not honour the model contract; the message names file and field."""


def encode_metadata(values):
    """Turn python values into the string -> string mapping stored in ``metadata_props``.

    ``values`` must hold every key of REQUIRED_METADATA except ``version`` (added here).
    Extra keys are kept (as strings, JSON for non-strings) so later capabilities can add fields.
    """
    values = dict(values)
    values.setdefault("version", CONTRACT_VERSION)
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
        try:
            decoded[key] = json.loads(props[key])
        except json.JSONDecodeError as err:
            raise ContractError(
                f"{source}: metadata field '{key}' is not valid JSON ({err}): {props[key][:80]!r}"
            ) from None
    classes = decoded["classes"]
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) and c for c in classes)):
        raise ContractError(
            f"{source}: metadata field 'classes' should be a non-empty JSON list of strings (none empty), "
            f"got {props['classes'][:80]!r}"
        )
    keys = [canonical_class_name(c) for c in classes]
    twins = sorted({c for c, k in zip(classes, keys) if keys.count(k) > 1})
    if twins:
        raise ContractError(f"{source}: metadata field 'classes' names one class more than once ({', '.join(twins)}; "
                            f"names are compared across spellings: 16QAM = QAM16); expected distinct classes")
    if canonical_class_name(UNKNOWN_CLASS) in keys:
        raise ContractError(f"{source}: metadata field 'classes' holds {UNKNOWN_CLASS!r}, the label the classifier "
                            f"gives frames it cannot classify; expected modulation names only")
    for key in ("frame_len", "samples_per_symbol"):
        if decoded[key] <= 0:
            raise ContractError(f"{source}: metadata field '{key}' must be > 0, got {decoded[key]}")
    if not isinstance(decoded["training"], dict):
        raise ContractError(
            f"{source}: metadata field 'training' should be a JSON object, got {props['training'][:80]!r}"
        )
    if decoded["version"] != CONTRACT_VERSION:
        raise ContractError(
            f"{source}: metadata field 'version' is {decoded['version']!r}, but this gr-modrec reads "
            f"contract version {CONTRACT_VERSION!r} (re-export the model, or update gr-modrec)"
        )
    if decoded["exits"] < 1:
        raise ContractError(f"{source}: metadata field 'exits' must be >= 1, got {decoded['exits']}")
    return decoded
