"""Exit policies and threshold calibration.

A frame leaves at the first early exit whose softmax is confident enough:

* ``entropy``: normalised entropy H(p) / log(C) <= T (0 = certain, 1 = uniform);
* ``maxprob``: 1 - max(p) <= T (the same direction: a smaller T exits fewer frames);
* ``gate``: 1 - a learned probability that leaving costs nothing <= T (exits/gate.py).

calibrate_threshold() picks, on validation frames, the largest T (the most frames leaving early)
whose accuracy stays within ``budget_pp`` percentage points of the final exit's accuracy. One T
serves every early exit, as in the published method. The rule itself is the runtime's
(runtime/early_exit.py), so calibration and deployment decide alike.
"""

import numpy as np

from ...contract import EXIT_POLICIES as POLICIES, POLICY_ENTROPY  # noqa: F401  (re-exported)
from ...runtime.early_exit import exit_decisions  # noqa: F401  (re-exported)


def calibrate_threshold(exit_probs, y, policy=POLICY_ENTROPY, budget_pp=0.5, grid=201, snr=None, snr_min=None, gates=None):
    """The largest threshold within the accuracy budget, with what it gives on these frames.

    With ``snr`` (per frame) and ``snr_min``, the budget must also hold on the frames at or
    above ``snr_min`` alone: early exits take mostly high-SNR frames, so their errors concentrate
    there and an all-SNR budget would hide them. ``gates``: the gate weights per early exit
    (policy ``gate``).
    """
    y = np.asarray(y)
    subsets = {"all": np.ones(len(y), dtype=bool)}
    if snr_min is not None:
        subsets[f"snr_ge_{snr_min:g}"] = np.asarray(snr) >= snr_min
    final_correct = np.argmax(exit_probs[-1], 1) == y
    final_acc = {k: float(final_correct[m].mean()) for k, m in subsets.items()}
    best = {"threshold": 0.0}
    for t in np.linspace(0.0, 1.0, grid):
        probs, taken = exit_decisions(exit_probs, [t] * (len(exit_probs) - 1), policy, gates)
        correct = probs.argmax(1) == y
        acc = {k: float(correct[m].mean()) for k, m in subsets.items()}
        if all(100 * (final_acc[k] - acc[k]) <= budget_pp for k in subsets):
            best = {"threshold": float(t), "accuracy": acc["all"], "accuracy_by_subset": acc,
                    "exit_rates": np.bincount(taken, minlength=len(exit_probs)).tolist()}
    best.update(policy=policy, budget_pp=budget_pp, snr_min=snr_min, final_accuracy=final_acc["all"],
                final_accuracy_by_subset=final_acc)
    return best
