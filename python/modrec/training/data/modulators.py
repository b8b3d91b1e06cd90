"""Vectorised baseband modulators: linear (PSK/PAM/QAM), continuous-phase FSK and analog.

Every modulator evaluates its waveform directly at arbitrary per-frame sample instants
``t`` (in symbol periods for the digital ones, in audio samples for the analog ones), so one
gather pass gives pulse shaping, fractional symbol timing and the per-frame oversampling
(samples/symbol jitter plus clock offset) at once, without a resampler afterwards.

numpy/scipy only: this module is shared with the torch-free GNU Radio demo source.
"""

from functools import lru_cache

import numpy as np
from scipy.special import ndtr

# Pulse tables are sampled at PHASES points per symbol; the nearest phase is used, so the
# timing quantisation is 1/PHASES of a symbol (1/8 sample at 8 samples/symbol).
PHASES = 64
# Symbols that contribute to one output sample (pulse window of TAPS symbol periods).
TAPS = 8
_HALF = TAPS // 2 - 1  # window covers symbols floor(t) - _HALF .. floor(t) - _HALF + TAPS - 1

# Unit average energy constellations.
_QAM16_LEVELS = np.array([-3, -1, 1, 3], dtype=np.float64)
_QAM64_LEVELS = np.arange(-7, 8, 2, dtype=np.float64)


def _square_qam(levels):
    pts = (levels[:, None] + 1j * levels[None, :]).ravel()
    return pts / np.sqrt(np.mean(np.abs(pts) ** 2))


CONSTELLATIONS = {
    "BPSK": np.array([1, -1], dtype=np.complex128),
    "QPSK": np.exp(1j * (np.pi / 4 + np.pi / 2 * np.arange(4))),
    "8PSK": np.exp(1j * (2 * np.pi / 8 * np.arange(8))),
    "PAM4": np.array([-3, -1, 1, 3], dtype=np.complex128) / np.sqrt(5.0),
    "QAM16": _square_qam(_QAM16_LEVELS),
    "QAM64": _square_qam(_QAM64_LEVELS),
}
LINEAR_CLASSES = tuple(CONSTELLATIONS)
FSK_CLASSES = ("CPFSK", "GFSK")
ANALOG_CLASSES = ("AM-DSB", "AM-SSB", "WBFM")
SUPPORTED_CLASSES = LINEAR_CLASSES + FSK_CLASSES + ANALOG_CLASSES

# Parameter grids for the cached pulse tables; a frame uses the nearest grid value, which is
# finer than anything a classifier could resolve.
_GRID_STEP = 0.01


def _window_offsets():
    """Offsets t - m (symbols) of every table entry: shape (PHASES, TAPS)."""
    ph = np.arange(PHASES)[:, None] / PHASES
    j = np.arange(TAPS)[None, :]
    return ph + _HALF - j


def _rrc(t, beta):
    """Root-raised-cosine pulse with unit symbol period, closed form with its two limits."""
    t = np.asarray(t, dtype=np.float64)
    out = np.empty_like(t)
    at0 = np.abs(t) < 1e-9
    sing = np.abs(np.abs(4.0 * beta * t) - 1.0) < 1e-9
    reg = ~(at0 | sing)
    tr = t[reg]
    out[reg] = (np.sin(np.pi * tr * (1 - beta)) + 4 * beta * tr * np.cos(np.pi * tr * (1 + beta))) / (
        np.pi * tr * (1 - (4 * beta * tr) ** 2)
    )
    out[at0] = 1 - beta + 4 * beta / np.pi
    out[sing] = beta / np.sqrt(2) * (
        (1 + 2 / np.pi) * np.sin(np.pi / (4 * beta)) + (1 - 2 / np.pi) * np.cos(np.pi / (4 * beta))
    )
    return out


def param_grid(lo, hi):
    """Grid values covering [lo, hi] with _GRID_STEP spacing (at least one point)."""
    n = max(1, int(round((hi - lo) / _GRID_STEP)) + 1)
    return np.linspace(lo, hi, n)


@lru_cache(maxsize=16)
def rrc_table(lo, hi):
    """Flattened (n_beta, PHASES, TAPS) float32 RRC table and its roll-off grid."""
    d = _window_offsets()
    # Truncating at +-TAPS/2 symbols leaves a step; a cosine taper over the outer symbol
    # keeps the spectral side lobes from that truncation well below the noise floors used.
    edge = np.clip(np.abs(d) - (TAPS / 2 - 1), 0.0, 1.0)
    taper = 0.5 * (1 + np.cos(np.pi * edge))
    betas = param_grid(lo, hi)
    tables = []
    for beta in betas:
        p = _rrc(d, beta) * taper
        # Unit pulse energy => unit mean power for a unit-energy constellation.
        p /= np.sqrt(np.sum(p**2) / PHASES)
        tables.append(p)
    return np.ascontiguousarray(np.stack(tables), dtype=np.float32).ravel(), betas


