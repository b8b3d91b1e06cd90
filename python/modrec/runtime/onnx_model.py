"""Torch-free inference for models that honour the model contract (see ``modrec.contract``).

Everything about a model file is checked once, at construction, so a flowgraph fails at start-up
with a message naming the file and the problem instead of deep inside a work() call.
"""

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import contract
from .open_set import open_set_score

# The first output holds class probabilities: rows >= 0 summing to 1. A float32 softmax is within
# about 1e-6 of that; the tolerance leaves room for half-precision and quantised heads, and is far
# below what a model without its softmax gives (logits: negative, rows summing anywhere).
PROB_TOL = 1e-3
# Batch sizes every model runs once at load: 1, and more than 1 (a graph that reshapes to batch 1
# while declaring a dynamic batch fails only on larger batches, i.e. on how a stream is chunked).
PROBE_BATCHES = (1, 3)
# Frames per session.run call: a larger batch is run in slices of this many. On the Intel Xeon
# development VM (AVX-512, 2026-12-01) ONNX Runtime ran 32-64 frames a call 1.1-1.2x faster than
# 256 back to back (a call's activations stay in cache; apps/bench_ort_settings.py, "frames per
# Session.run call"), and the classifier block, which gathers up to 256 frames while behind the
# stream, ran 1.08x (the default) and 1.12x (mobilenet1d_det-kd) the samples/s with its batches
# so sliced (paired, 6 rounds of 2 M samples, one core). On the AMD Zen 3 machine ONNX Runtime
# was flat from 16 frames a call up, so the slices cost it only their calls (~1 % at 64).
RUN_FRAMES = 64

# the most accurate shipped student under 1 MB (models/README.md) joined to the signal detector:
# contract version 2, with noise, unknown and the SNR estimate (models/OPEN_SET.md)
DEFAULT_MODEL_NAME = "mobilenet1d-skd-v2.onnx"
MODEL_DIR_ENV = "MODREC_MODEL_DIR"


def _package_dirs():
    here = Path(__file__).parent.parent
    dirs = [here]
    # A checkout may be reached through symlinks (tests/conftest.py links each of its files); the
    # models/ dir sits beside the real source tree, not beside the links.
    resolved = Path(__file__).resolve().parent.parent
    if resolved != here:
        dirs.append(resolved)
    return dirs


def model_search_dirs():
    """Directories searched for the default model and for models given by name, in order."""
    dirs = []
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        dirs.append(Path(env))
    for pkg in _package_dirs():
        # Installed: <prefix>/lib/python3.X/site-packages/gnuradio/modrec -> <prefix>/share/...
        dirs.append(pkg.parents[4] / "share" / "gr-modrec" / "models" if len(pkg.parents) > 4 else None)
    for pkg in _package_dirs():
        # Source checkout: python/modrec -> models/
        dirs.append(pkg.parents[1] / "models" if len(pkg.parents) > 1 else None)
    seen, ordered = set(), []
    for d in dirs:
        if d is not None and str(d) not in seen:
            seen.add(str(d))
            ordered.append(d)
    return ordered


def default_model_path():
    """Path of the default shipped student (DEFAULT_MODEL_NAME); FileNotFoundError lists where it looked."""
    dirs = model_search_dirs()
    for d in dirs:
        candidate = d / DEFAULT_MODEL_NAME
        if candidate.is_file():
            return str(candidate)
    places = "\n  ".join(str(d / DEFAULT_MODEL_NAME) for d in dirs)
    raise FileNotFoundError(
        f"default model {DEFAULT_MODEL_NAME} not found; searched (set {MODEL_DIR_ENV} to add a "
        f"directory):\n  {places}"
    )


# Early-exit exports write <entry>.stage<k>.onnx and <entry>.exits.onnx beside the entry file
# (training/exits/export.py): parts of one model that only its entry file puts together.
_PART_FILE = re.compile(r"^(?P<entry>.+)\.(?:stage(?P<stage>\d+)|exits)\.onnx$")


