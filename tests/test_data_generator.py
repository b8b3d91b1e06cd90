"""Frame synthesis: shapes, labels, determinism, validation and per-class signal signatures."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gnuradio.modrec.classes import RADIOML2016_CLASSES, RADIOML2016_SNRS_DB
from gnuradio.modrec.training.data import (
    DEFAULT_CONFIG,
    GeneratorConfig,
    generate_frames,
    generate_labeled,
    synthesize,
    synthesize_stream,
    to_iq,
)

CLEAN = DEFAULT_CONFIG.clean()


def test_default_config_matches_radioml():
    assert DEFAULT_CONFIG.classes == RADIOML2016_CLASSES
    assert DEFAULT_CONFIG.snrs_db == RADIOML2016_SNRS_DB
    assert (DEFAULT_CONFIG.frame_len, DEFAULT_CONFIG.samples_per_symbol) == (128, 8)


@pytest.mark.parametrize("name", RADIOML2016_CLASSES)
def test_frames_shape_dtype_finite(name):
    x = generate_frames(name, 37, 5.0, np.random.default_rng(0))
    assert x.shape == (37, 128) and x.dtype == np.complex64
    assert np.all(np.isfinite(x))
    assert np.all(np.mean(np.abs(x) ** 2, axis=1) > 0)


def test_other_frame_format():
    cfg = GeneratorConfig(frame_len=256, samples_per_symbol=4, classes=("QPSK", "WBFM"), snrs_db=(0, 10))
    for name in cfg.classes:
        assert generate_frames(name, 5, 0.0, 1, cfg).shape == (5, 256)


def test_generate_labeled_layout_and_order():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 11, size=200)
    snr = rng.choice(np.array(RADIOML2016_SNRS_DB, dtype=float), size=200)
    x = generate_labeled(y, snr, np.random.default_rng(2))
    assert x.shape == (200, 2, 128) and x.dtype == np.float32
    frames = generate_frames("QPSK", 3, 0.0, 4)
    iq = to_iq(frames)
    np.testing.assert_array_equal(iq[:, 0], frames.real)
    np.testing.assert_array_equal(iq[:, 1], frames.imag)


def test_deterministic_by_seed():
    a = generate_labeled(np.arange(22) % 11, np.zeros(22), 123)
    b = generate_labeled(np.arange(22) % 11, np.zeros(22), 123)
    c = generate_labeled(np.arange(22) % 11, np.zeros(22), 124)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_synthesize_helpers():
    f = synthesize("GFSK", 4, 10.0, np.random.default_rng(0))
    assert f.shape == (4, 128) and f.dtype == np.complex64
    s = synthesize_stream("AM-DSB", 1000, 10.0, np.random.default_rng(0))
    assert s.shape == (1000,) and s.dtype == np.complex64


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"frame_len": 0}, "frame_len"),
        ({"samples_per_symbol": 1.5}, "samples_per_symbol"),
        ({"classes": ("QPSK", "FOO")}, "classes"),
        ({"classes": ("QPSK", "QPSK")}, "classes"),
        ({"snrs_db": ()}, "snrs_db"),
        ({"rolloff_range": (0.5, 0.2)}, "rolloff_range"),
        ({"cfo_max": -0.1}, "cfo_max"),
        ({"fading_prob": 2.0}, "fading_prob"),
        ({"wbfm_deviation_range": (0.1,)}, "wbfm_deviation_range"),
        ({"fractional_delays": "yes"}, "fractional_delays"),
        ({"cfo_drift_std": -1e-6}, "cfo_drift_std"),
        ({"clock_drift_std": 0.1}, "clock_drift_std"),
    ],
)
def test_config_validation_names_field(kwargs, field):
    with pytest.raises(ValueError, match=f"GeneratorConfig.{field}: expected"):
        GeneratorConfig(**kwargs)


def test_call_validation():
    with pytest.raises(ValueError, match="class_name"):
        generate_frames("FOO", 2, 0.0, 0)
    with pytest.raises(ValueError, match="n_frames"):
        generate_frames("QPSK", -1, 0.0, 0)
    with pytest.raises(ValueError, match=r"snr_db: expected a scalar or shape \(3,\)"):
        generate_frames("QPSK", 3, [0.0, 1.0], 0)
    with pytest.raises(ValueError, match="labels"):
        generate_labeled([0, 11], [0.0, 0.0], 0)


def test_config_dict_round_trip():
    cfg = GeneratorConfig(rolloff_range=(0.2, 0.3))
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        GeneratorConfig.from_dict({"rolloff": 0.3})


# ---- each class carries its own signature (noise- and impairment-free) --------------------


def _clean(name, n=300, seed=0):
    return generate_frames(name, n, 100.0, np.random.default_rng(seed), CLEAN)


def _imag_fraction(x):
    """Energy fraction off the best real axis: 0 for real (1-D) constellations."""
    ph = 0.5 * np.angle(np.sum(x**2, axis=1))
    d = x * np.exp(-1j * ph)[:, None]
    return np.median(np.sum(d.imag**2, 1) / np.sum(np.abs(d) ** 2, 1))


def test_one_dimensional_constellations_are_real():
    for name in ("BPSK", "PAM4"):
        assert _imag_fraction(_clean(name)) < 1e-3, name
    for name in ("QPSK", "8PSK", "QAM16", "QAM64"):
        assert _imag_fraction(_clean(name)) > 0.2, name


def test_constant_envelope_classes():
    for name in ("CPFSK", "GFSK", "WBFM"):
        x = _clean(name)
        assert np.max(np.std(np.abs(x), 1) / np.mean(np.abs(x), 1)) < 1e-3, name
    for name in ("QPSK", "BPSK", "QAM16"):
        x = _clean(name)
        assert np.median(np.std(np.abs(x), 1) / np.mean(np.abs(x), 1)) > 0.15, name


def _kurtosis(x):
    return np.mean(np.abs(x) ** 4) / np.mean(np.abs(x) ** 2) ** 2


def test_amplitude_levels_raise_kurtosis():
    assert _kurtosis(_clean("PAM4")) > _kurtosis(_clean("BPSK")) + 0.3
    assert _kurtosis(_clean("QAM16")) > _kurtosis(_clean("QPSK")) + 0.15


def test_am_dsb_has_carrier_line():
    def carrier(x):
        return np.median(np.abs(x.mean(1)) ** 2 / np.mean(np.abs(x) ** 2, 1))

    assert carrier(_clean("AM-DSB")) > 0.9
    for name in ("QPSK", "BPSK", "GFSK"):
        assert carrier(_clean(name)) < 0.2, name


def test_am_ssb_spectrum_is_one_sided():
    def sidedness_db(x):
        spec = np.abs(np.fft.fft(x * np.hanning(x.shape[1]), axis=1)) ** 2
        half = x.shape[1] // 2
        pos, neg = spec[:, 2 : half - 1].sum(1), spec[:, half + 2 : -1].sum(1)  # bins k and -k
        return np.median(np.abs(10 * np.log10((pos + 1e-20) / (neg + 1e-20))))

    assert sidedness_db(_clean("AM-SSB")) > 8
    assert sidedness_db(_clean("AM-DSB")) < 0.5


def test_channel_randomises_per_frame():
    x = generate_frames("QPSK", 200, 10.0, np.random.default_rng(5))
    power_db = 10 * np.log10(np.mean(np.abs(x) ** 2, 1))
    assert np.ptp(power_db) > 20  # random receiver gain
    c = generate_frames("QPSK", 200, 100.0, np.random.default_rng(5), CLEAN)
    assert np.ptp(10 * np.log10(np.mean(np.abs(c) ** 2, 1))) < 6


# ---- the channel model's options against GNU Radio's (fractional delays, drifting offsets) ---


def test_fractional_delay_fir_delays_a_tone_by_its_fraction():
    from gnuradio.modrec.training.data import channel

    k = channel.FRACTIONAL_DELAY_TAPS
    assert np.allclose(channel.fractional_delay_fir(0.0), np.eye(k)[k // 2 - 1], atol=1e-7)
    frac = np.linspace(0.0, 0.95, 20)
    h = channel.fractional_delay_fir(frac)
    assert h.shape == (20, k) and h.dtype == np.float32 and np.allclose(h.sum(1), 1, atol=1e-6)
    for f in (0.02, 0.05, 0.1):  # cycles/sample, the band a 128-sample frame's signals use
        response = (h * np.exp(-2j * np.pi * f * np.arange(k))).sum(1)  # H(f) of each filter
        delay = -np.angle(response) / (2 * np.pi * f)
        assert np.allclose(delay, k // 2 - 1 + frac, atol=2e-3), (f, delay - frac)
        assert np.allclose(np.abs(response), 1, atol=1e-2)  # flat within 1 % up to 0.1 cycles/sample


def _estimated_responses(fractional, n=300, seed=3):
    """Least-squares impulse responses of time-invariant two-tap channels (no Doppler), and the
    largest residual of the fit."""
    from gnuradio.modrec.training.data import channel

    cfg = GeneratorConfig(fading_prob=1.0, max_taps=2, max_delay_samples=4, doppler_range=(0.0, 0.0),
                          fractional_delays=fractional)
    lead, m = channel.lead_samples(cfg), 256
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, m + lead)) + 1j * rng.standard_normal((n, m + lead))).astype(np.complex64)
    y, _ = channel.multipath(x, m, rng, cfg)
    rows = np.stack([x[:, lead - d : lead - d + m] for d in range(lead + 1)], axis=2)  # (n, m, lead+1)
    h = np.stack([np.linalg.lstsq(rows[i], y[i], rcond=None)[0] for i in range(n)])
    residual = np.abs(np.einsum("nmd,nd->nm", rows, h) - y).max()
    return h, residual


def test_fractional_tap_delays_spread_a_tap_over_its_neighbours():
    h, residual = _estimated_responses(False)
    assert residual < 1e-3  # the channel is exactly a whole-sample FIR
    significant = (np.abs(h) ** 2 > 1e-4 * (np.abs(h) ** 2).sum(1, keepdims=True)).sum(1)
    assert significant.max() <= 2  # two taps at whole delays

    h, residual = _estimated_responses(True)
    assert residual < 1e-3  # still a time-invariant FIR: the interpolated taps, 3 samples later
    significant = (np.abs(h) ** 2 > 1e-4 * (np.abs(h) ** 2).sum(1, keepdims=True)).sum(1)
    # half the channels have a second tap (1..max_taps); one between samples rings over its neighbours
    assert np.mean(significant > 2) > 0.35
    peak = np.abs(h).argmax(1)
    assert peak.min() >= 3  # the interpolator's fixed delay: nothing arrives before it


def test_carrier_offset_drift_walks_the_frequency_within_a_frame():
    from gnuradio.modrec.training.data import channel

    std = 1e-4
    cfg = GeneratorConfig(cfo_max=0.0, phase_noise_range=(0.0, 0.0), cfo_drift_std=std)
    y = channel.oscillator(np.ones((4000, 128), dtype=np.complex64), np.random.default_rng(0), cfg)
    freq = np.diff(np.unwrap(np.angle(y), axis=1), axis=1) / (2 * np.pi)  # (n, 127), cycles/sample
    # freq[k] is the walk after k + 1 steps: std * sqrt(k + 1)
    for k in (0, 15, 63, 126):
        assert freq[:, k].std() == pytest.approx(std * np.sqrt(k + 1), rel=0.08)
    still = channel.oscillator(np.ones((4, 128), dtype=np.complex64), np.random.default_rng(0),
                               GeneratorConfig(cfo_max=0.0, phase_noise_range=(0.0, 0.0)))
    assert np.allclose(np.diff(np.unwrap(np.angle(still), axis=1), axis=1), 0, atol=1e-5)


def test_sample_clock_drift_walks_the_symbol_rate_within_a_frame():
    from gnuradio.modrec.training.data import generator

    std = 1e-4
    cfg = GeneratorConfig(sps_jitter=0.0, clock_offset_ppm=0.0, clock_drift_std=std)
    t, _ = generator._symbol_times(4000, 128, np.random.default_rng(0), cfg)
    rate = np.diff(t, axis=1) * cfg.samples_per_symbol - 1  # relative offset of each step
    for k in (0, 15, 63, 126):
        assert rate[:, k].std() == pytest.approx(std * np.sqrt(k + 1), rel=0.08)
    steady, _ = generator._symbol_times(4, 128, np.random.default_rng(0), GeneratorConfig(sps_jitter=0.0, clock_offset_ppm=0.0))
    assert np.allclose(np.diff(steady, axis=1), 1 / cfg.samples_per_symbol)


def test_channel_options_leave_the_default_recipe_and_its_datasets_as_they_were():
    assert not {"fractional_delays", "cfo_drift_std", "clock_drift_std"} & set(DEFAULT_CONFIG.to_dict())
    cfg = GeneratorConfig(fractional_delays=True, cfo_drift_std=1e-6, clock_drift_std=1e-6)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    for name in ("QPSK", "GFSK", "WBFM"):
        a = generate_frames(name, 64, 10.0, np.random.default_rng(1))
        b = generate_frames(name, 64, 10.0, np.random.default_rng(1), GeneratorConfig(cfo_drift_std=0.0))
        assert np.array_equal(a, b)
        c = generate_frames(name, 64, 10.0, np.random.default_rng(1), cfg)
        assert c.shape == a.shape and np.all(np.isfinite(c)) and not np.array_equal(a, c)


def test_data_package_imports_neither_torch_nor_gnuradio_runtime():
    shim = Path(__file__).resolve().parents[1] / "build" / "pytest_modules"
    code = (
        "import sys; import gnuradio.modrec.training.data as d; "
        "d.generate_frames('QPSK', 2, 0.0, 0); "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.') or m == 'gnuradio.gr']; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = dict(os.environ, PYTHONPATH=str(shim))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
