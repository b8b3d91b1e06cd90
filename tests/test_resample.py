"""Rational resampling: the ratio helpers and a chunked resampler equal to scipy's resample_poly."""

import numpy as np
import pytest
from scipy.signal import resample_poly

from gnuradio.modrec.runtime.resample import StreamResampler, rational_ratio, resample_ratio_for

RATIOS = [(1, 2), (2, 1), (3, 4), (4, 3), (1, 8), (8, 1), (5, 7)]


def test_rational_ratio_reduces_and_limits():
    assert rational_ratio(4, 8) == (2, 1)
    assert rational_ratio(8, 8) == (1, 1)
    assert rational_ratio(12, 8) == (2, 3)
    assert rational_ratio(9.6, 8) == (5, 6)  # 2.4 MS/s at 250 kBd to 8 sps; 9.6 is not exact in binary
    assert rational_ratio(np.pi, 1, max_denominator=7) == (1, 3)  # 1/pi ~ 0.3183: 1/3 is closest with down <= 7
    assert rational_ratio(np.pi, 1, max_denominator=30) == (7, 22)
    up, down = rational_ratio(np.pi, 1)
    assert down <= 1000 and abs(up / down - 1 / np.pi) < 1e-6


def test_resample_ratio_for_capture():
    assert resample_ratio_for(2.4e6, 250e3, 8) == (5, 6)
    assert resample_ratio_for(1e6, 125e3, 8) == (1, 1)
    assert resample_ratio_for(1e6, 250e3, 8) == (2, 1)


@pytest.mark.parametrize("args,name", [((0, 8), "sps_in"), ((4, -1), "sps_out"), ((float("nan"), 8), "sps_in"), ((4, 8, 0), "max_denominator")])
def test_rational_ratio_rejects_non_positive(args, name):
    with pytest.raises(ValueError, match=name):
        rational_ratio(*args)


def test_ratio_for_names_the_bad_argument():
    for args, name in (((0, 1e3, 8), "sample_rate"), ((1e6, 0, 8), "symbol_rate"), ((1e6, 1e3, -2), "model_samples_per_symbol")):
        with pytest.raises(ValueError, match=name):
            resample_ratio_for(*args)
    for up, down in ((0, 1), (1, 0), (1.5, 2)):
        with pytest.raises(ValueError):
            StreamResampler(up, down)


def _noise(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)


def _run(resampler, x, sizes):
    outs, pos = [], 0
    for size in sizes:
        outs.append(resampler.process(x[pos : pos + size]))
        pos += size
    assert pos >= len(x)
    outs.append(resampler.flush())
    assert all(o.dtype == np.complex64 for o in outs)
    return np.concatenate(outs)


def _random_sizes(rng, n, max_size):
    """Chunk sizes summing to n, with empty chunks and single samples mixed in."""
    sizes = []
    while sum(sizes) < n:
        kind = rng.integers(0, 4)
        sizes.append(0 if kind == 0 else 1 if kind == 1 else int(rng.integers(1, max_size + 1)))
    sizes[-1] -= sum(sizes) - n
    return sizes


@pytest.mark.parametrize("up,down", RATIOS)
def test_stream_equals_resample_poly_over_any_chunking(up, down):
    rng = np.random.default_rng(up * 10 + down)
    for n in (1, 5, 97, 1500):
        x = _noise(n, seed=n)
        ref = resample_poly(x, up, down)
        assert ref.dtype == np.complex64
        r = StreamResampler(up, down)
        chunkings = [[n], [1] * n, _random_sizes(rng, n, 50), _random_sizes(rng, n, 700)]
        for sizes in chunkings:
            y = _run(r, x, sizes)  # flush() resets, so the same resampler serves every chunking
            assert y.shape == ref.shape
            np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("up,down", [(1, 8), (3, 4), (8, 1)])
def test_memory_stays_bounded(up, down):
    r = StreamResampler(up, down)
    bound = 20 * max(up, down) // up + 2 * down + 2  # about filter length / up + down
    held = []
    for i in range(400):
        r.process(_noise(int(i % 7) * 50, seed=i))
        held.append(r.n_held)
    assert max(held) <= bound


def test_passthrough_and_empty_stream():
    x = _noise(33, seed=1)
    r = StreamResampler(3, 3)
    assert (r.up, r.down, r.passthrough) == (1, 1, True)
    assert np.array_equal(_run(r, x, [10, 0, 23]), x)
    r = StreamResampler(3, 4)
    assert r.process(np.zeros(0, dtype=np.complex64)).shape == (0,) and r.flush().shape == (0,)
    assert (StreamResampler(6, 8).up, StreamResampler(6, 8).down) == (3, 4)


@pytest.mark.parametrize("up,down", RATIOS)
def test_offset_mapping_round_trips_and_matches_the_signal(up, down):
    r = StreamResampler(up, down)
    for i in (0, 1, 17.5, 1234):
        assert r.input_offset(r.output_offset(i)) == pytest.approx(i)
        assert r.output_offset(r.input_offset(i)) == pytest.approx(i)
    # A tone burst centred on an input sample whose output position is a whole sample must peak
    # there: the mapping is where the signal really lands, not just an inverse pair.
    i0 = 56 * down
    n = np.arange(200 * down)
    x = (np.exp(-0.5 * ((n - i0) / (3.0 * down)) ** 2)).astype(np.complex64)
    y = _run(r, x, [len(x)])
    assert int(np.argmax(np.abs(y))) == r.output_offset(i0) == 56 * up


def test_less_than_one_sample_per_symbol_is_refused():
    with pytest.raises(ValueError, match=r"symbol_rate 500000 Hz is above sample_rate 200000 Hz"):
        resample_ratio_for(200e3, 500e3, 8)
