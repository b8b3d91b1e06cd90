"""Rational resampling of a capture to the samples per symbol a model was trained at.

A model only recognises signals at its training oversampling (``samples_per_symbol`` in its
metadata); a capture at ``sample_rate`` Hz of a ``symbol_rate`` baud signal has
``sample_rate / symbol_rate`` samples per symbol and must be brought to the model's.

``StreamResampler`` reproduces ``scipy.signal.resample_poly(x, up, down)`` (its default
Kaiser-windowed FIR, zero padding at both ends) chunk by chunk, so a recording far larger than
memory can be resampled in pieces and still give the same samples as resampling it whole.
"""

import math
from fractions import Fraction

import numpy as np
from scipy.signal import firwin, upfirdn

# resample_poly's default window.
_WINDOW = ("kaiser", 5.0)


def _positive_number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def _positive_int(name, value):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def rational_ratio(sps_in, sps_out, max_denominator=1000):
    """Reduced integers ``(up, down)`` with ``up / down`` closest to ``sps_out / sps_in``.

    ``sps_in``, ``sps_out``: samples per symbol (positive, finite). The ratio is approximated by
    ``fractions.Fraction.limit_denominator(max_denominator)``, so ``down <= max_denominator``.
    Raises ValueError for non-positive or non-finite inputs, or a ratio below
    ``1 / (2 * max_denominator)`` (it would round to zero).
    """
    _positive_number("sps_in", sps_in)
    _positive_number("sps_out", sps_out)
    max_denominator = _positive_int("max_denominator", max_denominator)
    # Fraction(float) is exact, so the only approximation is limit_denominator's.
    ratio = (Fraction(sps_out) / Fraction(sps_in)).limit_denominator(max_denominator)
    if ratio.numerator == 0:
        raise ValueError(
            f"resampling ratio sps_out/sps_in = {sps_out}/{sps_in} is below "
            f"1/(2*{max_denominator}) and cannot be represented (raise max_denominator)"
        )
    return ratio.numerator, ratio.denominator


def resample_ratio_for(sample_rate, symbol_rate, model_samples_per_symbol, max_denominator=1000):
    """``(up, down)`` taking a capture to the model's oversampling.

    ``sample_rate`` (Hz) / ``symbol_rate`` (symbols/s, i.e. Hz) is the capture's samples per
    symbol; ``model_samples_per_symbol`` is the model metadata's ``samples_per_symbol``.
    Raises ValueError naming the argument when one is not positive and finite, and when the
    capture has less than one sample per symbol (symbol_rate > sample_rate: no capture holds that
    signal, so the two rates are mixed up or wrong).
    """
    _positive_number("sample_rate", sample_rate)
    _positive_number("symbol_rate", symbol_rate)
    _positive_number("model_samples_per_symbol", model_samples_per_symbol)
    if symbol_rate > sample_rate:
        raise ValueError(f"symbol_rate {symbol_rate:g} Hz is above sample_rate {sample_rate:g} Hz: less than one sample "
                         f"per symbol; expected symbol_rate <= sample_rate (check the two rates)")
    return rational_ratio(sample_rate / symbol_rate, model_samples_per_symbol, max_denominator)


def _design(up, down):
    """resample_poly's padded filter and the number of leading outputs it discards.

    Mirrors scipy.signal.resample_poly (scipy 1.10, default window) for complex64 input: the
    filter is rounded to float32 before the gain ``up`` is applied, as resample_poly does with
    ``.astype(x.dtype)``. The zero post-padding resample_poly adds only lengthens upfirdn's
    output and changes no value, so it is left out.
    """
    max_rate = max(up, down)
    half_len = 10 * max_rate
    h = firwin(2 * half_len + 1, 1.0 / max_rate, window=_WINDOW).astype(np.float32)
    h *= up
    n_pre_pad = down - half_len % down
    n_pre_remove = (half_len + n_pre_pad) // down
    return np.concatenate((np.zeros(n_pre_pad, dtype=np.float32), h)), n_pre_remove


