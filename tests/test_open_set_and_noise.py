"""Frames the classifier must not call one of its classes: modulations it never learnt
(data/open_set.py) and frames with no signal at all (data/receiver_noise.py)."""

import numpy as np
import pytest

from gnuradio.modrec.training.data.generator import DEFAULT_CONFIG, GeneratorConfig, generate_frames
from gnuradio.modrec.training.data.open_set import OPEN_SET_MODULATIONS
from gnuradio.modrec.training.data.receiver_noise import NOISE_KINDS, noise_frames


@pytest.mark.parametrize("name", OPEN_SET_MODULATIONS)
def test_open_set_frames_have_unit_power_and_take_the_channel_at_their_snr(name):
    clean = generate_frames(name, 800, 100.0, rng=3, config=DEFAULT_CONFIG.clean())
    assert clean.dtype == np.complex64 and clean.shape == (800, 128) and np.isfinite(clean).all()
    assert np.mean(np.abs(clean) ** 2) == pytest.approx(1.0, rel=0.06)
    noisy, signal = generate_frames(name, 400, 5.0, rng=4, return_clean=True)
    measured = 10 * np.log10(np.mean(np.abs(signal) ** 2, 1) / np.mean(np.abs(noisy - signal) ** 2, 1))
    assert np.median(measured) == pytest.approx(5.0, abs=0.5)  # the generator's SNR definition holds
    again = generate_frames(name, 400, 5.0, rng=4)
    assert np.array_equal(noisy, again)


def test_open_set_modulations_differ_from_each_other_and_from_the_known_classes():
    # a crude fingerprint: fourth-order moment |x|^4 / |x|^2^2 and mean |x^2| of clean frames
    def fingerprint(name):
        x = generate_frames(name, 400, 100.0, rng=5, config=DEFAULT_CONFIG.clean())
        p = np.mean(np.abs(x) ** 2, 1, keepdims=True)
        x = x / np.sqrt(p)
        return np.round([np.mean(np.abs(x) ** 4), np.mean(np.abs(np.mean(x**2, 1)))], 2)

    prints = {name: tuple(fingerprint(name)) for name in OPEN_SET_MODULATIONS}
    assert prints["LFM"][0] == pytest.approx(1.0, abs=0.01)  # constant envelope
    assert prints["OOK"][0] > 1.8 and prints["PAM8"][1] > 0.5  # on-off; one-dimensional
    assert prints["OFDM"][0] == pytest.approx(2.0, abs=0.2)  # Gaussian-like envelope


def test_open_set_modulations_are_never_training_classes():
    with pytest.raises(ValueError, match=r"\['OOK'\] are open-set modulations, kept out of training"):
        GeneratorConfig(classes=("BPSK", "OOK"))


def test_noise_frames_hold_no_signal_in_every_kind():
    rng = np.random.default_rng(0)
    x, kinds = noise_frames(3000, rng, DEFAULT_CONFIG, return_kinds=True)
    assert x.shape == (3000, 128) and x.dtype == np.complex64 and np.isfinite(x).all()
    assert set(kinds) == set(NOISE_KINDS)
    silence = x[kinds == "silence"]
    all_zero = np.mean(np.all(silence == 0, axis=1))
    assert 0.4 < all_zero < 0.8  # exact zeros, or an idle ADC's few toggling steps
    assert np.abs(silence).max() < 0.15 and np.mean(np.abs(silence) ** 2) < 1e-3  # -30 dBFS at most
    # white frames have a flat spectrum; coloured ones do not (spectral flatness = geo / arith mean)
    def flatness(frames):
        return [np.exp(np.mean(np.log(s))) / np.mean(s) for s in np.abs(np.fft.fft(frames, axis=1)) ** 2 + 1e-30]

    white, coloured = x[kinds == "white"], x[kinds == "coloured"]
    white = white / np.sqrt(np.mean(np.abs(white) ** 2, 1, keepdims=True))
    assert np.median(flatness(white)) > 0.4 > np.median(flatness(coloured))
    # any gain: levels spread over tens of dB
    level = 10 * np.log10(np.mean(np.abs(x[kinds != "silence"]) ** 2, 1))
    assert level.max() - level.min() > 60
    with pytest.raises(ValueError, match="n_frames"):
        noise_frames(-1, rng, DEFAULT_CONFIG)


def test_noise_is_a_class_a_model_can_be_trained_on(tmp_path):
    from gnuradio.modrec.training.data.dataset import SyntheticSource, build_dataset
    from gnuradio.modrec.training.data.generator import generate_labeled

    cfg = GeneratorConfig(classes=("BPSK", "noise"), snrs_db=(0.0, 10.0))
    x = generate_labeled(np.array([0, 1, 1, 0]), np.array([10.0, 10.0, 0.0, 0.0]), rng=0, config=cfg)
    assert x.shape == (4, 2, 128) and np.isfinite(x).all()
    build_dataset(tmp_path / "ds", config=cfg, splits={"train": 3, "val": 1, "test": 1}, seed=1,
                  progress=False)
    train = SyntheticSource(tmp_path / "ds").load("train")
    assert list(train.meta["classes"]) == ["BPSK", "noise"] and np.bincount(train.y).tolist() == [6, 6]


