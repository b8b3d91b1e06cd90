"""The stream's samples per symbol (runtime/oversampling.py), and what a mismatch does to decisions."""

import dataclasses
import math

import numpy as np
import pytest

import onnx_fixtures as fx
from gnuradio.modrec.classes import UNKNOWN_CLASS
from gnuradio.modrec.runtime import OnnxModel
from gnuradio.modrec.runtime.decisions import MODEL_RULE, classify_frames, decision_labels
from gnuradio.modrec.runtime.oversampling import (
    LINE_STRENGTH,
    MISMATCH_RATIO,
    WINDOW_LEN,
    OversamplingMonitor,
    estimate_samples_per_symbol,
    is_mismatch,
)
from gnuradio.modrec.training.data import generator as g
from gnuradio.modrec.training.data.receiver_noise import noise_frames


@pytest.fixture(params=["numpy", "c++"])
def estimate(request):
    """The estimator under test: runtime.oversampling's numpy one, or its C++ twin (the block's)."""
    if request.param == "numpy":
        return estimate_samples_per_symbol
    from gnuradio.modrec.classifier import compiled_estimate

    return compiled_estimate()


def _stream(name, sps, snr_db=20, n=WINDOW_LEN, seed=0, **changes):
    """One continuous generator frame: no joins, a steady channel (no fading)."""
    cfg = dataclasses.replace(g.DEFAULT_CONFIG, frame_len=n, samples_per_symbol=sps, sps_jitter=0.0,
                              fading_prob=0.0, **changes)
    return g.generate_frames(name, 1, snr_db, np.random.default_rng(seed), cfg, random_gain=False)[0]


@pytest.mark.parametrize("name", ["BPSK", "QPSK", "QAM16", "8PSK"])
@pytest.mark.parametrize("sps", [2, 3, 4, 8, 12])
def test_a_linear_modulation_shows_its_samples_per_symbol(estimate, name, sps):
    line = estimate(_stream(name, sps, seed=sps, rolloff_range=(0.35, 0.5)))
    assert line.samples_per_symbol == pytest.approx(sps, rel=0.05)
    assert line.strength >= 10


def test_fsk_shows_its_samples_per_symbol_through_its_frequency_steps(estimate):
    line = estimate(_stream("CPFSK", 4, cpfsk_index_range=(0.8, 1.0)))
    assert line.samples_per_symbol == pytest.approx(4, rel=0.05)


def test_noise_and_silence_show_no_line(estimate):
    rng = np.random.default_rng(1)
    white = (rng.standard_normal(WINDOW_LEN) + 1j * rng.standard_normal(WINDOW_LEN)).astype(np.complex64)
    for x in (white, np.zeros(WINDOW_LEN, np.complex64), np.full(WINDOW_LEN, 0.5 + 0.5j, np.complex64)):
        line = estimate(x)
        assert math.isnan(line.samples_per_symbol)
        assert line.strength < 10


def test_clean_tones_and_fm_show_no_line_and_the_gain_does_not_matter(estimate):
    # a clean tone's envelope is flat but for float32 rounding, whose patterns are not lines
    n = np.arange(WINDOW_LEN)
    for f in (0.01, 0.05, 0.123):
        assert math.isnan(estimate(np.exp(2j * np.pi * f * n).astype(np.complex64)).samples_per_symbol)
    message = np.sin(2 * np.pi * 0.001 * n) + 0.5 * np.sin(2 * np.pi * 0.0037 * n)
    fm = np.exp(2j * np.pi * 0.05 * np.cumsum(message)).astype(np.complex64)
    assert math.isnan(estimate(fm).samples_per_symbol)
    x = _stream("QPSK", 4)
    for gain in (1e-6, 1e15):  # float32 squares of 1e15 would overflow
        with np.errstate(all="raise"):
            scaled, plain = estimate(x * np.float32(gain)), estimate(x)
        assert scaled.samples_per_symbol == plain.samples_per_symbol
        assert scaled.strength == pytest.approx(plain.strength, rel=1e-5)


def test_receiver_noise_is_never_a_mismatch(estimate):
    # DC, spurs, colour, silence: no symbol-rate line far from 8 in any of 40 windows
    cfg = dataclasses.replace(g.DEFAULT_CONFIG, frame_len=WINDOW_LEN)
    frames = noise_frames(40, np.random.default_rng(2), cfg)
    estimates = [estimate(f).samples_per_symbol for f in frames]
    assert not any(is_mismatch(e, 8) for e in estimates)


