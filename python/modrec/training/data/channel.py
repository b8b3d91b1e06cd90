"""Vectorised channel impairments, every parameter drawn per frame.

Order (transmitter -> receiver): multipath fading with Doppler, carrier frequency offset (with
its drift), carrier phase and phase noise, receiver IQ imbalance, AWGN, receiver gain.
"""

from functools import lru_cache

import numpy as np
from scipy.interpolate import CubicSpline

_SINUSOIDS = 8  # sum-of-sinusoids terms per tap; enough for a Rayleigh-like envelope

# Length of the interpolator that puts a tap at a fractional delay (GeneratorConfig.
# fractional_delays); RadioML 2016's generation scripts give GNU Radio's selective fading model
# the same 8 (`ntaps_mpath`) for its taps at 0, 0.9 and 1.7 samples.
FRACTIONAL_DELAY_TAPS = 8


def lead_samples(cfg):
    """Samples a transmitter must produce before a frame so that every delayed tap sees signal."""
    return cfg.max_delay_samples + (FRACTIONAL_DELAY_TAPS - 1 if cfg.fractional_delays else 0)


def fractional_delay_fir(frac):
    """Windowed-sinc fractional-delay filters (Laakso et al., "Splitting the unit delay", IEEE
    Signal Processing Magazine, 1996, section on windowed sinc design; Hann window).

    ``frac`` float array (...,) in [0, 1). Returns float32 (..., FRACTIONAL_DELAY_TAPS): the
    filter h with y[n] = sum_k h[k] x[n - k] delays x by (FRACTIONAL_DELAY_TAPS / 2 - 1) + frac
    samples, with unit gain at 0 Hz. frac = 0 gives a pure delay (one tap of 1, to rounding).
    """
    half = FRACTIONAL_DELAY_TAPS / 2
    t = np.arange(FRACTIONAL_DELAY_TAPS) - (half - 1) - np.asarray(frac, dtype=np.float64)[..., None]
    h = np.sinc(t) * 0.5 * (1 + np.cos(np.pi * t / half))
    return (h / h.sum(-1, keepdims=True)).astype(np.float32)


def offset_walk(n, m, std, rng):
    """(n, m) float64: per frame, the sum of a random walk's offsets over the samples before each
    sample (0 at sample 0), the walk taking a Gaussian step of ``std`` per sample as GNU Radio's
    channels.cfo_model and sro_model do. Added to a phase (cycles) or a time axis (samples x
    step), it is what a drifting frequency or clock rate adds to them."""
    walk = np.cumsum(rng.standard_normal((n, m)) * std, axis=1)
    return np.cumsum(walk, axis=1) - walk


@lru_cache(maxsize=32)
def _knot_matrix(n_out, n_knots):
    """(n_knots, n_out) cubic-spline matrix: tap gains are computed at a few knots only.

    Doppler spreads used here change a tap by at most a fraction of a cycle per frame, so a
    spline through a handful of knots matches the sum-of-sinusoids process to ~1e-4.
    """
    knots = np.linspace(0.0, n_out - 1.0, n_knots)
    spline = CubicSpline(knots, np.eye(n_knots), axis=0)
    return np.ascontiguousarray(spline(np.arange(n_out)).T).astype(np.complex64)


