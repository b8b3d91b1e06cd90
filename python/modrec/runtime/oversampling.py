"""How many samples per symbol a stream has, estimated from the stream itself.

A model recognises signals at the samples per symbol it was trained at (metadata
``samples_per_symbol``, 8 for the shipped students); a stream at another oversampling gets
confident nonsense (QPSK at 4 samples per symbol was called WBFM at confidence 0.95). This
module finds the symbol-rate line of the stream's cyclostationarity and says when it is far from
the model's.

Method: a digitally modulated signal is cyclostationary at its symbol rate. Its squared envelope
``|x|^2`` (linear modulations with excess bandwidth: PSK, PAM, QAM) and the magnitude of the
changes of its instantaneous frequency (FSK, whose frequency steps at symbol boundaries) hold a
spectral line at the cyclic frequency 1/sps (W. A. Gardner, "Exploitation of spectral redundancy
in cyclostationary signals", IEEE Signal Processing Magazine, 1991; the squared-envelope
symbol-rate detector). Each feature's spectrum is averaged over segments (Welch's method), and a
line's strength is its height over the spectrum's running median around it, so the noise floor,
its colour and the signal's level cancel. Analog signals and noise have no symbol-rate line: the
estimate is then "none" (NaN), never a mismatch.

Measured with ``apps/oversampling_study.py`` (docs/REAL_INPUTS.md): at 10-18 dB it flags
38-64 % of the frames of streams at 2 and 4 samples per symbol (PSK, PAM and QAM the most, FSK
and analog signals, which have no symbol rate, much less), 12-25 % at 16, where the line stands
lower over a fading channel's slow variations, and 0-0.8 % at the model's own 8 (an AM-SSB
voice's harmonics). Receiver noise with DC offsets and spurs gave no mismatch (tests).

numpy and scipy only. The classifier block runs the same method in C++
(lib/symbol_rate_estimator.cc, built from ``estimator_constants()``), about ten times faster (the
check's cost in the block); its estimates are these, its strengths these within float32 rounding
(tests/test_oversampling.py runs every behaviour test on both).
"""

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import welch

SEGMENT_LEN = 1024  # samples per Welch segment: cyclic-frequency resolution 1/1024 cycles/sample
WINDOW_LEN = 16384  # samples per estimate (16 segments; 128 frames of 128 samples)
# Every window is estimated (2.5-3.5 ms each). Estimating one in 8 cut the check's cost from 25 to
# 7 % of the block, but a window's verdict then judged the next seven too, and the demo's stream
# (a new modulation every 4,096 samples) fell from 76.7 to 63.8 % correct (measured 2026-11-30).
MIN_SPS, MAX_SPS = 1.6, 40.0  # oversampling searched: cyclic frequencies 1/40 .. 1/1.6 cycles/sample
LINE_STRENGTH = 10.0  # a line is at least this many times the running median of its spectrum
MISMATCH_RATIO = 1.4  # an estimate more than this factor (either way) off the model's is a mismatch
_MEDIAN_HALF_WIDTH = 16  # bins either side in the running median (the floor a line stands on)
_HARMONIC_SHARE = 0.3  # a line at 1/2 or 1/3 of the strongest one, this strong, is its fundamental
# A line must also stand this high in the feature's own units (the envelope relative to its mean,
# the frequency steps in radians): a clean tone's float32 rounding leaves patterned "lines" 1e-7
# high over an almost empty spectrum, which the running median alone would call strong.
_MIN_LINE_AMPLITUDE = 1e-3
_MAX_NON_FINITE = 0.01  # a window with more NaN/Inf samples than this share gives no estimate


@dataclass(frozen=True)
class SymbolRateLine:
    """The strongest symbol-rate line found: ``samples_per_symbol`` (float, 1 / its cyclic
    frequency; NaN when no line reaches the required strength) and ``strength`` (float, its
    height over the spectrum's running median; 0.0 when nothing could be measured)."""

    samples_per_symbol: float
    strength: float


