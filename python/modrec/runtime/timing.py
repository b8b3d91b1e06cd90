"""Timing models against each other on a noisy machine (numpy + the standard library).

Each round runs every model over the same frames twice, in order and then in reverse order
(A B ... B A), so a slow drift of the machine's speed (frequency, other processes, a virtual
machine's neighbours) hits every model alike within the round. Speed ratios are taken within a
round and the median round counts: a ratio is never one of two numbers measured at different
times.
"""

import time

import numpy as np


def seconds_per_frame(predict, frames, batch):
    """Wall time of one pass of ``predict`` over ``frames`` in batches, per frame."""
    start = time.perf_counter()
    for s in range(0, len(frames), batch):
        predict(frames[s : s + batch])
    return (time.perf_counter() - start) / len(frames)


def paired_times(predicts, frames, batch=256, rounds=7):
    """{name: [seconds per frame, one per round]} for a dict of predict functions."""
    names = list(predicts)
    for name in names:
        predicts[name](frames[:batch])  # warm-up: first-call allocations are not the model's speed
    times = {name: [] for name in names}
    for _ in range(rounds):
        this_round = dict.fromkeys(names, 0.0)
        for name in names + names[::-1]:
            this_round[name] += seconds_per_frame(predicts[name], frames, batch) / 2
        for name in names:
            times[name].append(this_round[name])
    return times


def speed_ratio(times, reference, other):
    """Median over rounds of time(reference) / time(other): above 1, ``other`` is faster."""
    return float(np.median(np.asarray(times[reference]) / np.asarray(times[other])))