def test_is_mismatch_is_a_ratio_either_way():
    assert not is_mismatch(math.nan, 8)
    assert not is_mismatch(8 * MISMATCH_RATIO * 0.99, 8) and not is_mismatch(8 / MISMATCH_RATIO * 1.01, 8)
    assert is_mismatch(8 * MISMATCH_RATIO * 1.01, 8) and is_mismatch(8 / MISMATCH_RATIO / 1.01, 8)


def test_bad_samples_give_no_estimate_and_bad_calls_say_what_is_wrong(estimate):
    x = _stream("QPSK", 4)
    x[100] = np.nan  # one bad sample (a dropped buffer) does not cost the window
    assert estimate(x).samples_per_symbol == pytest.approx(4, rel=0.05)
    x[: len(x) // 50] = np.inf  # 2 % of them do
    assert math.isnan(estimate(x).samples_per_symbol)
    with pytest.raises(ValueError, match="1-D"):
        estimate(np.zeros((2, WINDOW_LEN), np.complex64))
    with pytest.raises(ValueError, match="at least 4096"):
        estimate(np.zeros(1000, np.complex64))
    with pytest.raises(ValueError, match="interpolated_by"):
        estimate(x, interpolated_by=0)
    with pytest.raises(ValueError, match="min_sps"):
        estimate_samples_per_symbol(x, min_sps=4, max_sps=2)
    with pytest.raises(ValueError, match="window_len"):
        OversamplingMonitor(8, 128, 128, window_len=100)


def test_the_monitor_judges_each_frame_by_the_last_window_before_its_end_however_the_stream_is_cut():
    frame_len, hop = 128, 96
    x = np.concatenate([_stream("QPSK", 8, seed=3), _stream("QPSK", 4, seed=4), _stream("QPSK", 8, seed=5)])
    n_frames = (len(x) - frame_len) // hop + 1
    ends = np.arange(n_frames) * hop + frame_len

    def verdicts(cuts, batches):
        monitor = OversamplingMonitor(8, frame_len, hop)
        estimates, mismatch, judged = [], [], 0
        for part in np.split(x, cuts):
            monitor.observe(part)
            seen = monitor._seen
            ready = int(np.searchsorted(ends, seen, side="right")) - judged
            for k in np.array_split(np.arange(ready), batches):
                e, m = monitor.judge(len(k))
                estimates.append(e)
                mismatch.append(m)
            judged += ready
        return np.concatenate(estimates), np.concatenate(mismatch)

    est_a, mis_a = verdicts([WINDOW_LEN * 3], 1)
    est_b, mis_b = verdicts(np.sort(np.random.default_rng(0).integers(0, len(x), 40)), 3)
    np.testing.assert_array_equal(est_a, est_b)
    np.testing.assert_array_equal(mis_a, mis_b)
    window = ends // WINDOW_LEN  # the window whose verdict a frame gets (0: none yet)
    assert np.isnan(est_a[window == 0]).all() and not mis_a[window == 0].any()
    np.testing.assert_allclose(est_a[window == 1], 8, rtol=0.05)
    assert not mis_a[window == 1].any()
    np.testing.assert_allclose(est_a[window == 2], 4, rtol=0.05)
    assert mis_a[window == 2].all()
    assert not mis_a[window == 3].any()


def test_a_mismatch_makes_frames_unknown_noise_included(tmp_path):
    import onnx

    # the version-2 fixture: its noise class is "noise"; no frame is unknown by its score
    onnx.save(fx.build_v2_model(frame_len=32, threshold=1e9), tmp_path / "v2.onnx")
    model = OnnxModel(str(tmp_path / "v2.onnx"))
    rng = np.random.default_rng(3)
    frames = ((rng.standard_normal((64, 32)) + 1j * rng.standard_normal((64, 32)))
              * np.logspace(-2, 1, 64)[:, None]).astype(np.complex64)
    plain = classify_frames(model, frames, MODEL_RULE)
    flagged = np.arange(64) % 2 == 0
    checked = classify_frames(model, frames, MODEL_RULE, flagged)
    noise = decision_labels(model).index("noise")
    is_noise = plain.index == noise
    assert is_noise.any() and (~is_noise & flagged).any()
    np.testing.assert_array_equal(checked.index[~flagged], plain.index[~flagged])
    # a symbol-rate line shows a signal is there: a flagged frame is not noise either
    assert (checked.index[flagged] == -1).all()
    assert decision_labels(model)[-1] == UNKNOWN_CLASS
    np.testing.assert_array_equal(checked.probs, plain.probs)
    np.testing.assert_array_equal(checked.confidence, plain.confidence)


def test_the_monitor_keeps_its_own_copy_of_a_partial_window():
    # GNU Radio hands a block views of its buffers, and reuses them after work() returns
    x = _stream("QPSK", 4, n=2 * WINDOW_LEN)
    reference, reused = OversamplingMonitor(8, 128, 128), OversamplingMonitor(8, 128, 128)
    reference.observe(x)
    buffer = np.empty(3000, np.complex64)
    for start in range(0, len(x), len(buffer)):
        part = x[start : start + len(buffer)]
        buffer[: len(part)] = part
        reused.observe(buffer[: len(part)])
        buffer[:] = np.nan  # the scheduler writes other samples over it
    n = (2 * WINDOW_LEN) // 128
    np.testing.assert_array_equal(reference.judge(n)[0], reused.judge(n)[0])
    assert reused.mismatch and reused.estimate == pytest.approx(4, rel=0.05)


@pytest.mark.parametrize("sps, up", [(4, 2), (2, 4)])
def test_a_resampler_s_own_lines_are_not_symbol_rates(estimate, sps, up):
    # the classifier's symbol_rate option resamples up to 8 samples per symbol; an interpolator's
    # output is periodic at its factor, and that line read as 8 / up samples per symbol
    from scipy.signal import resample_poly

    cfg = dataclasses.replace(g.DEFAULT_CONFIG, frame_len=4 * WINDOW_LEN // up, samples_per_symbol=sps)
    x = resample_poly(g.generate_frames("QPSK", 1, 15, np.random.default_rng(0), cfg, random_gain=False)[0], up, 1)
    windows = x[: 4 * WINDOW_LEN].reshape(4, WINDOW_LEN)
    if up == 2:  # (by 4, the symbol-rate line stood above the interpolator's here anyway)
        assert any(is_mismatch(estimate(w).samples_per_symbol, 8) for w in windows)
    lines = [estimate(w, interpolated_by=up) for w in windows]
    assert not any(is_mismatch(line.samples_per_symbol, 8) for line in lines)
    assert any(line.samples_per_symbol == pytest.approx(8, rel=0.05) for line in lines)


def test_the_running_median_is_scipy_s_median_filter_bit_for_bit():
    from scipy.ndimage import median_filter

    from gnuradio.modrec.runtime.oversampling import _running_median

    rng = np.random.default_rng(3)
    for values in (rng.random(1025), rng.exponential(size=40), np.repeat(rng.random(50), 7)):
        np.testing.assert_array_equal(_running_median(values, 16), median_filter(values, size=33, mode="nearest"))


def test_the_samples_past_the_last_eight_count_for_the_bad_share(estimate):
    # The C++ estimator checks samples eight at a time; a window whose length is not a multiple
    # of eight leaves a few over, which count all the same.
    n = WINDOW_LEN + 5
    x = _stream("QPSK", 4, n=n, seed=3)
    limit = int(n * 0.01)  # the most bad samples a window may hold (1 %: 163 of 16,389)
    bad = x.copy()
    bad[: limit - 2] = np.nan
    bad[-2:] = np.inf  # the limit exactly, two of them among the last five
    assert estimate(bad).samples_per_symbol == pytest.approx(4, rel=0.05)
    bad[-3] = np.nan  # one more, also among the last five: too many
    assert math.isnan(estimate(bad).samples_per_symbol)


def test_the_c_plus_plus_estimator_agrees_with_the_numpy_one():
    # the block's estimator (lib/symbol_rate_estimator.cc) against the documented one, over the
    # classes and oversamplings of the oversampling study: the same line, strengths within float32
    # rounding
    from gnuradio.modrec.classifier import compiled_estimate

    compiled, rng = compiled_estimate(), np.random.default_rng(7)
    names = list(g.mod.SUPPORTED_CLASSES)
    lines = 0
    for name in names:
        for sps in (2, 4, 8, 16):
            for snr_db in (0, 10, 20):
                x = _stream(name, sps, snr_db=snr_db, seed=int(rng.integers(1 << 30)))
                for up in (1, 2):
                    want, got = estimate_samples_per_symbol(x, interpolated_by=up), compiled(x, interpolated_by=up)
                    assert got.strength == pytest.approx(want.strength, rel=1e-4), (name, sps, snr_db, up)
                    if abs(want.strength / LINE_STRENGTH - 1) > 1e-4:  # not at the threshold itself
                        np.testing.assert_equal(got.samples_per_symbol, want.samples_per_symbol)
                        lines += not math.isnan(want.samples_per_symbol)
    assert lines > len(names) * 4  # lines were found, not only their absence