def _model_part(file_name):
    """(entry file name, what the file is) for an early-exit stage or all-exits file name, else None."""
    match = _PART_FILE.match(file_name)
    if match is None:
        return None
    what = "the all-exits file" if match["stage"] is None else f"stage file {match['stage']}"
    return match["entry"] + ".onnx", what


def shipped_models():
    """{name: path} of the models in model_search_dirs(): every ``<name>.onnx`` except the stage and
    all-exits files of early-exit models (the first directory holding a name wins)."""
    found = {}
    for d in model_search_dirs():
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.onnx")):
            if path.is_file() and _model_part(path.name) is None:
                found.setdefault(path.stem, str(path))
    return dict(sorted(found.items()))


def _shipped_names_line(name=None):
    names = list(shipped_models())
    if not names:
        return f"no shipped models found (set {MODEL_DIR_ENV} to a directory of .onnx files)"
    # case-folded: CNN3 is a typo of cnn3 as much as cnn4 is
    folded = {n.casefold(): n for n in names}
    close = [folded[m] for m in difflib.get_close_matches(name.casefold(), list(folded), n=1)] if name else []
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"shipped models{hint}: {', '.join(names)}"


def resolve_model(name_or_path=""):
    """The model file a user means: the one way every command and block turns ``--model`` /
    ``model_path`` into a path.

    Empty (or None): the shipped default (default_model_path). An existing file: itself. A bare
    name, with or without ``.onnx`` (``cnn3``, ``mobilenet1d-skd-v2``, ``cnn3.onnx``): the file
    of that name in model_search_dirs(). A path that exists but is not a file is returned as it
    is (the loader says what it is). Raises contract.ContractError for an early-exit model's stage
    or all-exits file, told by its name (``<entry>.stage<k>.onnx``, ``<entry>.exits.onnx``), whether
    or not it exists, naming the entry file to give instead; FileNotFoundError listing the shipped
    names and the places it looked for anything else.
    """
    if not name_or_path:
        return default_model_path()
    text = os.fsdecode(os.fspath(name_or_path))
    bare = os.sep not in text and not (os.altsep and os.altsep in text)
    file_name = text if text.endswith(".onnx") or not bare else text + ".onnx"
    part = _model_part(os.path.basename(file_name))
    if part is not None:
        entry, what = part
        if bare:
            entry_path = shipped_models().get(entry[: -len(".onnx")])
            instead = f"'{entry[: -len('.onnx')]}'" + (f" ({entry_path})" if entry_path else "")
        else:
            instead = os.path.join(os.path.dirname(text), entry)
        raise contract.ContractError(
            f"{text}: {what} of the early-exit model {entry}, not a model on its own (the runtime opens it "
            f"through the entry file, whose metadata names it); give {instead} instead")
    if os.path.isfile(text):
        return text
    dirs = model_search_dirs()
    if bare:
        for d in dirs:
            candidate = d / file_name
            if candidate.is_file():
                return str(candidate)
    if os.path.exists(text):
        return text
    if bare:
        # where a model could be: a directory that exists (the checkout's models/ rule points into
        # site-packages for an installed copy), or the one MODREC_MODEL_DIR names
        env = os.environ.get(MODEL_DIR_ENV)
        places = "\n  ".join(str(d / file_name) for d in dirs if d.is_dir() or (env and d == Path(env)))
        raise FileNotFoundError(f"model '{text}' not found: not a file here, nor in the model directories (set "
                                f"{MODEL_DIR_ENV} to add one); looked for:\n  {places}\n"
                                f"{_shipped_names_line(file_name[: -len('.onnx')])}")
    raise FileNotFoundError(f"{text}: model file does not exist; give an existing .onnx file or a shipped model's "
                            f"name\n{_shipped_names_line(Path(text).stem)}")


