"""Parameter and FLOP counting (multiply-add = 2 FLOPs) with forward hooks.

Only conv and linear layers are counted: they dominate the cost of these students, and this is
the convention the papers that report FLOPs for AMR models use. Norms, activations and pooling
are left out on purpose so numbers stay comparable across papers.
"""

import math

import torch
from torch import nn


def count_params(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model, frame_len=128, in_rows=2):
    """FLOPs for one frame of shape (in_rows, frame_len); a classifier with detector heads
    (models/detecting.py) with its heads."""
    macs = 0

    def conv_hook(mod, inp, out):
        nonlocal macs
        k = math.prod(mod.kernel_size) * (mod.in_channels // mod.groups)
        macs += out[0].numel() * k  # per-frame: batch is 1

    def linear_hook(mod, inp, out):
        nonlocal macs
        macs += out[0].numel() * mod.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            getattr(model, "forward_detect", model)(torch.zeros(1, in_rows, frame_len, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return 2 * macs
