"""Training-time augmentation: random channel effects on (N, 2, L) I/Q batches, on the device."""

import math

import torch


def augment(x, aug, gen):
    """Random channel effects the runtime will see but a clean generator may not cover."""
    n, _, length = x.shape
    dev = x.device
    if aug.phase_rotation or aug.freq_offset > 0:
        phi = torch.zeros(n, 1, device=dev)
        if aug.phase_rotation:
            phi = phi + 2 * math.pi * torch.rand(n, 1, generator=gen, device=dev)
        if aug.freq_offset > 0:
            f = (2 * torch.rand(n, 1, generator=gen, device=dev) - 1) * aug.freq_offset
            phi = phi + 2 * math.pi * f * torch.arange(length, device=dev)
        c, s = torch.cos(phi), torch.sin(phi)
        i, q = x[:, 0], x[:, 1]
        x = torch.stack([i * c - q * s, i * s + q * c], dim=1)
    if aug.conjugate:
        sign = torch.where(torch.rand(n, 1, generator=gen, device=dev) < 0.5, -1.0, 1.0)
        x = torch.stack([x[:, 0], x[:, 1] * sign], dim=1)
    if aug.time_shift:
        shift = torch.randint(0, length, (n, 1), generator=gen, device=dev)
        idx = (torch.arange(length, device=dev) + shift) % length
        x = x.gather(2, idx[:, None, :].expand(n, 2, length))
    return x