def test_coloured_noise_around_a_signal_keeps_the_snr_and_leaves_old_datasets_alone():
    import dataclasses

    # off by default, and then absent from the saved configuration: datasets built before match
    assert "coloured_noise_prob" not in DEFAULT_CONFIG.to_dict()
    assert GeneratorConfig.from_dict(DEFAULT_CONFIG.to_dict()) == DEFAULT_CONFIG
    cfg = dataclasses.replace(DEFAULT_CONFIG, coloured_noise_prob=1.0, frame_len=1024, gain_db_range=(0.0, 0.0))
    assert cfg.to_dict()["coloured_noise_prob"] == 1.0
    noisy, clean = generate_frames("QPSK", 200, 0.0, np.random.default_rng(0), cfg, return_clean=True)
    noise = noisy - clean
    snr = 10 * np.log10(np.mean(np.abs(clean) ** 2, axis=1) / np.mean(np.abs(noise) ** 2, axis=1))
    assert abs(np.mean(snr)) < 0.3  # the SNR is that of the coloured noise
    # coloured: the noise's outer band holds far less than its share of the power
    spectrum = np.mean(np.abs(np.fft.fftshift(np.fft.fft(noise, axis=1), axes=1)) ** 2, axis=0)
    outer = np.r_[spectrum[:64], spectrum[-64:]].sum() / spectrum.sum()
    assert outer < 0.5 * 128 / 1024
    with pytest.raises(ValueError, match="coloured_noise_prob"):
        dataclasses.replace(DEFAULT_CONFIG, coloured_noise_prob=1.5)
    # the filter's cutoff range: absent from the saved configuration at its default; a narrow one
    # keeps the noise closer to the signal's band
    assert "coloured_noise_cutoff" not in cfg.to_dict()
    narrow = dataclasses.replace(cfg, coloured_noise_cutoff=(0.2, 0.25))
    assert narrow.to_dict()["coloured_noise_cutoff"] == [0.2, 0.25]
    assert GeneratorConfig.from_dict(narrow.to_dict()) == narrow
    noisy, clean = generate_frames("QPSK", 200, 0.0, np.random.default_rng(0), narrow, return_clean=True)
    spectrum = np.mean(np.abs(np.fft.fftshift(np.fft.fft(noisy - clean, axis=1), axes=1)) ** 2, axis=0)
    f = np.fft.fftshift(np.fft.fftfreq(1024))
    assert spectrum[np.abs(f) > 0.25].sum() / spectrum.sum() < 0.05  # cutoff <= 0.25 of Nyquist: |f| < 0.125
    for bad in ((0.5, 0.2), (0.5, 1.0), (0.01, 0.5)):  # reversed; up to Nyquist (firwin refuses it); too narrow
        with pytest.raises(ValueError, match="coloured_noise_cutoff"):
            dataclasses.replace(DEFAULT_CONFIG, coloured_noise_cutoff=bad)


def test_the_carrier_offset_augmentation_moves_a_carrier_but_not_a_receivers_dc_offset():
    import torch

    from gnuradio.modrec.training.augment import augment, receiver_frames
    from gnuradio.modrec.training.config import AugmentConfig

    aug = AugmentConfig(phase_rotation=True, time_shift=False, freq_offset=0.01, conjugate=False)
    x = torch.zeros(64, 2, 128)
    x[:, 0] = 1.0  # a constant: a DC offset, or an unmodulated carrier at 0 Hz

    def rotation(out):  # cycles the constant turned through over the frame
        z = torch.complex(out[:, 0], out[:, 1])
        return (torch.angle(z[:, 1:] * z[:, :-1].conj()).sum(1) / (2 * torch.pi)).abs()

    moved = augment(x, aug, torch.Generator().manual_seed(1))
    hold = torch.arange(64) % 2 == 0
    held = augment(x, aug, torch.Generator().manual_seed(1), hold_frequency=hold)
    assert rotation(moved).max() > 0.5 and torch.all(rotation(held[hold]) < 1e-4)
    # the draws do not depend on the mask: frames not held come out as without it
    torch.testing.assert_close(held[~hold], moved[~hold])
    labels = torch.tensor([0, 1, 1, 0])
    assert receiver_frames(labels, ["BPSK", "noise"]).tolist() == [False, True, True, False]
    assert receiver_frames(labels, ["BPSK", "QPSK"]) is None
