"""Open-set scores: how unlike the model's known classes a frame looks (contract version 2).

Larger is less like a known class; a model's calibrated ``unknown_threshold`` applies to the score
its metadata names (``contract.UNKNOWN_SCORE``). numpy only: the training side calibrates with
these same functions, so a threshold means the same thing there and in the block.
"""

import numpy as np

from .. import contract


def maxprob_score(probs):
    """1 - max softmax probability (Hendrycks & Gimpel, ICLR 2017): float32 (N, C) -> (N,)."""
    return (1.0 - np.asarray(probs, dtype=np.float64).max(axis=1)).astype(np.float32)


def energy_score(logits):
    """Negative free energy -logsumexp(logits) (Liu et al., "Energy-based out-of-distribution
    detection", NeurIPS 2020): float32 (N, C) -> (N,); larger = less like a known class."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=1, keepdims=True)
    return (-(top[:, 0] + np.log(np.exp(z - top).sum(axis=1)))).astype(np.float32)


def open_set_score(name, probs, logits=None):
    """The score ``name`` (one of contract.UNKNOWN_SCORES) of a batch. ValueError when it needs
    the logits and there are none."""
    if name == contract.SCORE_MAXPROB:
        return maxprob_score(probs)
    if name == contract.SCORE_ENERGY:
        if logits is None:
            raise ValueError(f"open-set score '{name}' needs the model's '{contract.LOGITS_OUTPUT_NAME}' output")
        return energy_score(logits)
    raise ValueError(f"open-set score: expected one of {', '.join(contract.UNKNOWN_SCORES)}, got {name!r}")