def _running_median(values, half_width):
    """The median of each value's 2 * half_width + 1 neighbours, the ends extended with the edge
    values: scipy.ndimage.median_filter(values, size=2 * half_width + 1, mode="nearest"), bit for bit
    (tested), in half its time on these 1,025-bin spectra."""
    padded = np.pad(values, half_width, mode="edge")
    return np.median(sliding_window_view(padded, 2 * half_width + 1), axis=1)


def _line_spectrum(feature, segment_len, line_strength):
    """Welch spectrum of a real feature (Hann segments, no overlap, each segment's mean removed),
    divided by its running median (_running_median) or, where that is lower, by the floor a
    sinusoid of amplitude _MIN_LINE_AMPLITUDE (power a^2 / 2) needs to reach ``line_strength``."""
    _, spectrum = welch(feature, window="hann", nperseg=segment_len, noverlap=0, detrend="constant",
                        scaling="spectrum")
    floor = _running_median(spectrum, _MEDIAN_HALF_WIDTH)
    floor = np.maximum(floor, _MIN_LINE_AMPLITUDE**2 / 2 / line_strength)
    return spectrum / floor


# Half-sample interpolator: a Hann-windowed sinc at offsets k - 1/2, k = -7..8 (16 taps). Not
# resample_poly (runtime/resample.py's filter): its 41 taps took 2.5 ms per window against 0.5 ms
# here (measured), in the block's work(), and the features need no more than this.
_HALF_TAPS = np.arange(-7, 9) - 0.5
_HALF_SAMPLE = np.sinc(_HALF_TAPS) * np.hanning(len(_HALF_TAPS) + 2)[1:-1]
_HALF_SAMPLE /= _HALF_SAMPLE.sum()


def _interpolate_by_2(x):
    """x (N,) complex at twice its rate: its samples, and between them the windowed-sinc
    interpolation (_HALF_SAMPLE); the ends are cut so every value is a full interpolation."""
    taps = _HALF_SAMPLE[::-1]
    # mid[i] lies between x[i + 7] and x[i + 8]; real and imaginary parts apart: numpy's complex
    # convolution is about twice as slow as two real ones
    n_mid = len(x) - len(taps) + 1
    out = np.empty(2 * n_mid, dtype=np.result_type(x, np.complex64))
    out[0::2] = x[7 : 7 + n_mid]
    out.real[1::2] = np.convolve(x.real, taps, mode="valid")
    out.imag[1::2] = np.convolve(x.imag, taps, mode="valid")
    return out


