"""Early-exit students: architectures, the exit-training schemes, threshold calibration, staged
export, and a tiny multi-branch training run through to the runtime cascade."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from gnuradio.modrec.classes import RADIOML2016_CLASSES
from gnuradio.modrec.runtime import EarlyExitModel, OnnxModel
from gnuradio.modrec.training.config import config_from_dict
from gnuradio.modrec.training.exits import ExitTraining, calibrate_threshold, exit_decisions
from gnuradio.modrec.training.export import export_checkpoint
from gnuradio.modrec.training.flops import count_flops
from gnuradio.modrec.training.models import create_model
from gnuradio.modrec.training.checkpoint import load_checkpoint, model_from_checkpoint
from gnuradio.modrec.training.train import train
from test_train_eval_export import write_dataset


@pytest.mark.parametrize("name,placements,heads", [
    ("cnn3_ee", [1], {}), ("cnn3_ee", [2], {}), ("cnn3_ee", [1, 2], {}), ("cnn3_ee", [1, 2], {"exit_conv": 24}),
    ("mobilenet1d_ee", [1], {}), ("mobilenet1d_ee", [2], {}), ("mobilenet1d_ee", [3], {}),
    ("mobilenet1d_ee", [4], {}), ("mobilenet1d_ee", [1, 2, 3, 4], {}), ("mobilenet1d_ee", [2, 4], {"exit_conv": 32, "exit_kernel": 3}),
    ("mini_inception_resnet_ee", [1], {}), ("mini_inception_resnet_ee", [3, 6], {}),
    ("mini_inception_resnet_ee", [1, 3, 4, 8], {"exit_conv": 32})])
def test_final_exit_is_the_plain_student_and_stages_compose(name, placements, heads):
    torch.manual_seed(0)
    model = create_model(name, exits=placements, **heads).eval()
    plain = create_model(name[: -len("_ee")]).eval()
    plain.load_state_dict({k[len("backbone."):]: v for k, v in model.state_dict().items() if k.startswith("backbone.")})
    x = torch.randn(6, 2, 128)
    outs = model.forward_exits(x)
    assert len(outs) == len(placements) + 1 and all(o.shape == (6, 11) for o in outs)
    assert torch.equal(outs[-1], plain(x)) and torch.equal(model(x), plain(x))
    h, staged = x, []
    for stage in model.stages():
        out = stage(h)
        staged.append(out[0] if isinstance(out, tuple) else out)
        h = out[1] if isinstance(out, tuple) else h
    for a, b in zip(staged, outs):
        assert torch.equal(a, b)


def test_a_conv_exit_head_costs_its_hand_counted_flops_and_changes_nothing_else():
    from gnuradio.modrec.training.exits.export import stage_flops

    backbone = {"channels": [48, 64, 128], "kernels": [7, 5, 3], "pools": [2, 2, 1]}
    pooled = create_model("cnn3_ee", exits=[1], exit_hidden=32, backbone_cfg=backbone)
    conv = create_model("cnn3_ee", exits=[1], exit_hidden=32, exit_conv=32, exit_kernel=5, backbone_cfg=backbone)
    # the default head has no conv parameters: checkpoints written before the option still load
    assert not any(".conv." in k for k in pooled.state_dict())
    assert {k for k in conv.state_dict() if not k.startswith("exits.")} == {k for k in pooled.state_dict() if not k.startswith("exits.")}
    # after block 1: 48 channels x 64 samples; depthwise 48*64*5, pointwise 32*64*48, first linear 2*32 in, not 2*48
    extra_macs = 48 * 64 * 5 + 32 * 64 * 48 + (2 * 32 - 2 * 48) * 32
    with_conv, without = stage_flops(conv, 128), stage_flops(pooled, 128)
    assert with_conv[0] - without[0] == 2 * extra_macs
    assert with_conv[1] == without[1]


def test_mini_inception_resnet_exports_as_stages_with_parity(tmp_path):
    """The Inception-ResNet split (concatenating reduction blocks between stages) through ONNX Runtime."""
    from gnuradio.modrec.training.exits.export import export_early_exit

    torch.manual_seed(0)
    model = create_model("mini_inception_resnet_ee", exits=[4]).eval()
    info = export_early_exit(model, tmp_path / "ee.onnx", thresholds=[0.5], policy="entropy",
                             classes=RADIOML2016_CLASSES, frame_len=128)
    assert info["staged_parity_max_abs_diff"] < 1e-4 and len(info["stages"]) == 2
    plain_flops = count_flops(create_model("mini_inception_resnet"))
    assert 0.3 * plain_flops < info["exit_flops"][0] < 0.4 * plain_flops  # Reduction-A ends at 36 % of the FLOPs
    assert sum(info["exit_flops"]) - plain_flops == count_flops(model.exits[0], 32, in_rows=152)


def test_bad_placements_are_named():
    with pytest.raises(ValueError, match=r"within 1\.\.2 \(CNN3 has 3 blocks\)"):
        create_model("cnn3_ee", exits=[3])
    with pytest.raises(ValueError, match="must increase"):
        create_model("mobilenet1d_ee", exits=[2, 1])


def _exits_cfg(**kw):
    base = dict(scheme="joint", weights=[], phase1_epochs=0, self_distill=0.0, temperature=2.0)
    return SimpleNamespace(**{**base, **kw})


def test_exit_loss_hand_computed():
    model = create_model("cnn3_ee", exits=[1, 2])
    y = torch.tensor([0, 3])
    outs = [torch.tensor([[2.0, 0.0] + [0.0] * 9, [0.0] * 11]), torch.zeros(2, 11), torch.eye(11)[[0, 3]] * 3.0]
    ce = [F.cross_entropy(o, y) for o in outs]
    joint = ExitTraining(model, _exits_cfg(weights=[0.2, 0.3, 1.0]), 4)
    joint.start_epoch(0)
    loss, parts = joint.exit_loss(outs, y)
    assert torch.isclose(loss, 0.2 * ce[0] + 0.3 * ce[1] + ce[2])
    # self-distillation: T^2 * KL(softmax(final/T) || softmax(exit/T)) on each early exit
    sd = ExitTraining(model, _exits_cfg(self_distill=0.5, temperature=2.0), 4)
    sd.start_epoch(0)
    loss, parts = sd.exit_loss(outs, y)
    soft = F.softmax(outs[-1] / 2.0, 1)
    kl = sum((soft * (soft.log() - F.log_softmax(o / 2.0, 1))).sum(1).mean() for o in outs[:-1]) * 4.0
    assert torch.isclose(loss, sum(ce) + 0.5 * kl, atol=1e-6) and torch.isclose(parts["self_distill"], kl, atol=1e-6)


def test_two_phase_and_heads_schemes_train_the_right_parts():
    model = create_model("mobilenet1d_ee", exits=[2])
    scheme = ExitTraining(model, _exits_cfg(scheme="two_phase", phase1_epochs=2), 5)
    front = {id(p) for m in [model._segments[0], model.exits] for p in m.parameters()}
    scheme.start_epoch(0)  # phase 1: blocks up to the exit + the early head
    assert all(p.requires_grad == (id(p) in front) for p in model.parameters())
    scheme.start_epoch(2)  # phase 2: the rest
    assert all(p.requires_grad == (id(p) not in front) for p in model.parameters())
    assert not model._segments[0][0][0].training  # frozen blocks keep their BN statistics
    heads = ExitTraining(model, _exits_cfg(scheme="heads"), 5)
    heads.start_epoch(0)
    assert all(p.requires_grad == any(p is q for q in model.exits.parameters()) for p in model.parameters())
    with pytest.raises(ValueError, match="phase1_epochs"):
        ExitTraining(model, _exits_cfg(scheme="two_phase", phase1_epochs=5), 5)
    with pytest.raises(ValueError, match="weights has 3 entries, the model has 2 exits"):
        ExitTraining(model, _exits_cfg(weights=[1, 1, 1]), 5)


def test_calibration_picks_the_largest_threshold_within_budget():
    # 4 frames; exit 0 is sure and right on frames 0, 1, sure and WRONG on frame 2, unsure on 3
    sure = lambda k: np.eye(3)[k] * 0.98 + 0.01  # noqa: E731
    early = np.stack([sure(0), sure(1), sure(0), np.full(3, 1 / 3)])
    final = np.stack([sure(0), sure(1), sure(2), sure(2)])
    y = np.array([0, 1, 2, 2])
    loose = calibrate_threshold([early, final], y, "maxprob", budget_pp=30.0)
    assert loose["threshold"] >= 0.02 and loose["exit_rates"] == [3, 1] and loose["accuracy"] == 0.75
    strict = calibrate_threshold([early, final], y, "maxprob", budget_pp=0.5)
    assert strict["threshold"] < 0.02 and strict["accuracy"] == 1.0  # frame 2 must not leave early
    # frames 0-2 at high SNR: a 30 pp budget over all frames still allows frame 2's error, over
    # the high-SNR frames alone (1 of 3 wrong = 33 pp) it does not
    snr = np.array([18.0, 18.0, 18.0, -10.0])
    by_snr = calibrate_threshold([early, final], y, "maxprob", budget_pp=30.0, snr=snr, snr_min=10.0)
    assert by_snr["threshold"] < 0.02 and by_snr["accuracy_by_subset"]["snr_ge_10"] == 1.0
    probs, taken = exit_decisions([early, final], [strict["threshold"]], "maxprob")
    assert taken[2] == 1 and (probs.argmax(1) == y).all()  # the sure-but-wrong frame goes on


def test_one_list_of_exit_policies():
    from gnuradio.modrec import contract
    from gnuradio.modrec.runtime import early_exit
    from gnuradio.modrec.training import exits

    assert exits.POLICIES is early_exit.POLICIES is contract.EXIT_POLICIES
    probs = np.stack([np.full(4, 0.25), np.eye(4)[1] * 0.97 + 0.01])
    gate = {"w1": np.zeros((1, 3 + 4 * 4)), "b1": [0.0], "w2": [0.0], "b2": 0.0}
    for policy in contract.EXIT_POLICIES:  # each rule the contract names has an implementation
        assert early_exit.uncertainty(probs, policy, gate).shape == (2,)


def _answer_dependent_exit(n, seed):
    """An early exit equally sure of every answer, but right only when it says class 0 or 1; the
    final exit always right."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    # classes 2 and 3: half the frames get the other one of the two; answers 0 and 1 are always right
    answer = np.where((y >= 2) & (rng.random(n) < 0.5), 5 - y, y)
    sure = rng.uniform(0.6, 0.95, n)
    early = np.full((n, 4), 0.0) + ((1 - sure) / 3)[:, None]
    early[np.arange(n), answer] = sure
    return early, np.eye(4)[y] * 0.9 + 0.025, y


