"""load_model: the runtime for a model file, plain or early-exit, with each file opened once.

Both answer the same interface (``predict``, ``predict_with_exits``, ``n_exits``, ``classes``,
``frame_len``, ...), so a caller never asks which one it holds.
"""

from .. import contract
from .early_exit import EarlyExitModel
from .onnx_model import OnnxModel


def load_model(path, threads=1):
    """The right runtime for a model file: EarlyExitModel when its metadata lists exit stages
    (contract.is_early_exit), else OnnxModel. The entry file is opened (and probed) once: an
    early-exit model takes over the session the metadata was read from."""
    model = OnnxModel(path, threads=threads)
    if contract.is_early_exit(model.metadata):
        return EarlyExitModel.from_entry(model)
    return model
