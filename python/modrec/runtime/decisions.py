"""What the model says about a batch of frames, as the classifier block and ``modrec classify``
both report it: one home for the rules on bad samples, on ``unknown`` and on ``noise``."""

from dataclasses import dataclass

import numpy as np

from ..classes import NOISE_LABEL, UNKNOWN_CLASS
from .framing import complex_to_iq

# ``min_confidence`` value that means "the model's own rule": its calibrated open-set threshold
# (contract version 2), or no threshold for a model without one (version 1: every frame gets a class).
MODEL_RULE = -1.0


@dataclass
class FrameDecisions:
    """Decisions on K frames: ``probs`` float32 (K, C); ``exits`` int64 (K,), the exit each frame
    left at (-1: not run through the model); ``index`` int64 (K,), the class index or -1 for
    ``unknown`` (``decision_labels`` names them); ``confidence`` float32 (K,), the top
    probability; ``snr_db`` float32 (K,), the model's SNR estimate in dB (NaN where it has none);
    ``logits`` float32 (K, C), the scores before the softmax (NaN rows for frames not run), or
    None when the model does not output them."""

    probs: np.ndarray
    exits: np.ndarray
    index: np.ndarray
    confidence: np.ndarray
    snr_db: np.ndarray
    logits: np.ndarray = None


def decision_labels(model):
    """The label of each decision index: the model's classes, its noise class (contract
    version 2) as ``noise``, and ``unknown`` last, so ``labels[-1]`` names index -1."""
    noise = model.open_set.noise_class
    return [NOISE_LABEL if name == noise else name for name in model.classes] + [UNKNOWN_CLASS]


def check_min_confidence(value):
    """``value`` as a float: MODEL_RULE (-1) or a threshold in [0, 1]; ValueError otherwise."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"min_confidence must be {MODEL_RULE:g} (the model's rule) or a number in [0, 1], "
                         f"got {value!r}") from None
    if not (value == MODEL_RULE or 0.0 <= value <= 1.0):
        raise ValueError(f"min_confidence must be {MODEL_RULE:g} (the model's rule) or in [0, 1], got {value!r}")
    return value


def classify_frames(model, frames, min_confidence=MODEL_RULE, wrong_oversampling=None):
    """A model's decisions on complex frames (K, frame_len), in one batched run: FrameDecisions.

    A frame is ``unknown`` (index -1) when its top probability is NaN, or, with
    ``min_confidence`` in [0, 1], below it; with MODEL_RULE, when the model's open-set score is
    above its calibrated threshold (contract.UNKNOWN_THRESHOLD; a model without one gives every
    frame a class). A frame whose top class is the model's noise class stays that class (it holds
    no signal, so it cannot be an unknown signal). A frame flagged in ``wrong_oversampling`` (bool
    (K,), or None: none) sits where the stream's samples per symbol is far from the model's
    (oversampling.OversamplingMonitor): it is ``unknown``, noise class included: its symbol-rate
    line shows a signal is there, and the model's class (a signal spanning the band at 2 samples
    per symbol looks like noise to it) would be a confident guess at what it was not trained to
    see. A frame
    holding NaN/Inf samples is not run through the model: all-zero probs, confidence 0,
    ``unknown``. Whatever the model raises propagates (the block and the command line decide what
    an error means for them).
    """
    finite = np.isfinite(frames.real).all(axis=1) & np.isfinite(frames.imag).all(axis=1)
    k = frames.shape[0]
    probs = np.zeros((k, len(model.classes)), dtype=np.float32)
    exits = np.full(k, -1, dtype=np.int64)
    snr = np.full(k, np.nan, dtype=np.float32)
    score = logits = None
    if finite.any():
        # all frames good: the batch goes as it is (no copy)
        run = slice(None) if finite.all() else finite
        predictions = model.predict_details(complex_to_iq(frames if finite.all() else frames[finite]))
        probs[run], exits[run] = predictions.probs, predictions.exits
        if predictions.snr_db is not None:
            snr[run] = predictions.snr_db
        if predictions.logits is not None:
            logits = np.full(probs.shape, np.nan, dtype=np.float32)
            logits[run] = predictions.logits
        if predictions.unknown_score is not None:
            score = np.full(k, np.nan)
            score[run] = predictions.unknown_score
    index = probs.argmax(axis=1)
    confidence = np.where(finite, probs[np.arange(k), index], 0.0).astype(np.float32)
    # compared in float64, as the threshold is given; a broken model's NaN fails it: unknown
    known = finite & (confidence.astype(np.float64) >= max(float(min_confidence), 0.0))
    noise = model.open_set.noise_class
    is_noise = index == model.classes.index(noise) if noise is not None else np.zeros(k, dtype=bool)
    if min_confidence == MODEL_RULE and score is not None:
        known &= is_noise | (score <= model.open_set.threshold)
    if wrong_oversampling is not None:
        known &= ~np.asarray(wrong_oversampling, dtype=bool)
    return FrameDecisions(probs, exits, np.where(known, index, -1).astype(np.int64), confidence, snr, logits)