def _psi(z):
    # Antiderivative of the normal CDF: d/dz [z*Phi(z) + phi(z)] = Phi(z).
    return z * ndtr(z) + np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)


@lru_cache(maxsize=16)
def phase_pulse_table(kind, lo, hi):
    """Flattened (n_param, PHASES, TAPS) table of the FSK phase pulse q(t) (0 -> 1).

    ``kind`` "rect" is CPFSK (frequency pulse = one symbol rectangle, q is a ramp); "gauss"
    is GFSK, the rectangle convolved with a Gaussian of bandwidth-time product BT.
    """
    d = _window_offsets()
    if kind == "rect":
        return np.clip(d, 0.0, 1.0).astype(np.float32).ravel(), np.array([0.0])
    bts = param_grid(lo, hi)
    tables = []
    for bt in bts:
        sigma = np.sqrt(np.log(2.0)) / (2 * np.pi * bt)
        q = sigma * (_psi(d / sigma) - _psi((d - 1.0) / sigma))
        tables.append(q)
    return np.ascontiguousarray(np.stack(tables), dtype=np.float32).ravel(), bts


def _window_indices(t, n_sym, table_row):
    """Gather bases for symbol windows and table rows at sample instants ``t`` (n, M)."""
    n = t.shape[0]
    ti = np.rint(t * PHASES).astype(np.int64)
    m0 = ti // PHASES
    ph = ti - m0 * PHASES
    sym_base = (np.arange(n, dtype=np.int64) * n_sym)[:, None] + (m0 - _HALF)
    tab_base = (table_row.astype(np.int64)[:, None] * PHASES + ph) * TAPS
    return sym_base, tab_base


def symbols_needed(t_last_max):
    """Symbols per frame so that every window around times <= t_last_max is in range."""
    return int(np.ceil(t_last_max)) + TAPS + 2


def linear_modulate(sym, t, table, table_row):
    """Pulse-shaped complex baseband sum_m sym[m] p(t - m) at instants ``t`` (n, M).

    ``sym`` (n, n_sym) complex64 symbols; ``t`` must satisfy _HALF <= t < n_sym - TAPS + _HALF.
    """
    n_sym = sym.shape[1]
    sym_base, tab_base = _window_indices(t, n_sym, table_row)
    flat = sym.ravel()
    re = flat.real.copy()
    im = flat.imag.copy()
    acc_re = np.zeros(t.shape, dtype=np.float32)
    acc_im = np.zeros(t.shape, dtype=np.float32)
    for j in range(TAPS):
        h = table.take(tab_base + j)
        idx = sym_base + j
        acc_re += h * re.take(idx)
        acc_im += h * im.take(idx)
    out = np.empty(t.shape, dtype=np.complex64)
    out.real = acc_re
    out.imag = acc_im
    return out


def fsk_phase(bits, t, table, table_row, index):
    """Continuous phase pi*h*sum_m a_m q(t - m) at instants ``t`` (n, M), a_m = +-1.

    Symbols older than the window have q = 1, so their contribution is a running sum.
    """
    n, n_sym = bits.shape
    sym_base, tab_base = _window_indices(t, n_sym, table_row)
    flat = bits.ravel().astype(np.float32)
    # Exclusive cumulative sum per frame: csum[m] = sum of a_i for i < m.
    csum = np.zeros((n, n_sym + 1), dtype=np.float64)
    np.cumsum(bits, axis=1, out=csum[:, 1:])
    acc = csum[:, :-1].ravel().take(sym_base).astype(np.float32)
    for j in range(TAPS):
        acc += table.take(tab_base + j) * flat.take(sym_base + j)
    return (np.pi * index)[:, None].astype(np.float32) * acc


def interpolate_audio(pool, start, ratio, n_out):
    """Catmull-Rom interpolation of ``pool`` at start + k*ratio, k < n_out, per frame.

    ``pool`` 1-D real or complex; ``start``/``ratio`` (n,) in pool samples. The audio pool is
    band-limited well below its Nyquist rate, so a 4-tap cubic is transparent here.
    """
    t = start[:, None] + ratio[:, None] * np.arange(n_out)[None, :]
    i = np.floor(t).astype(np.int64)
    mu = (t - i).astype(np.float32)
    mu2 = mu * mu
    mu3 = mu2 * mu
    w0 = -0.5 * mu3 + mu2 - 0.5 * mu
    w1 = 1.5 * mu3 - 2.5 * mu2 + 1.0
    w2 = -1.5 * mu3 + 2.0 * mu2 + 0.5 * mu
    w3 = 0.5 * mu3 - 0.5 * mu2
    return (
        w0 * pool.take(i - 1) + w1 * pool.take(i) + w2 * pool.take(i + 1) + w3 * pool.take(i + 2)
    )
