"""Which torch device a run uses."""

import torch


def resolve_device(name="auto"):
    """torch.device for ``auto`` (CUDA when there is one), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``;
    RuntimeError when CUDA is asked for and absent."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' requested but CUDA is not available (use --device auto or cpu)")
    return dev
