"""Reading a checkpoint without letting it run code.

A torch checkpoint is a pickle in a zip file, and a pickle names the callables that rebuild its
objects: unpickled in full (``torch.load(..., weights_only=False)``) it imports and calls them, so a
file whose object reduces to ``os.system`` runs a shell command as it is opened (PyTorch docs,
``torch.load``, the warning on ``weights_only``). Checkpoints travel (a GPU box, a colleague, a
download), so every one is read here with torch's weights-only unpickler: tensors and plain Python
values (dict, list, tuple, str, int, float, bool, None), plus exactly the classes listed in
``_ALLOWED`` below, allowed for that one load (``torch.serialization.safe_globals``), never
globally. A file naming anything else is refused with ``UnsafeCheckpointError``; there is no
fallback to a full unpickle.

Standalone (torch and numpy only, no package imports): scripts/pack_runs.py loads this file by
its path, without the package being importable.
"""

import pickle
import re
from pathlib import Path

import numpy as np
import torch


class UnsafeCheckpointError(pickle.UnpicklingError, ValueError):
    """A checkpoint names something outside the allowed set; nothing it names was imported or run."""


def _numpy_array_globals():
    """What a pickled numeric ndarray names, under numpy 1's and numpy 2's module names.

    Checkpoints of gr-modrec hold no arrays since the RNG state is stored as plain Python
    (train._portable_numpy_state), but older ones did, and a file written under numpy 2 (a GPU
    image) names ``numpy._core.multiarray._reconstruct`` where numpy 1 (Debian's GNU Radio) has
    ``numpy.core.multiarray``: both names map to this numpy's function, so neither needs a module
    alias. Only numeric dtypes may be built: an object dtype (whose elements would be arbitrary
    pickled objects) is refused at its BUILD.
    """
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    numeric = [type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"]  # bool, (u)ints, floats, complex
    return [(reconstruct, "numpy.core.multiarray._reconstruct"), (reconstruct, "numpy._core.multiarray._reconstruct"),
            np.ndarray, np.dtype, *numeric]


def _allowed():
    return [
        # torch.__version__ (a str subclass; building one runs nothing), which checkpoints written
        # before train.py stored it as a plain str record in training.invocations[].torch
        torch.torch_version.TorchVersion,
        *_numpy_array_globals(),
    ]


_GLOBAL = re.compile(r"GLOBAL (\S+)")


def _reason(text):
    """The unpickler's own reason out of torch's message, without its advice to reload the file
    with weights_only=False (never taken here) or its pointer to the docs."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    if "WeightsUnpickler error:" in text:
        return text.split("WeightsUnpickler error:", 1)[1].strip().split("\n", 1)[0].split(" Please use", 1)[0].strip()
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    kept = [p for p in paragraphs if not p.startswith(("Weights only load failed", "Check the documentation"))]
    return " ".join(kept) or text.strip()


def _refusal(path, err):
    reason = _reason(str(err))
    named = _GLOBAL.search(reason)
    what = f"global '{named.group(1)}'" if named else f"it ({reason})"
    return UnsafeCheckpointError(
        f"{path}: refused to load {what}: a checkpoint may run code when loaded, so it is read as tensors and "
        f"plain Python values only (torch weights-only unpickling), and this file holds something else. It was "
        f"not written by gr-modrec training, or it has been altered; nothing it names was imported or run."
    )


def load_checkpoint_file(path, map_location="cpu"):
    """``torch.load`` of ``path`` admitting tensors, plain Python values and ``_allowed()`` only.

    FileNotFoundError when there is no such file; UnsafeCheckpointError (a ValueError and a
    pickle.UnpicklingError) naming the file and the refused global when it names anything else;
    ValueError naming the file when it is an ONNX model or cannot be read as a checkpoint at all
    (empty, truncated, another format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    if path.suffix.lower() == ".onnx":
        raise ValueError(f"{path}: an ONNX model, not a training checkpoint; rebuild one from it with "
                         f"modrec from-onnx --onnx {path} --out runs/<name>/best.pt")
    with torch.serialization.safe_globals(_allowed()):
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            raise _refusal(path, err) from None
        except Exception as err:  # noqa: BLE001 (an empty, truncated or foreign file fails anywhere in the reader)
            first = (str(err).strip().splitlines() or [""])[0][:200]
            raise ValueError(f"{path}: not a gr-modrec checkpoint: it cannot be read as one "
                             f"({type(err).__name__}{': ' + first if first else ''})") from None
