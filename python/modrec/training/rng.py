"""Seeding and the random streams a checkpoint saves, so a resumed run continues exactly."""

import random

import numpy as np
import torch


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def portable_numpy_state(state):
    name, keys, pos, has_gauss, cached = state
    return (str(name), [int(k) for k in keys], int(pos), int(has_gauss), float(cached))


def rng_state(gen):
    state = {
        "python": random.getstate(),
        # plain Python, not arrays: a pickled ndarray names numpy's private modules, which differ
        # between numpy 1 and 2 (a checkpoint from a GPU box must resume on a GNU Radio box)
        "numpy": portable_numpy_state(np.random.get_state()),
        "torch": torch.get_rng_state(),
        "generator": gen.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state, gen):
    """Restore the RNG streams; False when the run moved between CPU and GPU.

    A CUDA generator's state (seed + offset) cannot be loaded into a CPU generator or back, so a
    run resumed on the other kind of device draws its remaining batch orders from a fresh stream:
    the schedule and weights continue exactly, only the shuffling differs from an unmoved run.
    """
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    moved = state["generator"].numel() != gen.get_state().numel()
    if not moved:
        gen.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    return not moved
