"""A classifier with detector heads (models/detecting.py): one backbone for classes, noise and
SNR, trained jointly (training/detection.py: JointDetection), exported as a contract version 2
model with one network inside, refused where it cannot apply."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from gnuradio.modrec import contract
from gnuradio.modrec.runtime import load_model
from gnuradio.modrec.runtime.decisions import classify_frames, decision_labels
from gnuradio.modrec.training.checkpoint import load_checkpoint, model_from_checkpoint
from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.config import load_config
from gnuradio.modrec.training.data.sources import read_split
from gnuradio.modrec.training.detection import JointDetection
from gnuradio.modrec.training.flops import count_flops
from gnuradio.modrec.training.models import create_model
from gnuradio.modrec.training.models.signal_detector import NOISE_COLUMN, SNR_COLUMN

ROOT = Path(__file__).resolve().parents[1]
KNOWN = ["8PSK", "AM-DSB", "AM-SSB", "BPSK", "CPFSK", "GFSK", "PAM4", "QAM16", "QAM64", "QPSK", "WBFM"]


def test_the_heads_read_the_backbone_without_changing_its_classes():
    torch.manual_seed(0)
    model = create_model("mobilenet1d_det", n_classes=12).eval()
    x = torch.randn(6, 2, 128)
    logits, det = model.forward_detect(x)
    assert logits.shape == (6, 11) and det.shape == (6, 2)  # n_classes counts noise; the backbone the known ones
    torch.testing.assert_close(model(x), model.backbone(x))  # the classes are the backbone's own answer
    features, logits2 = model.forward_features(x)
    torch.testing.assert_close(features, model.backbone.forward_features(x)[0])
    torch.testing.assert_close(logits2, logits)
    torch.testing.assert_close(model.forward_detect(x * 1e3)[1], det, rtol=1e-4, atol=1e-4)  # at any gain
    assert torch.isfinite(model.forward_detect(torch.zeros(2, 2, 128))[1]).all()  # silence
    # the FLOP count includes the heads
    assert count_flops(model) > count_flops(model.backbone)


def test_a_relu_backbone_takes_the_hard_swish_weights():
    # outer_act swaps the stem's, last convolution's and head's activation, each block names its
    # own: no weight changes
    from gnuradio.modrec.training.models.mobilenet1d import DEFAULT_BLOCKS

    blocks = [[*b[:4], "relu", b[5]] for b in DEFAULT_BLOCKS]
    hswish, relu = create_model("mobilenet1d"), create_model("mobilenet1d", outer_act="relu", blocks=blocks)
    relu.load_state_dict(hswish.state_dict())
    assert not any(isinstance(m, nn.Hardswish) for m in relu.modules())
    assert any(isinstance(m, nn.Hardswish) for m in hswish.modules())


@pytest.mark.parametrize("cfg, message", [
    ({"tap": 6}, "tap must be a block index in 0..5"),
    ({"n_classes": 1}, "at least 2"),
    ({"backbone_cfg": {"n_classes": 11}}, "backbone_cfg.n_classes is set by the model"),
])
def test_configs_that_cannot_work_are_named(cfg, message):
    with pytest.raises(ValueError, match=message):
        create_model("mobilenet1d_det", **cfg)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny mobilenet1d classifier on the 11 classes, and tiny detecting runs: from scratch, and
    from that classifier's weights with it as the kd teacher."""
    out = tmp_path_factory.mktemp("det")
    common = ["--threads", "1", "--no-progress", "--device", "cpu"]
    with pytest.MonkeyPatch.context() as patch:  # the module's datasets in its own cache
        patch.setenv("MODREC_CACHE", str(out / "cache"))
        assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci.yaml"), "--out", str(out / "classifier"),
                     "--set", "model.name=mobilenet1d", *common]) == 0
        assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci-detecting.yaml"), "--out", str(out / "scratch"),
                     *common]) == 0
        teacher = str(out / "classifier" / "best.pt")
        assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci-detecting.yaml"), "--out", str(out / "kd"),
                     "--set", f"detector.init_from={teacher}", "--set", "distill.method=kd",
                     "--set", f"distill.teacher={{checkpoint: {teacher}}}", *common]) == 0
    return out


def test_joint_training_reports_the_classes_and_the_detector(runs):
    history = json.loads((runs / "scratch" / "history.json").read_text())
    for key in ("val_acc", "val_snr_mae_db", "val_snr_bias_db", "val_noise_recall", "val_false_noise", "val_score"):
        assert key in history[-1], key
    kd = json.loads((runs / "kd" / "history.json").read_text())
    assert "distill_kd" in kd[-1] and "distill_ce" in kd[-1]
    ckpt = load_checkpoint(runs / "kd" / "last.pt")
    assert ckpt["classes"] == KNOWN + ["noise"]
    assert ckpt["training"]["detecting"]["init_from"]["checkpoint"] == str(runs / "classifier" / "best.pt")
    assert ckpt["training"]["distill"]["method"] == "kd"