def estimate_samples_per_symbol(samples, segment_len=SEGMENT_LEN, min_sps=MIN_SPS, max_sps=MAX_SPS,
                                line_strength=LINE_STRENGTH, interpolated_by=1):
    """The samples per symbol of the digital signal in ``samples``, from its symbol-rate line.

    samples: complex (N,), N >= 4 * segment_len (more segments, a steadier floor), contiguous
    stream samples at one rate. Searches cyclic frequencies 1/max_sps .. 1/min_sps
    (cycles/sample) in the spectra of the squared envelope and of the magnitude of the
    instantaneous frequency's changes; when the strongest line has a line at half or a third of
    its frequency (a harmonic of the symbol rate), that one is the symbol rate.

    Returns SymbolRateLine: NaN samples per symbol when no line is ``line_strength`` times its
    floor (analog signals, noise, silence) or when more than 1 % of ``samples`` are NaN/Inf (fewer
    are taken as zeros). ``interpolated_by``: the
    factor the stream was interpolated by before (an integer >= 1, the ``up`` of a resampler):
    an interpolator's output is periodic at that factor, so lines at multiples of 1/interpolated_by
    cycles/sample are its own and are not searched. Raises ValueError for a
    non-1-D input, too few samples, or bad limits.
    """
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"samples: expected a 1-D complex array, got shape {x.shape}")
    if not (isinstance(segment_len, (int, np.integer)) and segment_len >= 64):
        raise ValueError(f"segment_len: expected an integer >= 64, got {segment_len!r}")
    if len(x) < 4 * segment_len:
        raise ValueError(f"samples: expected at least {4 * segment_len} (4 segments of {segment_len}), got {len(x)}")
    if not (1.0 < min_sps < max_sps <= segment_len / 4):
        raise ValueError(f"min_sps, max_sps: expected 1 < min_sps < max_sps <= {segment_len / 4:g}, "
                         f"got {min_sps!r}, {max_sps!r}")
    if not (isinstance(interpolated_by, (int, np.integer)) and interpolated_by >= 1):
        raise ValueError(f"interpolated_by: expected an integer >= 1, got {interpolated_by!r}")
    finite = np.isfinite(x)
    if not finite.all():
        # a few bad samples (a dropped buffer) are zeroed rather than costing the window
        if 1.0 - finite.mean() > _MAX_NON_FINITE:
            return SymbolRateLine(math.nan, 0.0)
        x = np.where(finite, x, 0)
    # Both features are nonlinear: |x|^2 of a signal spanning most of the band spans twice it, so
    # at 2 samples per symbol its symbol-rate line would sit at the feature's Nyquist frequency,
    # seen or not by the sampling phase. Interpolating the window by 2 first keeps it clear; a bin k of the 2 * segment_len spectra is then a cyclic frequency of k / segment_len.
    x = _interpolate_by_2(x.astype(np.complex128, copy=False))  # float64: no overflow at any level
    envelope = x.real**2 + x.imag**2
    level = envelope.mean()
    if not level > 0:  # silence
        return SymbolRateLine(math.nan, 0.0)
    envelope /= level  # relative to its mean: the line's height does not depend on the gain
    frequency_changes = np.abs(np.diff(np.angle(x[1:] * np.conj(x[:-1]))))
    bins = np.arange(segment_len + 1) / segment_len
    searched = (bins >= 1.0 / max_sps) & (bins <= 1.0 / min_sps)
    for k in range(1, interpolated_by):  # the interpolator's lines, with their leakage
        centre = round(k * segment_len / interpolated_by)
        searched[max(centre - 2, 0) : centre + 3] = False
    best = SymbolRateLine(math.nan, 0.0)
    for feature in (envelope, frequency_changes):
        ratio = np.where(searched, _line_spectrum(feature, 2 * segment_len, line_strength), 0.0)
        k = int(np.argmax(ratio))
        strength = float(ratio[k])
        for divisor in (3, 2):  # the lowest harmonic first
            j = int(round(k / divisor))
            lo, hi = max(j - 1, 0), j + 2
            if searched[j] and ratio[lo:hi].max() >= _HARMONIC_SHARE * strength:
                k = lo + int(np.argmax(ratio[lo:hi]))
                break
        if strength > best.strength and k > 0:
            best = SymbolRateLine(segment_len / k, strength)
    if best.strength < line_strength:
        return SymbolRateLine(math.nan, best.strength)
    return best


def estimator_constants():
    """The method's constants as the keyword arguments of its C++ twin
    (``gnuradio.modrec.modrec_python.symbol_rate_estimator``): this module is their one home."""
    return dict(segment_len=SEGMENT_LEN, min_sps=MIN_SPS, max_sps=MAX_SPS, line_strength=LINE_STRENGTH,
                half_sample_taps=[float(t) for t in _HALF_SAMPLE], median_half_width=_MEDIAN_HALF_WIDTH,
                harmonic_share=_HARMONIC_SHARE, min_line_amplitude=_MIN_LINE_AMPLITUDE,
                max_non_finite=_MAX_NON_FINITE)


def is_mismatch(samples_per_symbol, model_samples_per_symbol, ratio=MISMATCH_RATIO):
    """Whether an estimate (NaN: none, never a mismatch) is more than ``ratio`` times off the
    model's samples per symbol, either way."""
    if not math.isfinite(samples_per_symbol):
        return False
    return not (model_samples_per_symbol / ratio <= samples_per_symbol <= model_samples_per_symbol * ratio)


