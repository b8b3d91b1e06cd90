"""Torch-free runtime: ONNX model loading/inference and stream framing.

Imports only numpy, onnxruntime and the standard library so it runs on any GNU Radio host.
"""

from .early_exit import EarlyExitModel, exit_decisions
from .framing import StreamFramer, complex_to_iq, frame_starts
from .load import load_model
from .onnx_model import (DEFAULT_MODEL_NAME, MODEL_DIR_ENV, OnnxModel, default_model_path, model_search_dirs,
                         resolve_model, shipped_models)

__all__ = [
    "DEFAULT_MODEL_NAME",
    "EarlyExitModel",
    "MODEL_DIR_ENV",
    "OnnxModel",
    "StreamFramer",
    "complex_to_iq",
    "default_model_path",
    "exit_decisions",
    "frame_starts",
    "load_model",
    "model_search_dirs",
    "resolve_model",
    "shipped_models",
]
