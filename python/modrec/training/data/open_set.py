"""Modulations outside the training classes, for open-set calibration and testing only.

A classifier trained on the RadioML 2016.10a classes must say ``unknown`` for these; they are
never training classes (``GeneratorConfig.classes`` refuses them). Each transmitter returns
(n, m) complex64 frames with unit long-term mean power; the generator then sends them through
the same channel (multipath, oscillator, IQ imbalance, AWGN at the frame's SNR, receiver gain)
as the known classes, so only the modulation differs.

=============  ==============================================================================
OOK            on-off keying, RRC pulses (amplitude 0 or sqrt 2)
OQPSK          offset QPSK: Q delayed by half a symbol (IEEE 802.15.4's 2.4 GHz PHY)
PI4-DQPSK      pi/4-shifted differential QPSK (TETRA, IS-136): phase steps +-pi/4, +-3pi/4
PAM8           8-level PAM, RRC pulses
APSK32         DVB-S2 32APSK, rings 4+12+16, radius ratios 2.84 and 5.27 (EN 302 307-1, 5.4.4)
OFDM           cyclic-prefix OFDM, 64-point FFT, 48 QPSK/16QAM subcarriers, CP 16 (802.11a-like)
LFM            linear FM chirps, sawtooth sweeps of random span and period
DSSS           BPSK spread by an 11-chip Barker code (802.11b DSSS), 1-2 samples per chip
=============  ==============================================================================

MSK is left out on purpose: it is CPFSK with h = 0.5, inside the training range of the CPFSK
class (``cpfsk_index_range``), so calling it CPFSK is right, not an open-set error.
"""

import numpy as np

from . import modulators as mod

OPEN_SET_MODULATIONS = ("OOK", "OQPSK", "PI4-DQPSK", "PAM8", "APSK32", "OFDM", "LFM", "DSSS")

BARKER_11 = np.array([1, -1, 1, 1, -1, 1, 1, 1, -1, -1, -1], dtype=np.float32)
OFDM_FFT, OFDM_USED, OFDM_CP = 64, 48, 16


def _unit_power(points):
    points = np.asarray(points, dtype=np.complex128)
    return points / np.sqrt(np.mean(np.abs(points) ** 2))


def _apsk32():
    radii = np.array([1.0, 2.84, 5.27])
    counts = (4, 12, 16)
    offsets = (np.pi / 4, np.pi / 12, 0.0)
    pts = [r * np.exp(1j * (off + 2 * np.pi * np.arange(k) / k)) for r, k, off in zip(radii, counts, offsets)]
    return _unit_power(np.concatenate(pts))


CONSTELLATIONS = {
    "OOK": _unit_power([0.0, 1.0]),
    "PAM8": _unit_power(np.arange(-7, 8, 2)),
    "APSK32": _apsk32(),
}


def _pulse_shaped(sym, t, rng, cfg):
    table, betas = mod.rrc_table(*cfg.rolloff_range)
    return mod.linear_modulate(sym.astype(np.complex64), t, table, rng.integers(0, len(betas), size=sym.shape[0]))


def _tx_constellation(name, n, m, rng, cfg, symbol_times):
    t, n_sym = symbol_times(n, m, rng, cfg)
    points = CONSTELLATIONS[name]
    return _pulse_shaped(points[rng.integers(0, len(points), size=(n, n_sym))], t, rng, cfg)


def _tx_pi4_dqpsk(n, m, rng, cfg, symbol_times):
    t, n_sym = symbol_times(n, m, rng, cfg)
    steps = np.array([1, 3, -1, -3]) * np.pi / 4
    phase = np.cumsum(steps[rng.integers(0, 4, size=(n, n_sym))], axis=1) + rng.uniform(0, 2 * np.pi, size=(n, 1))
    return _pulse_shaped(np.exp(1j * phase), t, rng, cfg)


def _tx_oqpsk(n, m, rng, cfg, symbol_times):
    t, n_sym = symbol_times(n, m, rng, cfg)
    bits = ((2 * rng.integers(0, 2, size=(2, n, n_sym)) - 1) / np.sqrt(2.0)).astype(np.float32)
    i = _pulse_shaped(bits[0].astype(np.complex64), t, rng, cfg).real
    q = _pulse_shaped(bits[1].astype(np.complex64), t - 0.5, rng, cfg).real  # half a symbol later
    out = np.empty((n, m), dtype=np.complex64)
    out.real, out.imag = i, q
    return out