def available_cores():
    """CPU cores this process may run on (its affinity mask; os.cpu_count() where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def probe_frames(n, frame_len):
    """The frames every model is run on at load: float32 (n, 2, frame_len), seeded noise."""
    return np.random.default_rng(2016).standard_normal((n, contract.IQ_ROWS, frame_len)).astype(np.float32)


def ort_error(err):
    """The first line of an onnxruntime error, shortened: enough to name the failing node."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def check_probabilities(probs, n, n_classes, source, what):
    """ContractError naming ``source`` unless ``probs`` is (n, n_classes) class probabilities:
    finite, >= 0 and rows summing to 1 within PROB_TOL."""
    probs = np.asarray(probs)
    if probs.shape != (n, n_classes):
        raise contract.ContractError(f"{source}: {what} has shape {probs.shape} for a batch of {n}; expected "
                                     f"({n}, {n_classes})")
    if not np.isfinite(probs).all():
        raise contract.ContractError(f"{source}: {what} holds NaN or Inf on probe frames; expected class probabilities")
    sums = probs.sum(axis=1, dtype=np.float64)
    if probs.min() < -PROB_TOL or np.abs(sums - 1.0).max() > PROB_TOL:
        raise contract.ContractError(
            f"{source}: {what} is not class probabilities: rows should be >= 0 and sum to 1 (within {PROB_TOL}), "
            f"found values down to {probs.min():.4g} and row sums {sums.min():.4g} to {sums.max():.4g} (a model "
            f"exported without its softmax gives logits)"
        )


def session_options(threads):
    """The onnxruntime options of every session the runtime opens (plain models, stage files, the
    all-exits file): ``threads`` intra-op threads, one inter-op thread, sequential execution, no
    spinning, warnings and below not logged."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # A flowgraph already runs one thread per block; on small (2-core) machines a second
    # intra-op thread competes with the DSP blocks and throughput collapses.
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning workers burn the cores the rest of the flowgraph needs between frames.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def open_session(path, options):
    """An onnxruntime CPU session for the file ``path`` (``options`` from session_options);
    ContractError naming the file when onnxruntime cannot load it."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises several private exception types for bad files
        raise contract.ContractError(f"{path}: not a loadable ONNX model ({err})") from None


