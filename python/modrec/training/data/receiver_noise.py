"""Frames that hold no signal: what a receiver delivers from an empty channel.

The classifier's ``noise`` label is for these. An empty channel is rarely flat white noise: the
receiver's channel filter colours it, the ADC adds a DC offset and spurs (clock harmonics, LO
leakage), and a squelched or idle receiver delivers silence (exact zeros, or a few LSBs of
noise). Each frame draws one of three kinds:

* ``white``: circular complex Gaussian noise;
* ``coloured``: white noise through a random receiver filter: a Hamming-window FIR low-pass
  (``scipy.signal.firwin``, 15-127 taps, cutoff 0.05-0.95 of Nyquist) shifted to a random centre
  frequency within the band, optionally followed by a one-pole IIR tilt (``scipy.signal.lfilter``);
* ``silence``: all zeros, or noise 30-50 dB below full scale rounded to an 8-bit ADC's step.

White and coloured frames may carry a DC offset and a spur (a tone at a random frequency), each
-20 to +6 dB against the noise, and the receiver's IQ imbalance; every frame then gets a
random gain from ``gain_db_range`` (any gain: the model normalises its input).
"""

import numpy as np
from scipy.signal import firwin, lfilter

from . import channel

NOISE_KINDS = ("white", "coloured", "silence")
KIND_PROBS = (0.35, 0.45, 0.20)


def _complex_gaussian(rng, shape):
    out = np.empty(shape, dtype=np.complex64)
    out.real = rng.standard_normal(shape, dtype=np.float32)
    out.imag = rng.standard_normal(shape, dtype=np.float32)
    return out / np.float32(np.sqrt(2.0))


# Receiver filters around a signal (GeneratorConfig.coloured_noise_prob): centred on it and at
# least a quarter of the band wide, as after a channel filter or resampling up to 4 times.
SIGNAL_CHANNEL_CUTOFF = (0.25, 0.95)


def coloured_noise(rng, m, cutoff_range=(0.05, 0.95), centred=False):
    """(m,) complex64 unit-power noise through a random receiver filter (the ``coloured`` kind of
    the module docstring): cutoff drawn from ``cutoff_range`` (fractions of Nyquist), the passband
    at a random centre frequency inside the band, or at 0 with ``centred``."""
    taps = int(rng.integers(7, 64)) * 2 + 1
    cutoff = rng.uniform(*cutoff_range)
    h = firwin(taps, cutoff).astype(np.complex128)
    # cycles/sample, the passband stays inside the band
    centre = 0.0 if centred else rng.uniform(-(1 - cutoff), 1 - cutoff) / 2
    h *= np.exp(2j * np.pi * centre * np.arange(taps))
    w = _complex_gaussian(rng, (m + taps,))
    y = np.convolve(w, h, mode="valid")[:m]
    if rng.uniform() < 0.5:  # a tilt: one-pole IIR, as a roll-off across the band
        y = lfilter([1.0], [1.0, -rng.uniform(-0.9, 0.9)], y)
    return (y / np.sqrt(np.mean(np.abs(y) ** 2))).astype(np.complex64)


def _silence(rng, m):
    if rng.uniform() < 0.5:
        return np.zeros(m, dtype=np.complex64)
    level = 10 ** (-rng.uniform(30, 50) / 20)  # below full scale (1.0): a few steps of the ADC toggle
    step = 1 / 128  # an 8-bit ADC's step: most samples round to 0
    w = _complex_gaussian(rng, (m,)) * np.float32(level)
    return (np.round(w.real / step) * step + 1j * np.round(w.imag / step) * step).astype(np.complex64)


def noise_frames(n_frames, rng, config, gain_db_range=(-60.0, 40.0), return_kinds=False):
    """(n_frames, config.frame_len) complex64 frames with no signal in them (module docstring).

    ``rng``: a numpy Generator; ``config``: the GeneratorConfig (frame length, IQ imbalance);
    ``gain_db_range``: the receiver gain drawn per frame, dB. With ``return_kinds`` also the
    (n_frames,) array of kind names. Raises ValueError for a negative ``n_frames``.
    """
    if n_frames < 0:
        raise ValueError(f"n_frames: expected an integer >= 0, got {n_frames!r}")
    m = config.frame_len
    kinds = rng.choice(len(NOISE_KINDS), size=n_frames, p=KIND_PROBS)
    out = np.empty((n_frames, m), dtype=np.complex64)
    for i, kind in enumerate(kinds):
        if NOISE_KINDS[kind] == "silence":
            out[i] = _silence(rng, m)
            continue
        y = _complex_gaussian(rng, (m,)) if NOISE_KINDS[kind] == "white" else coloured_noise(rng, m)
        if rng.uniform() < 0.3:
            y += np.complex64(10 ** (rng.uniform(-20, 6) / 20) * np.exp(2j * np.pi * rng.uniform()))
        if rng.uniform() < 0.3:
            f, phi = rng.uniform(-0.5, 0.5), rng.uniform(0, 2 * np.pi)
            y += (10 ** (rng.uniform(-20, 6) / 20) * np.exp(1j * (2 * np.pi * f * np.arange(m) + phi))).astype(np.complex64)
        out[i] = y
    noisy = kinds != NOISE_KINDS.index("silence")
    if noisy.any():
        out[noisy] = channel.iq_imbalance(out[noisy], rng, config)
        gain = 10 ** (rng.uniform(*gain_db_range, size=int(noisy.sum())) / 20)
        out[noisy] *= gain.astype(np.float32)[:, None]
    return (out, np.array(NOISE_KINDS)[kinds]) if return_kinds else out