def test_the_learned_gate_trusts_an_exit_where_its_answers_deserve_it():
    from gnuradio.modrec.runtime.early_exit import gate_features, uncertainty
    from gnuradio.modrec.training.exits.gate import fit_gate

    early, final, y = _answer_dependent_exit(4000, seed=0)
    gate = fit_gate(early, final, y, steps=400)
    assert gate == fit_gate(early, final, y, steps=400)  # seeded: the same frames give the same gate
    # numpy (the runtime) and torch agree on the gate's output
    w1, b1, w2 = (torch.tensor(gate[k], dtype=torch.float64) for k in ("w1", "b1", "w2"))
    x = torch.tensor(gate_features(early[:50]))
    want = 1 - torch.sigmoid(torch.relu(x @ w1.T + b1) @ w2 + gate["b2"])
    np.testing.assert_allclose(uncertainty(early[:50], "gate", gate), want.numpy(), atol=1e-9)
    # calibrated on other frames to lose nothing, the gate lets the trustworthy answers (0, 1)
    # leave; entropy cannot tell them from the others and lets almost nothing leave
    early_val, final_val, y_val = _answer_dependent_exit(4000, seed=1)
    by_gate = calibrate_threshold([early_val, final_val], y_val, "gate", budget_pp=0.5, gates=[gate])
    by_entropy = calibrate_threshold([early_val, final_val], y_val, "entropy", budget_pp=0.5)
    assert by_gate["exit_rates"][0] > 0.4 * len(y_val) > 10 * by_entropy["exit_rates"][0]
    with pytest.raises(ValueError, match="gate weights"):
        uncertainty(early, "gate")