class OversamplingMonitor:
    """The samples per symbol of a stream, estimated over each ``window_len`` samples, and the
    verdict on each frame cut from it.

    ``observe(samples)`` takes the stream at the model's rate (after any resampling), in order;
    every ``window_len`` samples it estimates over those samples (``estimate_samples_per_symbol``).
    ``judge(n)`` gives the next ``n`` frames, in order (frame i of the run starts at model-rate
    sample ``i * hop`` and ends at ``i * hop + frame_len``), the verdict of the last window that
    ended at or before the frame's end: its estimate (float, NaN: no line, or no window yet) and
    whether that is a mismatch (more than MISMATCH_RATIO off ``model_samples_per_symbol``). So the
    verdicts depend on the stream alone, not on how it is cut into calls: the classifier block and
    ``modrec classify`` agree frame for frame (but where a window's line is within float32
    rounding of LINE_STRENGTH: the block's estimator is the C++ twin). Frames ending within the first ``window_len``
    samples are never called a mismatch. ``interpolated_by``: the ``up`` factor of the resampler
    in front (framing.ResampledFramer), whose own lines are not symbol rates. ``estimate``: the
    estimator, a callable with ``estimate_samples_per_symbol``'s signature returning a
    SymbolRateLine (the classifier block passes the C++ twin's, classifier.compiled_estimate).
    """

    def __init__(self, model_samples_per_symbol, frame_len, hop, window_len=WINDOW_LEN, interpolated_by=1,
                 estimate=estimate_samples_per_symbol):
        if not (isinstance(window_len, (int, np.integer)) and window_len >= 4 * SEGMENT_LEN):
            raise ValueError(f"window_len: expected an integer >= {4 * SEGMENT_LEN}, got {window_len!r}")
        self.model_samples_per_symbol = float(model_samples_per_symbol)
        self.frame_len, self.hop = int(frame_len), int(hop)
        self.window_len = int(window_len)
        self.interpolated_by = int(interpolated_by)
        self._estimate = estimate
        self.reset()

    def reset(self):
        """Forget the stream (a new run starts at sample 0): no windows, no frames judged."""
        self._chunks, self._n = [], 0
        self._seen = 0  # model-rate samples observed
        self._frames = 0  # frames judged
        self._verdicts = []  # (window end, estimate, mismatch), ends ascending
        # the latest window's verdict, for logs and properties
        self.estimate, self.strength, self.mismatch = math.nan, 0.0, False
        self.windows = 0  # windows estimated in this run

    def observe(self, samples):
        """Take the next complex samples (1-D) of the stream; returns True when a window was
        estimated (``estimate``, ``strength`` and ``mismatch`` then hold the newest one's)."""
        samples = np.asarray(samples).ravel()
        windows_before = self.windows
        fresh = False  # whether the last kept chunk is a view of this call's samples
        while len(samples):
            take = min(len(samples), self.window_len - self._n)
            self._chunks.append(samples[:take])
            fresh = True
            self._n += take
            self._seen += take
            samples = samples[take:]
            if self._n == self.window_len:
                window = self._chunks[0] if len(self._chunks) == 1 else np.concatenate(self._chunks)
                self._chunks, self._n, fresh = [], 0, False
                line = self._estimate(window, interpolated_by=self.interpolated_by)
                self.estimate, self.strength = line.samples_per_symbol, line.strength
                self.mismatch = is_mismatch(self.estimate, self.model_samples_per_symbol)
                self._verdicts.append((self._seen, self.estimate, self.mismatch))
                self.windows += 1
        if fresh:
            # the rest of this call's samples, kept as a copy: the caller may reuse its buffer
            # (GNU Radio does); chunks kept from earlier calls are copies already
            self._chunks[-1] = self._chunks[-1].copy()
        return self.windows > windows_before

    def judge(self, n_frames):
        """Verdicts on the next ``n_frames`` frames: (estimate float32 (n,), mismatch bool (n,)).
        A frame reaching past the samples observed (a resampler's flush at the end of a stream)
        gets the newest window's verdict."""
        ends = (self._frames + np.arange(n_frames, dtype=np.int64)) * self.hop + self.frame_len
        self._frames += n_frames
        window_ends = np.array([end for end, _, _ in self._verdicts], dtype=np.int64)
        which = np.searchsorted(window_ends, ends, side="right") - 1  # -1: no window yet
        estimates = np.array([math.nan] + [e for _, e, _ in self._verdicts], dtype=np.float32)[which + 1]
        mismatch = np.array([False] + [m for _, _, m in self._verdicts], dtype=bool)[which + 1]
        if n_frames:  # windows before the one judging the newest frame are no longer needed
            self._verdicts = self._verdicts[max(int(which[-1]), 0):]
        return estimates, mismatch
