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
