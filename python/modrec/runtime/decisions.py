"""What the model says about a batch of frames, as the classifier block and ``modrec classify``
both report it: one home for the rules on bad samples and on ``min_confidence``."""

import numpy as np

from .framing import complex_to_iq


def classify_frames(model, frames, min_confidence=0.0):
    """A model's answers for complex frames (K, frame_len), in one batched run.

    Returns ``(probs, exits, index, confidence)``: probs float32 (K, C); exits int64 (K,), the exit
    each frame left at (-1 for a frame not run through the model); index int64 (K,), the class
    index, -1 (``unknown``) when the top probability is below ``min_confidence`` (in [0, 1]) or
    NaN; confidence float32 (K,), the top probability. A frame holding NaN/Inf samples is not run
    through the model: all-zero probs, confidence 0, ``unknown``. Whatever the model raises
    propagates (the block and the command line decide what an error means for them).
    """
    finite = np.isfinite(frames.real).all(axis=1) & np.isfinite(frames.imag).all(axis=1)
    k = frames.shape[0]
    probs = np.zeros((k, len(model.classes)), dtype=np.float32)
    exits = np.full(k, -1, dtype=np.int64)
    if finite.all():
        probs[:], exits[:] = model.predict_with_exits(complex_to_iq(frames))  # no copy of the batch
    elif finite.any():
        probs[finite], exits[finite] = model.predict_with_exits(complex_to_iq(frames[finite]))
    index = probs.argmax(axis=1)
    confidence = np.where(finite, probs[np.arange(k), index], 0.0).astype(np.float32)
    # compared in float64, as the threshold is given; a broken model's NaN fails it: unknown
    known = finite & (confidence.astype(np.float64) >= float(min_confidence))
    return probs, exits, np.where(known, index, -1).astype(np.int64), confidence
