"""Synthetic RadioML-2016.10a-style data: frame synthesis, channel model, sharded datasets.

numpy/scipy (+ tqdm for progress) only; no torch and no GNU Radio, so the same code feeds a
PyTorch-only training node and the GNU Radio demo source.
"""

from .dataset import DatasetError, SplitData, build_dataset, load_split, read_meta
from .generator import (
    DEFAULT_CONFIG,
    GeneratorConfig,
    generate_frames,
    generate_labeled,
    synthesize,
    synthesize_stream,
    to_iq,
)
from .modulators import SUPPORTED_CLASSES

__all__ = [
    "DEFAULT_CONFIG",
    "DatasetError",
    "GeneratorConfig",
    "SUPPORTED_CLASSES",
    "SplitData",
    "build_dataset",
    "generate_frames",
    "generate_labeled",
    "load_split",
    "read_meta",
    "synthesize",
    "synthesize_stream",
    "to_iq",
]
