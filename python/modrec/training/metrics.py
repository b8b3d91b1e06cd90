"""Classification metrics in plain numpy (no torch), so a shipped ONNX model can be scored anywhere."""

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes):
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm  # rows = true class, columns = predicted


def expected_calibration_error(probs, y_true, n_bins=15, confidence=None):
    """ECE with equal-width confidence bins (Guo et al. 2017).

    ``probs`` float (N, C) probabilities; or hard predictions int (N,) with ``confidence`` float
    (N,), the probability each prediction had (what a streamed evaluation keeps).
    """
    probs = np.asarray(probs)
    if probs.ndim == 2:
        conf = probs.astype(np.float64).max(axis=1)
        correct = probs.argmax(axis=1) == np.asarray(y_true)
    else:
        conf = np.asarray(confidence, np.float64)
        correct = probs == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins so that confidence 1.0 lands in the last bin and 0 is never binned (1/C > 0)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = idx == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def per_snr_accuracy(y_true, y_pred, snr_db):
    """List of {snr_db, n, correct, accuracy}, sorted by SNR; frames of unknown SNR (NaN, e.g. a
    SigMF recording) come last in one row with snr_db None."""
    y_true, y_pred, snr_db = np.asarray(y_true), np.asarray(y_pred), np.asarray(snr_db, np.float64)
    rows = []
    known = np.isfinite(snr_db)
    for snr in np.unique(snr_db[known]):
        m = snr_db == snr
        n = int(m.sum())
        c = int((y_true[m] == y_pred[m]).sum())
        rows.append({"snr_db": float(snr), "n": n, "correct": c, "accuracy": c / n})
    if not known.all():
        m = ~known
        c = int((y_true[m] == y_pred[m]).sum())
        rows.append({"snr_db": None, "n": int(m.sum()), "correct": c, "accuracy": c / int(m.sum())})
    return rows


def _acc(mask, y_true, y_pred):
    n = int(mask.sum())
    return float((y_true[mask] == y_pred[mask]).mean()) if n else None


def classification_metrics(probs, y_true, snr_db, classes, ece_bins=15, confidence=None):
    """Everything the evaluation summary reports, from class probabilities.

    ``probs`` may also be hard predictions (1-D int array); ECE is then computed from
    ``confidence`` (float (N,), each prediction's probability) or omitted without it.
    ``confusion`` counts every frame, ``confusion_snr_ge_10`` the frames at SNR >= 10 dB (None
    when there are none, e.g. a recording without SNR); rows true class, columns predicted.
    """
    y_true = np.asarray(y_true, np.int64)
    snr_db = np.asarray(snr_db, np.float64)
    probs = np.asarray(probs)
    y_pred = probs.argmax(axis=1) if probs.ndim == 2 else probs.astype(np.int64)
    per_snr = per_snr_accuracy(y_true, y_pred, snr_db)
    rated = [r for r in per_snr if r["snr_db"] is not None]
    everything = np.ones_like(y_true, dtype=bool)
    high = snr_db >= 10  # frames of unknown SNR (NaN) are not among them
    out = {
        "n_frames": int(len(y_true)),
        "classes": list(classes),
        "accuracy": _acc(everything, y_true, y_pred),
        "accuracy_snr_ge_0": _acc(snr_db >= 0, y_true, y_pred),
        "accuracy_snr_ge_10": _acc(snr_db >= 10, y_true, y_pred),
        "peak_accuracy": max(r["accuracy"] for r in rated) if rated else None,
        "peak_snr_db": max(rated, key=lambda r: r["accuracy"])["snr_db"] if rated else None,
        "per_snr": per_snr,
        "confusion": confusion_matrix(y_true, y_pred, len(classes)).tolist(),
        # where the classes stand apart: the all-SNR matrix is mostly the low-SNR frames' guessing
        "confusion_snr_ge_10": (confusion_matrix(y_true[high], y_pred[high], len(classes)).tolist()
                                if high.any() else None),
    }
    if probs.ndim == 2 or confidence is not None:
        out["ece"] = expected_calibration_error(probs, y_true, ece_bins, confidence=confidence) if len(y_true) else None
        out["ece_bins"] = ece_bins
    return out
