"""Training-time augmentation: random channel effects on (N, 2, L) I/Q batches, on the device."""

import math

import torch

from ..classes import NOISE_LABEL


def receiver_frames(y, classes):
    """(N,) bool tensor: which of the labels ``y`` ((N,) int64) are the ``noise`` class, whose
    frames hold only what the receiver made (``hold_frequency`` of augment); None when
    ``classes`` (the dataset's class names) have no noise class."""
    return None if NOISE_LABEL not in classes else y == list(classes).index(NOISE_LABEL)


def augment(x, aug, gen, hold_frequency=None):
    """Random channel effects the runtime will see but a clean generator may not cover.

    ``x``: (N, 2, L) float32 I/Q; ``aug``: the AugmentConfig; ``gen``: the torch Generator the
    draws come from; ``hold_frequency``: None or an (N,) bool tensor of frames the carrier
    frequency offset (``aug.freq_offset``) must not move, because what they hold is the
    receiver's, not a transmitter's: a receiver's DC offset sits at exactly 0 Hz
    (``receiver_frames``). Shifted, it becomes a carrier near 0 Hz: an AM-DSB carrier in an audio
    pause, the one thing a detector must tell it from. The draws do not depend on
    ``hold_frequency``. Returns the augmented (N, 2, L) batch.
    """
    n, _, length = x.shape
    dev = x.device
    if aug.phase_rotation or aug.freq_offset > 0:
        phi = torch.zeros(n, 1, device=dev)
        if aug.phase_rotation:
            phi = phi + 2 * math.pi * torch.rand(n, 1, generator=gen, device=dev)
        if aug.freq_offset > 0:
            f = (2 * torch.rand(n, 1, generator=gen, device=dev) - 1) * aug.freq_offset
            if hold_frequency is not None:
                f = torch.where(hold_frequency[:, None], 0.0, f)
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