def test_tiny_multi_branch_training_to_the_runtime(tmp_path):
    """CI: a plain tiny cnn3, early exits added to it (heads scheme), joint training, staged
    export with a calibrated threshold, and the runtime's cascade against torch."""
    data = write_dataset(tmp_path / "data", {"train": 40, "val": 20, "test": 10}, seed=2)
    base = {"seed": 1, "data": {"name": "tiny", "root": str(data), "frames_per_class_snr": {"train": 40, "val": 20, "test": 10}},
            "optim": {"lr": 0.01}, "train": {"epochs": 2, "batch_size": 32, "device": "cpu", "threads": 1}}
    backbone = {"channels": [8, 16, 16], "hidden": 16}
    train(config_from_dict({**base, "experiment": "plain", "output_dir": str(tmp_path / "plain"),
                            "model": {"name": "cnn3", "cfg": backbone}}), progress=False, log=lambda *a: None)
    logs = []
    for scheme in ("heads", "joint"):
        cfg = config_from_dict({**base, "experiment": scheme, "output_dir": str(tmp_path / scheme),
                                "model": {"name": "cnn3_ee", "cfg": {"exits": [1, 2], "backbone_cfg": backbone}},
                                "exits": {"scheme": scheme, "init_from": str(tmp_path / "plain" / "best.pt"),
                                          "self_distill": 0.5, "policy": "entropy", "budget_pp": 5.0}}, source="t.yaml")
        train(cfg, progress=False, log=logs.append)
    assert any("backbone initialised from" in m for m in logs)
    plain = load_checkpoint(tmp_path / "plain" / "best.pt")
    heads = load_checkpoint(tmp_path / "heads" / "last.pt")
    for k, v in plain["state_dict"].items():  # heads-only training left the backbone untouched
        assert torch.equal(heads["state_dict"][f"backbone.{k}"], v), k
    assert {"val_acc_exit0", "val_acc_exit1", "val_acc_exit2"} <= set(heads["history"][-1])
    # best.pt follows the mean accuracy over the exits, not the (frozen) final exit's alone
    scores = [h["val_score"] for h in heads["history"]]
    assert load_checkpoint(tmp_path / "heads" / "best.pt")["epoch"] == 1 + int(np.argmax(scores))

    info = export_checkpoint(tmp_path / "joint" / "best.pt", tmp_path / "ee.onnx")
    assert info["staged_parity_max_abs_diff"] < 1e-4 and len(info["stages"]) == 3
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "ee.onnx")).metadata_props}
    assert meta["exits"] == "3" and meta["exit_policy"] == "entropy"
    threshold = json.loads(meta["exit_thresholds"])[0]
    assert json.loads(meta["training"])["exit_calibration"]["threshold"] == threshold

    model = model_from_checkpoint(load_checkpoint(tmp_path / "joint" / "best.pt"))
    frames = np.random.default_rng(0).standard_normal((40, 2, 64)).astype(np.float32) * 3
    with torch.no_grad():
        per_exit = [torch.softmax(o, 1).numpy() for o in model.forward_exits(torch.from_numpy(frames))]
    want, want_exit = exit_decisions(per_exit, [threshold, threshold], "entropy")
    probs, taken = EarlyExitModel(str(tmp_path / "ee.onnx")).predict_with_exits(frames)
    assert np.array_equal(taken, want_exit)
    np.testing.assert_allclose(probs, want, atol=1e-4)
    np.testing.assert_allclose(OnnxModel(str(tmp_path / "ee.onnx")).predict(frames), per_exit[-1], atol=1e-4)

    # the learned rule: gates fitted on the train split at export, their weights in the metadata
    info = export_checkpoint(tmp_path / "joint" / "best.pt", tmp_path / "gated.onnx", exit_calibration={"policy": "gate"})
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "gated.onnx")).metadata_props}
    gates, calibration = json.loads(meta["exit_gates"]), json.loads(meta["training"])["exit_calibration"]
    assert meta["exit_policy"] == "gate" and len(gates) == 2 and "gates" not in calibration
    assert calibration["gate_fit"][0]["train_frames"] > 0
    want, want_exit = exit_decisions(per_exit, [calibration["threshold"]] * 2, "gate", gates)
    probs, taken = EarlyExitModel(str(tmp_path / "gated.onnx"), adaptive=False).predict_with_exits(frames)
    assert np.array_equal(taken, want_exit)
    np.testing.assert_allclose(probs, want, atol=1e-4)

    # per-SNR evaluation against the plain twin (what apps/early_exit_study reports)
    from gnuradio.modrec.training.exits.evaluate import evaluate_early_exit, markdown

    assert export_checkpoint(tmp_path / "plain" / "best.pt", tmp_path / "plain.onnx")["parity_max_abs_diff"] < 1e-4
    result = evaluate_early_exit(tmp_path / "ee.onnx", tmp_path / "plain.onnx", data, repeats=1)
    assert [r["snr_db"] for r in result["per_snr"]] == [-10.0, 0.0, 10.0]
    stage_cost = np.cumsum(result["exit_flops"])
    for r in result["per_snr"]:
        assert abs(sum(r["exit_rates"]) - 1) < 1e-9 and r["n"] == 20  # 10 frames x 2 classes per SNR
        assert stage_cost[0] <= r["mean_flops"] <= stage_cost[-1] and r["ms_per_frame"] > 0
        assert stage_cost[0] <= r["no_loss_bound_flops"] <= stage_cost[-1]
    assert "| ≥ 10 |" in markdown([result]) and "| all |" in markdown([result])