def _tx_ofdm(n, m, rng, cfg, symbol_times=None):
    symbol = OFDM_FFT + OFDM_CP
    n_symbols = -(-m // symbol) + 1
    used = np.r_[-OFDM_USED // 2 : 0, 1 : OFDM_USED // 2 + 1] % OFDM_FFT  # no DC carrier
    qam16 = rng.uniform(size=n) < 0.5
    grid = np.zeros((n, n_symbols, OFDM_FFT), dtype=np.complex128)
    qpsk = np.exp(1j * (np.pi / 4 + np.pi / 2 * rng.integers(0, 4, size=(n, n_symbols, len(used)))))
    levels = np.array([-3, -1, 1, 3]) / np.sqrt(10.0)
    q16 = levels[rng.integers(0, 4, size=(n, n_symbols, len(used)))] + 1j * levels[rng.integers(0, 4, size=(n, n_symbols, len(used)))]
    grid[:, :, used] = np.where(qam16[:, None, None], q16, qpsk)
    body = np.fft.ifft(grid, axis=2) * (OFDM_FFT / np.sqrt(len(used)))  # unit mean power per sample
    frames = np.concatenate([body[:, :, -OFDM_CP:], body], axis=2).reshape(n, -1)
    start = rng.integers(0, symbol, size=n)
    return np.take_along_axis(frames, start[:, None] + np.arange(m)[None, :], axis=1).astype(np.complex64)


def _tx_lfm(n, m, rng, cfg, symbol_times=None):
    span = rng.uniform(0.05, 0.4, size=(n, 1))  # swept bandwidth, cycles/sample
    period = rng.uniform(32, 4 * m, size=(n, 1))  # samples per sweep
    k = np.arange(m)[None, :] + rng.uniform(0, period)
    frac = (k % period) / period
    # phase of a sawtooth sweep from -span/2 to span/2: 2 pi (f0 k + span k^2 / (2 period)), per sweep
    phase = 2 * np.pi * (-span / 2 * frac * period + span * period * frac**2 / 2)
    phase += rng.uniform(0, 2 * np.pi, size=(n, 1))
    return np.exp(1j * phase).astype(np.complex64)


def _tx_dsss(n, m, rng, cfg, symbol_times=None):
    samples_per_chip = rng.integers(1, 3, size=n)
    chips_needed = m + len(BARKER_11)
    bits = 2 * rng.integers(0, 2, size=(n, chips_needed // len(BARKER_11) + 2)) - 1
    chips = (bits[:, :, None] * BARKER_11[None, None, :]).reshape(n, -1).astype(np.float32)
    k = np.arange(m)[None, :] // samples_per_chip[:, None] + rng.integers(0, len(BARKER_11), size=(n, 1))
    return np.take_along_axis(chips, k, axis=1).astype(np.complex64)


# the waveforms without a constellation table; analog-like ones ignore the symbol instants
_TRANSMITTERS = {"PI4-DQPSK": _tx_pi4_dqpsk, "OQPSK": _tx_oqpsk, "OFDM": _tx_ofdm, "LFM": _tx_lfm, "DSSS": _tx_dsss}


def transmit(name, n, m, rng, cfg, symbol_times):
    """(n, m) complex64 frames of open-set modulation ``name`` with unit mean power.

    ``cfg``: the GeneratorConfig (roll-off range, nominal samples per symbol and its jitter);
    ``symbol_times(n, m, rng, cfg)``: the generator's per-frame symbol instants, so digital
    open-set signals have the same oversampling statistics as the known classes.
    """
    if name in CONSTELLATIONS:
        return _tx_constellation(name, n, m, rng, cfg, symbol_times)
    if name in _TRANSMITTERS:
        return _TRANSMITTERS[name](n, m, rng, cfg, symbol_times)
    raise ValueError(f"open-set modulation: expected one of {list(OPEN_SET_MODULATIONS)}, got {name!r}")
