"""The SNR label matches the measured per-sample SNR of the generated frames.

Definition (see generator.py): mean noise-free received power over the frame divided by the
complex noise power per sample over the full sampled bandwidth.
"""

import numpy as np
import pytest

from gnuradio.modrec.training.data import DEFAULT_CONFIG, generate_frames

# AM-SSB pauses use a floor for the reference power (a pause is not amplified to the label),
# so its frames are checked separately below.
CLASSES = [c for c in DEFAULT_CONFIG.classes if c != "AM-SSB"]


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 10.0, 18.0])
def test_measured_snr_within_half_db(snr_db):
    rng = np.random.default_rng(int(snr_db) + 100)
    for name in CLASSES:
        noisy, clean = generate_frames(name, 200, snr_db, rng, return_clean=True)
        noise = noisy - clean
        per_frame = 10 * np.log10(np.mean(np.abs(clean) ** 2, 1) / np.mean(np.abs(noise) ** 2, 1))
        assert abs(per_frame.mean() - snr_db) < 0.5, (name, per_frame.mean())
        # Every frame is scaled on its own: 128 noise samples estimate the noise power to about
        # 0.4 dB (1 sigma), so 95% of frames lie within 1.2 dB; scaling per batch of frames, with
        # faded frames of very different power in it, would spread them far wider.
        spread = np.percentile(np.abs(per_frame - snr_db), 95)
        assert spread < 1.2, (name, spread)
        # Circular noise: equal power in I and Q (a per-component scaling slip shows here).
        ratio = np.sum(noise.real**2) / np.sum(noise.imag**2)
        assert 0.9 < ratio < 1.1, (name, ratio)


def test_am_ssb_snr_never_above_label_and_matches_while_talking():
    noisy, clean = generate_frames("AM-SSB", 600, 10.0, np.random.default_rng(7), return_clean=True)
    per_frame = 10 * np.log10(np.mean(np.abs(clean) ** 2, 1) / np.mean(np.abs(noisy - clean) ** 2, 1))
    assert per_frame.max() < 10.0 + 1.5
    loud = per_frame > -5  # frames not cut from a pause
    assert loud.mean() > 0.3
    assert abs(np.median(per_frame[loud]) - 10.0) < 0.5


def test_per_frame_snr_array():
    snrs = np.array([-20.0, 18.0] * 100)
    noisy, clean = generate_frames("QPSK", 200, snrs, np.random.default_rng(1), return_clean=True)
    per_frame = 10 * np.log10(np.mean(np.abs(clean) ** 2, 1) / np.mean(np.abs(noisy - clean) ** 2, 1))
    assert abs(per_frame[::2].mean() + 20) < 0.5 and abs(per_frame[1::2].mean() - 18) < 0.5