def test_the_backbone_starts_from_the_classifier_and_keeps_its_batch_norm_statistics(runs):
    cfg = load_config(ROOT / "configs" / "tiny-ci-detecting.yaml",
                      [f"detector.init_from={runs / 'classifier' / 'best.pt'}"])
    classifier = load_checkpoint(runs / "classifier" / "best.pt")
    model = create_model("mobilenet1d_det", n_classes=12, frame_len=128, spectral_channels=4, hidden=16)
    split = read_split(load_checkpoint(runs / "scratch" / "last.pt")["training"]["data"]["source"], "train")
    x, y = torch.from_numpy(split.x), torch.from_numpy(split.y).long()
    snr = torch.from_numpy(split.snr_db).float()
    objective = JointDetection(cfg, model, x, y, split.meta, torch.device("cpu"), snr, snr, log=lambda *a: None)
    for key, value in classifier["state_dict"].items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value)
    objective.start_epoch(0, x)
    norms = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm1d)]
    assert norms and not any(m.training for m in norms) and model.heads.training
    before = [m.running_mean.clone() for m in norms]
    loss, right = objective.batch_loss(objective.step_module, x[:64], y[:64], torch.arange(64))
    loss.backward()
    assert torch.isfinite(loss) and 0 <= int(right) <= 64
    for m, was in zip(norms, before):
        torch.testing.assert_close(m.running_mean, was)


def test_a_frozen_backbone_keeps_the_classifier_while_the_heads_learn(runs, capsys):
    classifier = runs / "classifier" / "best.pt"
    cfg = load_config(ROOT / "configs" / "tiny-ci-detecting.yaml",
                      [f"detector.init_from={classifier}", "detector.freeze_backbone=true"])
    model = create_model("mobilenet1d_det", n_classes=12, frame_len=128, spectral_channels=4, hidden=16)
    split = read_split(load_checkpoint(runs / "scratch" / "last.pt")["training"]["data"]["source"], "train")
    x, y = torch.from_numpy(split.x), torch.from_numpy(split.y).long()
    snr = torch.from_numpy(split.snr_db).float()
    objective = JointDetection(cfg, model, x, y, split.meta, torch.device("cpu"), snr, snr, log=lambda *a: None)
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    heads = {k: v.clone() for k, v in model.heads.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    objective.start_epoch(0, x)
    assert not model.backbone.training and model.heads.training
    for _ in range(2):
        opt.zero_grad()
        loss, _ = objective.batch_loss(objective.step_module, x[:64], y[:64], torch.arange(64))
        loss.backward()
        opt.step()
    for key, value in model.backbone.state_dict().items():  # weights and batch-norm statistics
        torch.testing.assert_close(value, backbone[key])
    assert any(not torch.equal(v, heads[k]) for k, v in model.heads.state_dict().items())
    # nothing to keep without a classifier to start from, and nothing a teacher could teach the heads
    common = ["--out", str(runs / "refused"), "--threads", "1", "--no-progress", "--device", "cpu"]
    assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci-detecting.yaml"),
                 "--set", "detector.freeze_backbone=true", *common]) == 2
    assert "set detector.init_from" in capsys.readouterr().err
    assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci-detecting.yaml"), "--set", "detector.freeze_backbone=true",
                 "--set", f"detector.init_from={classifier}", "--set", "distill.method=kd",
                 "--set", f"distill.teacher={{checkpoint: {classifier}}}", *common]) == 2
    assert "set distill.method to none" in capsys.readouterr().err


def test_the_card_of_heads_on_a_frozen_backbone_says_so():
    from gnuradio.modrec.training.model_card import _version2_lines

    training = {"detector": {"own_heads": True, "noise_false_rate": 0.005},
                "detecting": {"freeze_backbone": True, "init_from": {"checkpoint": "runs/c/best.pt"}}}
    lines = _version2_lines({contract.NOISE_CLASS: "noise"}, training)
    assert "from its own detector heads (on its frozen backbone)" in lines[0]


