"""Training checkpoints: written atomically, read without running code (checkpoint_io.py), and
turned back into models (pruned ones at their pruned shapes)."""

import os
from pathlib import Path

import torch

from .checkpoint_io import load_checkpoint_file
from .models import create_model
from .prune.surgery import fit_to_state_dict

CHECKPOINT_FORMAT = 1


def save_checkpoint(path, **payload):
    tmp = Path(str(path) + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)
    os.replace(tmp, path)  # atomic: an interrupted save never leaves a truncated last.pt


def load_checkpoint(path, map_location="cpu"):
    """A gr-modrec checkpoint as a dict, read without running anything it holds.

    Tensors and plain Python values only (checkpoint_io.py): a file naming any other global is
    refused with UnsafeCheckpointError (a ValueError) naming the file and the global.
    """
    path = Path(path)
    ckpt = load_checkpoint_file(path, map_location=map_location)
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: not a gr-modrec checkpoint (holds a {type(ckpt).__name__}, not a dict)")
    for key in ("model_name", "model_cfg", "state_dict"):
        if key not in ckpt:
            raise ValueError(f"{path}: not a gr-modrec checkpoint (no '{key}')")
    return ckpt


def model_from_checkpoint(ckpt_or_path, device="cpu"):
    ckpt = ckpt_or_path if isinstance(ckpt_or_path, dict) else load_checkpoint(ckpt_or_path)
    model = create_model(ckpt["model_name"], **ckpt["model_cfg"])
    if ckpt.get("pruning"):
        fit_to_state_dict(model, ckpt["state_dict"])
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()


def load_backbone(backbone, path, *, field, source=None, classes=None):
    """Load the trained classifier in checkpoint ``path`` into ``backbone`` (the plain network
    inside an early-exit model or a classifier with detector heads); returns the checkpoint dict.
    ``field`` names the config field that gave ``path`` (``source``: its YAML) in the errors:
    FileNotFoundError for a missing file; ValueError for another architecture, other classes than
    ``classes`` (when given) or weights of other shapes. The backbone's config may differ from the
    checkpoint's where no weight does (an activation: the ReLU copy of a hard-swish network)."""
    where = f"{source}: field '{field}'" if source else f"field '{field}'"
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{where}: {path} not found (train the classifier first, or rebuild it from a "
                                f"shipped file: modrec from-onnx)")
    ckpt = load_checkpoint(path)
    if ckpt["model_name"] != backbone.model_name:
        raise ValueError(f"{where}: {path} holds a {ckpt['model_name']}, the backbone is a {backbone.model_name}")
    if classes is not None and list(ckpt.get("classes", [])) != list(classes):
        raise ValueError(f"{where}: {path} was trained on classes {ckpt.get('classes')}, the data's known classes "
                         f"are {list(classes)}")
    try:
        backbone.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{where}: {path} does not fit the backbone ({str(err).splitlines()[0]})") from None
    return ckpt