def multipath(x, n_out, rng, cfg):
    """Apply a per-frame tapped-delay-line fading channel.

    ``x`` (n, n_out + lead_samples(cfg)) complex64: the signal with lead-in samples so delayed
    taps see real signal. Tap delays are whole samples, or with ``cfg.fractional_delays`` any
    real delay (each tap through fractional_delay_fir, the whole channel then a further
    FRACTIONAL_DELAY_TAPS / 2 - 1 samples later, which a random symbol timing makes invisible).
    Returns (y (n, n_out) complex64, power_gain (n,)) where
    power_gain is the mean over the frame of sum_p |g_p(k)|^2 (1 for a flat channel).
    """
    n = x.shape[0]
    lead = x.shape[1] - n_out
    taps = cfg.max_taps
    # Draw every per-frame parameter for all frames so the random stream does not depend on
    # which frames end up faded.
    faded = rng.uniform(size=n) < cfg.fading_prob
    n_taps = rng.integers(1, taps + 1, size=n)
    spread = rng.integers(1, max(1, cfg.max_delay_samples) + 1, size=n)
    lag_u = rng.uniform(size=(n, taps))
    decay_u = rng.uniform(0.3, 1.0, size=n)
    k_db = rng.uniform(*cfg.rician_k_db_range, size=n)
    rayleigh = rng.uniform(size=n) < cfg.rayleigh_prob
    fd = rng.uniform(*cfg.doppler_range, size=n)
    alpha_u = rng.uniform(size=(n, taps, _SINUSOIDS))
    phi = rng.uniform(0, 2 * np.pi, size=(n, taps, _SINUSOIDS))
    los_angle = rng.uniform(0, 2 * np.pi, size=n)
    los_phase = rng.uniform(0, 2 * np.pi, size=n)

    y = np.ascontiguousarray(x[:, lead:])
    power_gain = np.ones(n)
    fi = np.flatnonzero(faded)
    if fi.size == 0:
        return y, power_gain
    m = fi.size
    n_taps, spread, fd = n_taps[fi], spread[fi], fd[fi]
    # Tap delays: 0 for the first tap, sorted random lags up to a per-frame spread; whole
    # samples (0..spread) or real (0 <= lag < spread).
    if cfg.fractional_delays:
        lags = np.sort(lag_u[fi] * spread[:, None], axis=1)
    else:
        lags = np.sort(np.floor(lag_u[fi] * (spread[:, None] + 1)), axis=1)
    lags[:, 0] = 0
    lags = np.minimum(lags, cfg.max_delay_samples)
    power = np.exp(-lags / (decay_u[fi] * spread)[:, None])
    power[np.arange(taps)[None, :] >= n_taps[:, None]] = 0.0
    power /= power.sum(1, keepdims=True)
    k_lin = np.where(rayleigh[fi], 0.0, 10 ** (k_db[fi] / 10))

    n_knots = int(np.clip(np.ceil(cfg.doppler_range[1] * n_out * 12) + 3, 4, max(4, n_out)))
    kt = np.linspace(0.0, n_out - 1.0, n_knots, dtype=np.float32)
    alpha = (2 * np.pi / _SINUSOIDS) * (np.arange(_SINUSOIDS) + alpha_u[fi])
    w = (2 * np.pi * fd[:, None, None] * np.cos(alpha)).astype(np.float32)
    arg = w[..., None] * kt + phi[fi].astype(np.float32)[..., None]  # (m, taps, S, knots)
    scale = np.float32(1 / np.sqrt(_SINUSOIDS))
    diffuse = np.empty((m, taps, n_knots), dtype=np.complex64)
    diffuse.real = np.cos(arg).sum(2) * scale
    diffuse.imag = np.sin(arg).sum(2) * scale
    los = np.exp(1j * (2 * np.pi * (fd * np.cos(los_angle[fi]))[:, None] * kt + los_phase[fi, None]))
    diffuse[:, 0] = np.sqrt(k_lin / (k_lin + 1))[:, None] * los + np.sqrt(1 / (k_lin + 1))[:, None] * diffuse[:, 0]
    knots = (diffuse * np.sqrt(power).astype(np.float32)[..., None]).reshape(m * taps, n_knots)
    gains = (knots @ _knot_matrix(n_out, n_knots)).reshape(m, taps, n_out)

    yf = np.zeros((m, n_out), dtype=np.complex64)
    base = (fi.astype(np.int64) * x.shape[1])[:, None] + np.arange(n_out)[None, :] + lead
    flat = x.ravel()
    if cfg.fractional_delays:
        whole = np.floor(lags).astype(np.int64)
        fir = fractional_delay_fir(lags - whole)  # (m, taps, K)
        for p in range(int(n_taps.max())):
            delayed = np.zeros((m, n_out), dtype=np.complex64)
            for k in range(FRACTIONAL_DELAY_TAPS):
                delayed += fir[:, p, k : k + 1] * flat.take(base - whole[:, p : p + 1] - k)
            yf += gains[:, p] * delayed
    else:
        lags = lags.astype(np.int64)
        for p in range(int(n_taps.max())):
            yf += gains[:, p] * flat.take(base - lags[:, p : p + 1])
    y[fi] = yf
    power_gain[fi] = np.mean(gains.real**2 + gains.imag**2, axis=2).sum(1)
    return y, power_gain


def oscillator(y, rng, cfg):
    """Carrier frequency offset, its drift, random carrier phase and Wiener phase noise (in place).

    The offset is drawn per frame, U(-cfo_max, cfo_max) cycles/sample; with cfo_drift_std > 0 it
    then walks within the frame (a Gaussian step of that std, cycles/sample, per sample: GNU
    Radio's channels.cfo_model, whose bound is the per-frame range here) and the phase is its
    running sum.
    """
    n, m = y.shape
    cfo = rng.uniform(-cfg.cfo_max, cfg.cfo_max, size=n)
    theta = (2 * np.pi * cfo)[:, None] * np.arange(m)[None, :] + rng.uniform(0, 2 * np.pi, size=(n, 1))
    if cfg.cfo_drift_std > 0:  # (no draw at 0: datasets built before the option stay as they were)
        theta += 2 * np.pi * offset_walk(n, m, cfg.cfo_drift_std, rng)
    pn = rng.uniform(*cfg.phase_noise_range, size=n).astype(np.float32)
    if np.any(pn > 0):
        # Uniform increments with the same variance: after the running sum the walk is
        # Gaussian anyway, and uniforms cost a fraction of normals.
        steps = rng.random((n, m), dtype=np.float32) - np.float32(0.5)
        theta += np.cumsum(steps * (pn * np.float32(np.sqrt(12.0)))[:, None], axis=1)
    theta = theta.astype(np.float32)
    rot = np.empty((n, m), dtype=np.complex64)
    rot.real = np.cos(theta)
    rot.imag = np.sin(theta)
    y *= rot
    return y


def iq_imbalance(y, rng, cfg):
    """Receiver IQ gain/phase imbalance: Q' = g (cos(e) Q + sin(e) I)."""
    n = y.shape[0]
    g = (10 ** (rng.uniform(-1, 1, size=n) * cfg.iq_gain_imbalance_db / 20)).astype(np.float32)[:, None]
    e = np.deg2rad(rng.uniform(-1, 1, size=n) * cfg.iq_phase_imbalance_deg).astype(np.float32)[:, None]
    i = y.real.copy()
    y.imag = g * (np.cos(e) * y.imag + np.sin(e) * i)
    return y


def awgn(n_frames, n_samples, noise_power, rng):
    """Circular complex white Gaussian noise with per-frame total power ``noise_power`` (n,)."""
    scale = np.sqrt(noise_power / 2.0).astype(np.float32)[:, None]
    w = np.empty((n_frames, n_samples), dtype=np.complex64)
    w.real = rng.standard_normal((n_frames, n_samples), dtype=np.float32) * scale
    w.imag = rng.standard_normal((n_frames, n_samples), dtype=np.float32) * scale
    return w