def test_the_export_is_a_version_2_model_with_one_network(runs, tmp_path):
    out = tmp_path / "det.onnx"
    assert main(["export", "--checkpoint", str(runs / "kd" / "best.pt"), "--unknown-score", "energy",
                 "--unknown-false-rate", "0.1", "--out", str(out)]) == 0
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["version"] == "2" and props["noise_class"] == "noise" and props["conv_layout"] == "2d"
    assert json.loads(props["classes"]) == KNOWN + ["noise"] and props["architecture"] == "mobilenet1d_det"
    training = json.loads(props["training"])
    assert training["detector"]["own_heads"] and "checkpoint" not in training["detector"]
    model = load_model(str(out))
    assert model.has_snr and decision_labels(model)[-2:] == ["noise", "unknown"]
    # what the file computes is the checkpoint's heads, joined as a separate detector is
    torch_model = model_from_checkpoint(runs / "kd" / "best.pt")
    val = read_split(training["data"]["source"], "val")
    xv = val.x[:40]
    with torch.no_grad():
        logits, det = torch_model.forward_detect(torch.from_numpy(xv))
    details = model.predict_details(xv)
    bias = training["detector"]["noise_bias"]
    np.testing.assert_allclose(details.logits[:, :-1], logits.numpy(), rtol=1e-4, atol=1e-4)
    noise = det[:, NOISE_COLUMN] - bias + torch.logsumexp(logits, dim=-1)
    np.testing.assert_allclose(details.logits[:, -1], noise.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(details.snr_db, det[:, SNR_COLUMN].numpy(), rtol=1e-4, atol=1e-3)
    decided = classify_frames(model, xv[:, 0] + 1j * xv[:, 1])
    assert np.isfinite(decided.snr_db).all()


def test_what_cannot_apply_is_refused(runs, tmp_path, capsys):
    # a second detector on a model that has its own
    assert main(["export", "--checkpoint", str(runs / "kd" / "best.pt"), "--detector", str(runs / "kd" / "best.pt"),
                 "--out", str(tmp_path / "x.onnx")]) == 2
    assert "has detector heads of its own; export it without --detector" in capsys.readouterr().err
    # noise must come last, after the known classes
    common = ["--out", str(tmp_path / "run"), "--threads", "1", "--no-progress", "--device", "cpu"]
    assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci-detecting.yaml"),
                 "--set", "data.generator.classes=[noise, BPSK, QPSK]", "--set", "data.name=tiny-noise-first", *common]) == 2
    assert "then 'noise' last" in capsys.readouterr().err
    # a backbone checkpoint of other classes
    assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci-detecting.yaml"),
                 "--set", "data.generator.classes=[BPSK, QPSK, noise]", "--set", "data.name=tiny-three",
                 "--set", f"detector.init_from={runs / 'classifier' / 'best.pt'}", *common]) == 2
    assert "the data's known classes are ['BPSK', 'QPSK']" in capsys.readouterr().err
    # a teacher trained online knows no noise
    assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci-detecting.yaml"), "--set", "distill.method=bdkd",
                 "--set", "distill.teacher={model: cnn3}", *common]) == 2
    assert "trains its teacher online" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_the_card_says_where_the_detector_and_the_backbone_came_from(runs, tmp_path):
    # exported and scored on the classifiers' data (11 classes, no noise), as the shipped one is
    scored_on = load_checkpoint(runs / "classifier" / "best.pt")["training"]["data"]["root"]
    out, card = tmp_path / "det.onnx", tmp_path / "det.md"
    assert main(["export", "--checkpoint", str(runs / "kd" / "best.pt"), "--data", scored_on,
                 "--out", str(out)]) == 0
    assert main(["evaluate", "--checkpoint", str(runs / "kd" / "best.pt"), "--onnx", str(out), "--data", scored_on,
                 "--out", str(tmp_path / "eval"), "--card", str(card), "--no-latency"]) == 0
    text = card.read_text()
    assert "from its own detector heads (trained with its classes)" in text
    assert f"backbone initialised from `{runs / 'classifier' / 'best.pt'}` (mobilenet1d" in text
    assert f"--noise-false-rate 0.005 --data {scored_on}" in text and "--detector" not in text
    assert f"--onnx models/det.onnx --data {scored_on} --out" in text


def test_a_backbone_checkpoint_that_does_not_fit_is_named(runs, tmp_path):
    # the loader exits.init_from and detector.init_from share (checkpoint.load_backbone)
    from gnuradio.modrec.training.checkpoint import load_backbone

    ckpt = runs / "classifier" / "best.pt"
    with pytest.raises(ValueError, match="field 'exits.init_from': .* holds a mobilenet1d, the backbone is a cnn3"):
        load_backbone(create_model("cnn3"), ckpt, field="exits.init_from")
    with pytest.raises(ValueError, match="does not fit the backbone"):
        load_backbone(create_model("mobilenet1d", width_mult=0.5), ckpt, field="detector.init_from")
    with pytest.raises(FileNotFoundError, match="field 'detector.init_from': .*nothing.pt not found"):
        load_backbone(create_model("mobilenet1d"), tmp_path / "nothing.pt", field="detector.init_from")
    backbone = create_model("mobilenet1d")
    assert load_backbone(backbone, ckpt, field="exits.init_from", classes=KNOWN)["model_name"] == "mobilenet1d"
    for key, value in load_checkpoint(ckpt)["state_dict"].items():
        torch.testing.assert_close(backbone.state_dict()[key], value)