def _dim(value):
    """ORT reports dynamic dims as strings or None; only ints are fixed sizes."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class Predictions:
    """What a model says about a batch of N frames (``predict_details``).

    ``probs`` float32 (N, C) class probabilities; ``exits`` int64 (N,) the exit each frame left
    at; ``snr_db`` float32 (N,) the estimated per-sample SNR in dB, or None when the model does
    not estimate it; ``unknown_score`` float32 (N,) the model's open-set score (larger = less like
    a known class), or None when the model has no calibrated threshold; ``logits`` float32
    (N, C), the scores before the softmax, or None when the model does not output them
    (contract version 2).
    """

    probs: np.ndarray
    exits: np.ndarray
    snr_db: np.ndarray = None
    unknown_score: np.ndarray = None
    logits: np.ndarray = None


class OnnxModel:
    """A contract-honouring ONNX classifier loaded into onnxruntime.

    ``predict(frames)`` takes float32 (N, 2, frame_len) I/Q frames and returns float32 (N, C)
    class probabilities, run in session calls of at most RUN_FRAMES frames. ``n_exits`` and
    ``predict_with_exits`` answer as EarlyExitModel's do (one exit, index 0), so a caller never asks which it holds.
    ``predict_details`` adds what a version-2 model says besides (its SNR estimate, its open-set
    score); ``open_set`` holds its noise class and calibrated unknown threshold.
    """

    def __init__(self, path, threads=1):
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
        if threads > available_cores():
            raise ValueError(f"threads must be at most the {available_cores()} core(s) this process may use, got "
                             f"{threads}: more onnxruntime threads than cores only contend (and thousands crash it)")
        self.path = str(path)
        self.threads = int(threads)
        src = self.path
        if not os.path.exists(src):
            raise FileNotFoundError(f"{src}: model file does not exist")
        if not os.path.isfile(src):
            raise contract.ContractError(f"{src}: not a regular file")

        self._session = open_session(src, session_options(self.threads))
        props = dict(self._session.get_modelmeta().custom_metadata_map)
        if contract.STAGE_ENTRY in props and contract.FRAME_LEN not in props:
            # a part of an early-exit model (renamed, so resolve_model did not recognise it): say
            # which file to load instead of listing every contract field it lacks
            raise contract.ContractError(
                f"{src}: a stage or all-exits file of the early-exit model {props[contract.STAGE_ENTRY]} (metadata "
                f"'{contract.STAGE_ENTRY}'), not a model on its own; load its entry file "
                f"{os.path.join(os.path.dirname(src), props[contract.STAGE_ENTRY])}")
        self.metadata = contract.decode_metadata(props, source=src)
        self.classes = tuple(self.metadata[contract.CLASSES])
        self.frame_len = int(self.metadata[contract.FRAME_LEN])
        self.samples_per_symbol = int(self.metadata[contract.SAMPLES_PER_SYMBOL])

        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise contract.ContractError(
                f"{src}: model should have exactly one input (N, 2, {self.frame_len}), has {len(inputs)}"
            )
        inp = inputs[0]
        shape = list(inp.shape)
        if inp.type != "tensor(float)":
            raise contract.ContractError(
                f"{src}: input '{inp.name}' should be float32 (tensor(float)), got {inp.type}"
            )
        if (
            len(shape) != 3
            or _dim(shape[1]) != contract.IQ_ROWS
            or _dim(shape[2]) != self.frame_len
        ):
            raise contract.ContractError(
                f"{src}: input '{inp.name}' should have shape (N, {contract.IQ_ROWS}, {self.frame_len}) "
                f"(frame_len from metadata), got {tuple(shape)}"
            )
        if _dim(shape[0]) is not None:
            raise contract.ContractError(
                f"{src}: input '{inp.name}' batch axis should be dynamic, got fixed size {shape[0]}"
            )
        out = self._session.get_outputs()[0]
        oshape = list(out.shape)
        n_classes = len(self.classes)
        if out.type != "tensor(float)":
            raise contract.ContractError(
                f"{src}: first output '{out.name}' should be float32 (tensor(float)), got {out.type}"
            )
        if len(oshape) != 2 or _dim(oshape[1]) != n_classes:
            raise contract.ContractError(
                f"{src}: first output '{out.name}' should have shape (N, {n_classes}) "
                f"(len(classes) from metadata), got {tuple(oshape)}"
            )
        self._input_name = inp.name
        self._output_name = out.name
        self.open_set = contract.decode_open_set_metadata(self.metadata, source=src)
        self._extra_outputs = self._optional_outputs()
        if self.open_set.score == contract.SCORE_ENERGY and contract.LOGITS_OUTPUT_NAME not in self._extra_outputs:
            raise contract.ContractError(f"{src}: metadata field '{contract.UNKNOWN_SCORE}' is "
                                         f"'{contract.SCORE_ENERGY}', which needs an output named "
                                         f"'{contract.LOGITS_OUTPUT_NAME}'; the model has none")
        self._probe()

    def _optional_outputs(self):
        """Names of the version-2 outputs the model has (SNR estimate, logits), checked."""
        found = []
        expected = {contract.SNR_OUTPUT_NAME: "(N,)", contract.LOGITS_OUTPUT_NAME: f"(N, {self.n_classes})"}
        for out in self._session.get_outputs()[1:]:
            if out.name not in expected:
                continue
            shape = list(out.shape)
            ok = out.type == "tensor(float)" and (
                len(shape) == 1 if out.name == contract.SNR_OUTPUT_NAME else len(shape) == 2 and _dim(shape[1]) == self.n_classes)
            if not ok:
                raise contract.ContractError(f"{self.path}: output '{out.name}' should be float32 {expected[out.name]}, "
                                             f"got {out.type} {tuple(shape)}")
            found.append(out.name)
        return found

    @property
    def has_snr(self):
        """Whether the model estimates each frame's SNR (``Predictions.snr_db``)."""
        return contract.SNR_OUTPUT_NAME in self._extra_outputs

    def _probe(self):
        """Run the model once per PROBE_BATCHES size and check the answer: a model that fails or
        lies on a probe is refused here, not in the middle of a stream."""
        for n in PROBE_BATCHES:
            try:
                probs = self._session.run([self._output_name], {self._input_name: probe_frames(n, self.frame_len)})[0]
            except Exception as err:  # ORT raises several private exception types
                raise contract.ContractError(
                    f"{self.path}: the model fails on a probe batch of {n} frame(s) of shape ({n}, {contract.IQ_ROWS}, "
                    f"{self.frame_len}): {ort_error(err)}; its input declares a dynamic batch, so it must run any "
                    f"batch size (re-export it with a dynamic batch axis)"
                ) from None
            check_probabilities(probs, n, self.n_classes, self.path, f"first output '{self._output_name}'")
        if self._extra_outputs:
            outputs = self._session.run(self._extra_outputs, {self._input_name: probe_frames(1, self.frame_len)})
            for name, value in zip(self._extra_outputs, outputs):
                if not np.all(np.isfinite(value)):
                    raise contract.ContractError(f"{self.path}: output '{name}' holds NaN or Inf on probe frames")

    @property
    def n_classes(self):
        return len(self.classes)

    @property
    def n_exits(self):
        """Exits the model has: 1, the final one (EarlyExitModel: one per stage)."""
        return 1

    def _checked(self, frames):
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        if frames.ndim != 3 or frames.shape[1] != contract.IQ_ROWS or frames.shape[2] != self.frame_len:
            raise ValueError(
                f"frames should have shape (N, {contract.IQ_ROWS}, {self.frame_len}), got {frames.shape}"
            )
        return frames

    def _run(self, names, frames):
        """The outputs ``names`` for checked frames (N >= 1), in session calls of at most
        RUN_FRAMES frames (the constant says why), joined along the batch axis."""
        if len(frames) <= RUN_FRAMES:
            return self._session.run(names, {self._input_name: frames})
        slices = [self._session.run(names, {self._input_name: frames[s : s + RUN_FRAMES]})
                  for s in range(0, len(frames), RUN_FRAMES)]
        return [np.concatenate(parts) for parts in zip(*slices)]

    def predict(self, frames):
        """float32 (N, 2, frame_len) -> float32 (N, n_classes) probabilities."""
        frames = self._checked(frames)
        if frames.shape[0] == 0:
            return np.zeros((0, self.n_classes), dtype=np.float32)
        probs = self._run([self._output_name], frames)[0]
        return np.asarray(probs, dtype=np.float32)

    def predict_details(self, frames):
        """float32 (N, 2, frame_len) -> Predictions (every output the model has)."""
        frames = self._checked(frames)
        n = frames.shape[0]
        if n == 0 or not self._extra_outputs:
            probs, exits = self.predict_with_exits(frames)
            return Predictions(probs, exits, unknown_score=self._unknown_score(probs, None))
        probs, *extra = self._run([self._output_name, *self._extra_outputs], frames)
        extra = dict(zip(self._extra_outputs, extra))
        probs = np.asarray(probs, dtype=np.float32)
        snr, logits = extra.get(contract.SNR_OUTPUT_NAME), extra.get(contract.LOGITS_OUTPUT_NAME)
        return Predictions(probs, np.full(n, self.n_exits - 1, dtype=np.int64),
                           snr_db=None if snr is None else np.asarray(snr, dtype=np.float32).reshape(n),
                           unknown_score=self._unknown_score(probs, logits),
                           logits=None if logits is None else np.asarray(logits, dtype=np.float32))

    def _unknown_score(self, probs, logits):
        if self.open_set.score is None:
            return None
        return open_set_score(self.open_set.score, probs, logits)

    def predict_with_exits(self, frames):
        """float32 (N, 2, frame_len) -> (probs (N, C) float32, exit index (N,) int64), as
        EarlyExitModel answers: a plain model has one exit, so every frame takes exit 0, which is
        also the final exit (n_exits - 1)."""
        probs = self.predict(frames)
        return probs, np.full(len(probs), self.n_exits - 1, dtype=np.int64)

    def __repr__(self):
        return (
            f"OnnxModel({self.path!r}, architecture={self.metadata.get(contract.ARCHITECTURE)!r}, "
            f"frame_len={self.frame_len}, classes={len(self.classes)})"
        )