def test_no_loss_exit_is_the_first_exit_that_costs_nothing():
    from gnuradio.modrec.training.exits.evaluate import no_loss_exit

    def onehot(classes):
        return np.eye(3)[classes]

    labels = np.array([0, 0, 0, 0, 1])
    exits = [onehot([0, 1, 1, 2, 2]), onehot([0, 0, 1, 1, 0]), onehot([0, 0, 0, 2, 2])]
    # frame 0 right everywhere; 1 right from exit 1; 2 right only at the final exit;
    # 3 and 4: the final exit is wrong, so leaving at once loses nothing
    assert no_loss_exit(exits, labels).tolist() == [0, 1, 2, 0, 0]


def test_a_report_keeps_the_rows_it_did_not_measure_again(tmp_path):
    from gnuradio.modrec.training.exits.evaluate import write_exits_report

    previous = Path(__file__).resolve().parents[1] / "models" / "early_exit.json"
    earlier = json.loads(previous.read_text())
    again = dict(earlier[2], thresholds=[0.123])  # the third model, measured again
    new = dict(earlier[0], model="runs/x/cnn3_ee-new-p1.onnx")
    paths = []
    for k, result in enumerate((new, again)):
        paths.append(tmp_path / f"r{k}.json")
        paths[-1].write_text(json.dumps(result))
    table = write_exits_report(paths, json_path=tmp_path / "merged.json", previous=previous)
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert [r["model"] for r in merged] == [r["model"] for r in earlier] + [new["model"]]
    assert merged[2]["thresholds"] == [0.123] and merged[:2] == earlier[:2] and merged[3:-1] == earlier[3:]
    assert table.count("#### ") == len(earlier) + 1 and "cnn3_ee-new-p1" in table
    write_exits_report(paths[:1], json_path=tmp_path / "alone.json")  # without previous: only what was given
    assert len(json.loads((tmp_path / "alone.json").read_text())) == 1


