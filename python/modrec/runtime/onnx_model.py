"""Torch-free inference for models that honour the model contract (see ``modrec.contract``).

Everything about a model file is checked once, at construction, so a flowgraph fails at start-up
with a message naming the file and the problem instead of deep inside a work() call.
"""

import os
from pathlib import Path

import numpy as np

from .. import contract

DEFAULT_MODEL_NAME = "mobilenet1d-skd.onnx"  # the most accurate shipped student under 1 MB (models/README.md)
MODEL_DIR_ENV = "MODREC_MODEL_DIR"


def _package_dirs():
    here = Path(__file__).parent.parent
    dirs = [here]
    # A checkout may be reached through a symlink (tests/conftest.py does that); the models/ dir
    # sits beside the real source tree, not beside the link.
    resolved = here.resolve()
    if resolved != here:
        dirs.append(resolved)
    return dirs


def model_search_dirs():
    """Directories searched for the default model, in order."""
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


def _dim(value):
    """ORT reports dynamic dims as strings or None; only ints are fixed sizes."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class OnnxModel:
    """A contract-honouring ONNX classifier loaded into onnxruntime.

    ``predict(frames)`` takes float32 (N, 2, frame_len) I/Q frames and returns float32 (N, C)
    class probabilities in a single batched session run.
    """

    def __init__(self, path, threads=1):
        import onnxruntime as ort

        if isinstance(threads, bool) or int(threads) != threads or threads < 1:
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
        self.path = str(path)
        self.threads = int(threads)
        src = self.path
        if not os.path.exists(src):
            raise FileNotFoundError(f"{src}: model file does not exist")
        if not os.path.isfile(src):
            raise contract.ContractError(f"{src}: not a regular file")

        opts = ort.SessionOptions()
        # A flowgraph already runs one thread per block; on small (2-core) machines a second
        # intra-op thread competes with the DSP blocks and throughput collapses.
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning workers burn the cores the rest of the flowgraph needs between frames.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # ORT raises several private exception types for bad files
            raise contract.ContractError(f"{src}: not a loadable ONNX model ({err})") from None

        props = dict(self._session.get_modelmeta().custom_metadata_map)
        self.metadata = contract.decode_metadata(props, source=src)
        self.classes = tuple(self.metadata["classes"])
        self.frame_len = int(self.metadata["frame_len"])
        self.samples_per_symbol = int(self.metadata["samples_per_symbol"])

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

    @property
    def n_classes(self):
        return len(self.classes)

    def predict(self, frames):
        """float32 (N, 2, frame_len) -> float32 (N, n_classes) probabilities, one ORT call."""
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        if frames.ndim != 3 or frames.shape[1] != contract.IQ_ROWS or frames.shape[2] != self.frame_len:
            raise ValueError(
                f"frames should have shape (N, {contract.IQ_ROWS}, {self.frame_len}), got {frames.shape}"
            )
        if frames.shape[0] == 0:
            return np.zeros((0, self.n_classes), dtype=np.float32)
        probs = self._session.run([self._output_name], {self._input_name: frames})[0]
        return np.asarray(probs, dtype=np.float32)

    def __repr__(self):
        return (
            f"OnnxModel({self.path!r}, architecture={self.metadata.get('architecture')!r}, "
            f"frame_len={self.frame_len}, classes={len(self.classes)})"
        )