class StreamResampler:
    """Chunked polyphase resampler by ``up / down`` equal to ``scipy.signal.resample_poly``.

    ``process(chunk)`` takes complex samples (any length, empty included; cast to complex64) and
    returns the complex64 outputs that no later input can change; ``flush()`` returns the rest,
    computed with zeros after the last input as resample_poly does, and resets the resampler for a
    new stream. Over any chunking of ``x`` the concatenated outputs have length
    ``ceil(len(x) * up / down)`` and equal ``resample_poly(x, up, down)`` to float32 rounding.

    Memory: only the input still needed by a future output is held, at most about
    ``len(filter) / up + down`` samples (``n_held``), whatever the chunk sizes.

    ``up`` and ``down`` are integers >= 1, reduced by their gcd; ValueError otherwise.
    """

    def __init__(self, up, down):
        up = _positive_int("up", up)
        down = _positive_int("down", down)
        g = math.gcd(up, down)
        self.up, self.down = up // g, down // g
        self.passthrough = self.up == self.down == 1
        if not self.passthrough:
            self._h, self._n_pre_remove = _design(self.up, self.down)
        self.reset()

    def reset(self):
        """Forget all input: the next chunk is sample 0 of a new stream."""
        self._buf = np.zeros(0, dtype=np.complex64)
        # Absolute input index of _buf[0]. Kept a multiple of `down` so that upfirdn's output
        # grid over _buf lands on the global output grid (b0 * up / down is then an integer).
        self._b0 = 0
        self._n_in = 0
        self._n_out = 0

    @property
    def n_held(self):
        """Input samples currently held (the memory bound), int."""
        return int(self._buf.shape[0])

    @property
    def n_held_max(self):
        """Upper bound of ``n_held`` (input samples), int: the filter's reach in input samples plus
        the alignment slack; 0 for a pass-through."""
        return 0 if self.passthrough else len(self._h) // self.up + 2 * self.down + 1

    def output_offset(self, input_offset):
        """Output-rate position (float, output samples) of input sample ``input_offset``.

        resample_poly removes the filter's delay, so input sample i and output sample
        ``i * up / down`` are the same instant.
        """
        return float(input_offset) * self.up / self.down

    def input_offset(self, output_offset):
        """Input-rate position (float, input samples) of output sample ``output_offset``.

        Inverse of ``output_offset``: a decision on the output frame starting at output sample s
        belongs to input sample ``s * down / up``.
        """
        return float(output_offset) * self.down / self.up

    def process(self, chunk):
        """Push complex samples (N,); return the complex64 outputs now final, shape (M,)."""
        chunk = np.asarray(chunk, dtype=np.complex64).reshape(-1)
        if self.passthrough:
            self._n_in += chunk.shape[0]
            return chunk.copy()
        self._buf = np.concatenate((self._buf, chunk))
        self._n_in += chunk.shape[0]
        # Output j needs inputs up to floor((j + pre) * down / up); it is final once that input
        # has arrived: j < (n_in * up - pre * down) / down.
        ready = -(-(self._n_in * self.up - self._n_pre_remove * self.down) // self.down)
        return self._emit(max(ready, 0), self._buf)

    def flush(self):
        """Outputs left at end of stream (zeros after the last input), complex64; then reset()."""
        if self.passthrough:
            self.reset()
            return np.zeros(0, dtype=np.complex64)
        total = -(-self._n_in * self.up // self.down)  # resample_poly's output length
        # upfirdn's full-convolution tail already reaches the last output (half_len >= up + down);
        # the explicit zeros make that independent of the filter-length arithmetic.
        tail = np.zeros(len(self._h) // self.up + 2, dtype=np.complex64)
        out = self._emit(total, np.concatenate((self._buf, tail)))
        self.reset()
        return out

    def _emit(self, end, buf):
        """Outputs [self._n_out, end) computed from ``buf`` (input from self._b0 on)."""
        count = end - self._n_out
        if count <= 0:
            return np.zeros(0, dtype=np.complex64)
        y = upfirdn(self._h, buf, self.up, self.down)
        first = self._n_out + self._n_pre_remove - self._b0 * self.up // self.down
        out = np.asarray(y[first : first + count], dtype=np.complex64)
        if out.shape[0] != count:  # a bookkeeping error, never a user error
            raise RuntimeError(f"StreamResampler: expected {count} outputs, upfirdn gave {out.shape[0]}")
        self._n_out = end
        # The oldest input the next output can touch; drop everything before it (rounded down to
        # a multiple of `down` to keep the grid alignment above).
        t = (end + self._n_pre_remove) * self.down
        oldest = -(-(t - len(self._h) + 1) // self.up)
        keep_from = min(max(oldest, 0), self._n_in) // self.down * self.down
        if keep_from > self._b0:
            self._buf = self._buf[keep_from - self._b0 :].copy()
            self._b0 = keep_from
        return out
