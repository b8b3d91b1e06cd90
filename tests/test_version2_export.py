"""Contract version 2 from training to the block's decisions: a classifier joined to a signal
detector, with a calibrated unknown threshold, through the same commands as every model."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from gnuradio.modrec import contract
from gnuradio.modrec.runtime import load_model
from gnuradio.modrec.runtime.decisions import classify_frames, decision_labels
from gnuradio.modrec.runtime.open_set import energy_score
from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.data.sources import read_split

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("v2")
    cache = out / "cache"
    import os

    old = os.environ.get("MODREC_CACHE")
    os.environ["MODREC_CACHE"] = str(cache)
    from gnuradio.modrec.training import train

    real_augment, held = train.augment, {}

    def augment(x, aug, gen, hold_frequency=None):  # records which frames the loop holds
        held.setdefault(config, []).append(None if hold_frequency is None else int(hold_frequency.sum()))
        return real_augment(x, aug, gen, hold_frequency)

    try:
        train.augment = augment
        for config in ("tiny-ci", "tiny-ci-detector"):
            assert main(["train", "--config", str(ROOT / "configs" / f"{config}.yaml"), "--out", str(out / config),
                         "--threads", "1", "--no-progress", "--device", "cpu"]) == 0
        (out / "held.json").write_text(json.dumps(held))
    finally:
        train.augment = real_augment
        if old is None:
            os.environ.pop("MODREC_CACHE")
        else:
            os.environ["MODREC_CACHE"] = old
    return out


def test_the_detector_trains_on_noise_and_reports_its_figures(runs):
    history = json.loads((runs / "tiny-ci-detector" / "history.json").read_text())
    for key in ("val_snr_mae_db", "val_snr_bias_db", "val_noise_recall", "val_false_noise", "val_score"):
        assert key in history[-1], key


def test_the_carrier_offset_augmentation_holds_the_noise_class_at_its_frequency(runs):
    # every noise frame of the train split, and only those, keeps its DC offset at 0 Hz
    held = json.loads((runs / "held.json").read_text())
    assert set(held["tiny-ci"]) == {None}
    from gnuradio.modrec.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(runs / "tiny-ci-detector" / "last.pt")
    epochs = ckpt["epoch"]
    split = read_split(ckpt["training"]["data"]["source"], "train")
    noise = int(np.sum(split.y == list(split.meta["classes"]).index("noise")))
    assert noise > 0 and sum(held["tiny-ci-detector"]) == epochs * noise


def test_a_joined_export_is_a_version_2_model_with_noise_snr_and_a_calibrated_threshold(runs, tmp_path):
    out = tmp_path / "joined.onnx"
    assert main(["export", "--checkpoint", str(runs / "tiny-ci" / "best.pt"), "--detector",
                 str(runs / "tiny-ci-detector" / "best.pt"), "--unknown-score", "energy", "--unknown-false-rate", "0.1",
                 "--out", str(out)]) == 0
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["version"] == "2" and props["noise_class"] == "noise"
    assert json.loads(props["classes"])[-1] == "noise" and len(json.loads(props["classes"])) == 12
    assert props["unknown_score"] == "energy" and float(props["unknown_false_rate"]) == 0.1
    model = load_model(str(out))
    assert model.has_snr and decision_labels(model)[-2:] == ["noise", "unknown"]
    # the threshold calls 10 % of the known validation frames at SNR >= 0 dB unknown
    val = read_split(json.loads(props["training"])["data"]["source"], "val")
    keep = val.snr_db >= 0
    details = model.predict_details(val.x[keep])
    np.testing.assert_allclose(details.unknown_score, energy_score(details.logits), rtol=1e-5, atol=1e-5)
    assert np.mean(details.unknown_score > model.open_set.threshold) == pytest.approx(0.1, abs=0.02)
    # probabilities: p(noise) and (1 - p(noise)) x the classifier's softmax
    plain = tmp_path / "plain.onnx"
    assert main(["export", "--checkpoint", str(runs / "tiny-ci" / "best.pt"), "--out", str(plain)]) == 0
    classifier = load_model(str(plain))
    assert classifier.metadata["version"] == "2" and not classifier.has_snr and classifier.open_set.noise_class is None
    p = classifier.predict(val.x[:50])
    joined = model.predict(val.x[:50])
    np.testing.assert_allclose(joined[:, :-1], p * (1 - joined[:, -1:]), atol=1e-5)
    decided = classify_frames(model, val.x[:50, 0] + 1j * val.x[:50, 1])
    assert np.isfinite(decided.snr_db).all()


def test_options_that_cannot_apply_are_refused(runs, tmp_path, capsys):
    assert main(["export", "--checkpoint", str(runs / "tiny-ci" / "best.pt"), "--detector",
                 str(runs / "tiny-ci" / "best.pt"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "--detector needs a signal detector's checkpoint, this holds a CNN3" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(runs / "tiny-ci" / "best.pt"), "--unknown-score", "maxprob",
                 "--unknown-false-rate", "1.5", "--out", str(tmp_path / "y.onnx")]) == 2
    assert "--unknown-false-rate must be in (0, 1), got 1.5" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(runs / "tiny-ci-detector" / "best.pt"), "--out", str(tmp_path / "z.onnx")]) == 2
    assert "a signal detector is exported joined to a classifier" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in ("x.onnx", "y.onnx", "z.onnx"))
