"""The learned exit rule (policy ``gate``): a small network per early exit that reads the exit's
probabilities (runtime.early_exit.gate_features) and predicts whether leaving there costs nothing
against the final exit: the exit is right, or the final exit is wrong too. Entropy and max
probability treat every answer alike; how far an early answer can be trusted depends on which
class it names. Fitted on training frames at export; its threshold is then calibrated on the
validation split like the other rules'. Its weights travel in the ONNX metadata (``exit_gates``),
and the runtime evaluates it in numpy.
"""

import numpy as np
import torch
from torch import nn

from ...runtime.early_exit import gate_features


def fit_gate(exit_probs, final_probs, y, hidden=32, steps=1500, lr=1e-2, seed=0):
    """Weights {w1, b1, w2, b2} of one exit's gate, fitted full-batch on these frames."""
    x = torch.tensor(gate_features(exit_probs), dtype=torch.float32)
    y = np.asarray(y)
    free = (np.argmax(exit_probs, 1) == y) | (np.argmax(final_probs, 1) != y)
    target = torch.tensor(free, dtype=torch.float32)
    with torch.random.fork_rng():  # seeded initialisation, the caller's RNG untouched: the same frames give the same gate
        torch.manual_seed(seed)
        first, second = nn.Linear(x.shape[1], hidden), nn.Linear(hidden, 1)
    net = nn.Sequential(first, nn.ReLU(), second)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(net(x)[:, 0], target)
        loss.backward()
        opt.step()
    return {"w1": first.weight.detach().double().tolist(), "b1": first.bias.detach().double().tolist(),
            "w2": second.weight.detach()[0].double().tolist(), "b2": float(second.bias.detach()[0]),
            "train_frames": int(len(y)), "train_loss": float(loss.detach())}