def test_every_architecture_implements_the_model_interface():
    # the split lives with each model (models/interface.py), not in an isinstance chain: students
    # and teachers alike chain their blocks into the whole network and take early exits
    from gnuradio.modrec.training.models import create_model, list_models
    from gnuradio.modrec.training.models.early_exit import EarlyExitNet
    from gnuradio.modrec.training.models.interface import ModRecModel

    x = torch.randn(2, 2, 128)
    plain = [name for name in list_models(kind="classifier") if not name.endswith("_ee")]
    assert sorted(plain) == ["clst", "cnn3", "inception_resnet", "mini_inception_resnet", "mobilenet1d"]
    for name in plain:
        model = create_model(name, n_classes=4, frame_len=128).eval()
        assert isinstance(model, ModRecModel), name
        blocks, y = model.backbone_blocks(), x
        widths = []
        for block in blocks:
            y = block(y)
            widths.append(y.shape[1])
        torch.testing.assert_close(model.final_head()(y), model(x))  # the blocks chained are the whole network
        feats, logits = model.forward_features(x)
        assert feats.shape == (2, model.feature_dim) and torch.equal(logits, model(x))
        assert model.block_widths(128) == widths and len(blocks) >= 3, name
        ee = EarlyExitNet(model, [1], exit_hidden=8, n_classes=4, frame_len=128).eval()
        outs = ee.forward_exits(x)
        assert len(outs) == 2 and outs[0].shape == (2, 4) and torch.equal(outs[-1], model(x)), name
    with pytest.raises(TypeError, match="does not implement the model interface"):
        EarlyExitNet(torch.nn.Conv1d(2, 4, 3), [1], exit_hidden=8, n_classes=4, frame_len=128)
