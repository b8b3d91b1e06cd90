"""Channel pruning: the criterion's ranking rule, surgery on every student, ratios, export, and a
tiny prune + fine-tune run through the CLI."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch_pruning as tp

from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.config import ConfigError, config_from_dict
from gnuradio.modrec.training.onnx_export import export_onnx
from gnuradio.modrec.training.flops import count_flops
from gnuradio.modrec.training.models import create_model
from gnuradio.modrec.training.prune import GammaRedundancyImportance, create_criterion, fit_to_state_dict, prune
from gnuradio.modrec.training.checkpoint import load_checkpoint, model_from_checkpoint
from gnuradio.modrec.training.distill.teacher_cache import weights_sha256

ROOT = Path(__file__).resolve().parents[1]
STUDENTS = ("cnn3", "mobilenet1d", "mini_inception_resnet")
PRUNED_TEACHER = "inception_resnet"  # apps/pruning_study --models inception_resnet


def _trained_like(name, seed=0):
    """A fresh model with spread-out BN scales, so gamma-based criteria have something to rank."""
    torch.manual_seed(seed)
    model = create_model(name, n_classes=11, frame_len=128)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.weight.data.uniform_(0.1, 1.5)
            m.running_var.data.uniform_(0.5, 2.0)
    return model.eval()


def test_ranking_rule_hand_computed():
    # three channels: 0 and 2 identical (cosine 1), 1 orthogonal to both; gamma 2, 1, 1
    gamma = torch.tensor([2.0, 1.0, 1.0])
    sim = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    # g = gamma / mean = [1.5, 0.75, 0.75]; ranked 0, 1, 2; s = [0, 0, 1] (2 copies 0, ranked above it)
    assert torch.allclose(GammaRedundancyImportance(1.0).scores(gamma, sim), torch.tensor([1.5, 0.75, 0.0]))
    assert torch.allclose(GammaRedundancyImportance(0.5).scores(gamma, sim), torch.tensor([1.5, 0.75, 0.375]))
    # negative correlation is not redundancy; a tie in gamma keeps the earlier index
    anti = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    assert torch.allclose(GammaRedundancyImportance(1.0).scores(torch.ones(2), anti), torch.ones(2))
    same = torch.ones(2, 2)
    assert torch.allclose(GammaRedundancyImportance(1.0).scores(torch.ones(2), same), torch.tensor([1.0, 0.0]))


@pytest.mark.parametrize("above_chance", [False, True])
@pytest.mark.parametrize("similarity", ["filter", "feature"])
def test_duplicated_channel_ranks_below_its_original(similarity, above_chance):
    """A hand-built first layer: channel 5 is an exact copy of channel 2 (filter and BN)."""
    model = _trained_like("cnn3")
    conv, bn = model.features[0], model.features[1]
    with torch.no_grad():
        conv.weight[5] = conv.weight[2]
        for p in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
            p[5] = p[2]
        bn.weight[2] = bn.weight[5] = bn.weight.max()  # both copies carry the largest gamma
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, 2, 128))
    group = dg.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=list(range(conv.out_channels)))
    ours = create_criterion("gamma-redundancy", similarity=similarity, above_chance=above_chance)
    if similarity == "feature":
        ours.collect_features(model, torch.randn(64, 2, 128))
    score = ours(group)
    assert score[5] < score[2] and score[5] == score.min()  # the copy goes first, the original stays
    gamma_only = create_criterion("bn-gamma")(group)
    assert gamma_only[5] == gamma_only[2] == gamma_only.max()  # gamma alone cannot tell them apart


def test_path_similarity_needs_a_copy_in_every_layer_of_the_channel():
    """A MobileNet expansion channel (1x1 conv -> BN -> depthwise -> BN -> squeeze-excite gate):
    channel 5 copies every dense layer making channel 2 (the expansion and the gate's filters). With a
    different depthwise filter it is another channel (path: no redundancy; filter, which sees the
    dense layers only, calls it a copy); with the same one it is a copy."""
    from torch_pruning.pruner import function as tpf

    model = _trained_like("mobilenet1d")
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, 2, 128))
    group = next(g for g in dg.get_all_groups()
                 if any(dep.pruning_fn == tpf.prune_depthwise_conv_out_channels for dep, _ in g))
    depthwise = next(dep.layer for dep, _ in group if dep.pruning_fn == tpf.prune_depthwise_conv_out_channels)
    with torch.no_grad():
        for dep, _ in group:
            if dep.pruning_fn == tpf.prune_conv_out_channels:
                dep.layer.weight[5] = dep.layer.weight[2]
            elif dep.pruning_fn == tpf.prune_batchnorm_out_channels:
                dep.layer.weight[2] = dep.layer.weight.max() * 2  # channel 2 ranks above its copy
        depthwise.weight[5] = -depthwise.weight[2]

    def redundancy_of_5(similarity):
        scores = create_criterion("gamma-redundancy", similarity=similarity)(group)
        gamma = create_criterion("bn-gamma")(group)
        return 1 - scores[5] / gamma[5]

    assert redundancy_of_5("filter") > 0.99
    assert redundancy_of_5("path") < 0.2  # what is left: chance likeness to some other channel
    with torch.no_grad():
        depthwise.weight[5] = depthwise.weight[2]
    assert redundancy_of_5("path") > 0.99


def test_chance_similarity_of_unrelated_filters_is_discounted():
    # 120 random filters of 32 weights (a MobileNet expansion layer's shape): their largest cosines
    # sit near 0.5 by chance alone; above_chance leaves (almost) nothing of that, yet a copy stays 1
    filters = torch.randn(120, 32, generator=torch.Generator().manual_seed(0))
    filters[7] = filters[3]
    plain = GammaRedundancyImportance(similarity="filter")._similarity(filters).fill_diagonal_(0)
    discounted = GammaRedundancyImportance(similarity="filter", above_chance=True)._similarity(filters).fill_diagonal_(0)
    plain[3, 7] = plain[7, 3] = discounted[3, 7] = discounted[7, 3] = 0.0
    assert plain.max(dim=1).values.mean() > 0.4
    assert discounted.max(dim=1).values.mean() < 0.1
    copy = GammaRedundancyImportance(similarity="filter", above_chance=True)._similarity(filters)
    assert copy[3, 7] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="above_chance"):
        GammaRedundancyImportance(above_chance="yes")


def test_filters_too_short_to_beat_chance_count_only_when_copied():
    # 120 depthwise filters of 3 taps: chance reaches cosines near 1, so only the copy is redundant
    taps = torch.randn(120, 3, generator=torch.Generator().manual_seed(0))
    taps[9] = taps[4]
    sim = GammaRedundancyImportance(similarity="path", above_chance=True)._similarity(taps)
    assert sim[4, 9] == pytest.approx(1.0) and sim[9, 4] == pytest.approx(1.0)
    sim.fill_diagonal_(0)
    sim[4, 9] = sim[9, 4] = 0.0
    assert sim.max() == 0.0


@pytest.mark.parametrize("name", STUDENTS)
@pytest.mark.parametrize("criterion", ["gamma-redundancy", "l1", "bn-gamma", "random"])
def test_local_pruning_removes_the_requested_share_of_every_layer(name, criterion):
    model = _trained_like(name)
    flops = count_flops(model)
    report = prune(model, criterion, 0.5, "local", calibration=torch.randn(32, 2, 128))
    before, after = report.channels_before, report.channels_after
    # mini_inception_resnet's concatenated branches and the residual trunk they feed are one
    # torch-pruning group; each layer of it still loses its own half
    for layer in before:
        assert after[layer] == int(before[layer] * 0.5), (layer, before[layer], after[layer])
    assert count_flops(model) < 0.35 * flops
    assert model(torch.randn(3, 2, 128)).shape == (3, 11)


@pytest.mark.parametrize("criterion", ["gamma-redundancy", "l1", "bn-gamma", "random"])
def test_local_pruning_at_90_percent_reaches_every_layer_of_concatenated_branches(criterion):
    """A ranking that puts one concatenated branch at the bottom must not empty it (torch-pruning
    would skip the whole group, so 90 % cut less than 70 %): every layer keeps about a tenth, at
    least one channel."""
    model = _trained_like("mini_inception_resnet")
    report = prune(model, criterion, 0.9, "local", calibration=torch.randn(32, 2, 128))
    before, after = report.channels_before, report.channels_after
    for layer in before:  # a tenth, up to rounding in each branch of a concatenation
        assert after[layer] >= 1 and abs(after[layer] - 0.1 * before[layer]) <= 2, (layer, before[layer], after[layer])
    assert model(torch.randn(2, 2, 128)).shape == (2, 11)


def test_layer_local_ranks_each_concatenated_branch_within_itself():
    """Two branches concatenated and added to a trunk (as in an Inception-ResNet block: one
    torch-pruning group); the criterion scores branch b far below branch a. Pruning half of the
    group must take half of each branch, the lowest-scored channels of each."""
    from gnuradio.modrec.training.prune.surgery import LayerLocal

    class Concat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Conv1d(2, 4, 3, padding=1), torch.nn.Conv1d(2, 4, 3, padding=1)
            self.trunk = torch.nn.Conv1d(2, 8, 1)
            self.head = torch.nn.Conv1d(8, 3, 1)

        def forward(self, x):
            return self.head(self.trunk(x) + torch.cat([self.a(x), self.b(x)], 1))

    model = Concat()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, 2, 16))
    group = next(g for g in graph.get_all_groups(ignored_layers=[model.head]) if len(g[0].idxs) == 8)

    class Fixed(tp.importance.Importance):
        def __call__(self, group):
            return torch.tensor([10.0, 40.0, 30.0, 20.0, 1.0, 4.0, 3.0, 2.0])  # a's outputs, then b's

    local = LayerLocal(Fixed())(group)
    lowest_half = set(torch.argsort(local)[:4].tolist())
    assert lowest_half == {0, 3, 4, 7}  # the two weakest of a (10, 20) and of b (1, 2)
    assert local[1] > 1 and local[5] > 1  # each branch's best is above every quantile: never pruned


@pytest.mark.parametrize("name", STUDENTS)
def test_global_pruning_meets_the_total_and_empties_no_layer(name):
    model = _trained_like(name)
    report = prune(model, "gamma-redundancy", 0.7, "global")
    before, after = sum(report.channels_before.values()), sum(report.channels_after.values())
    assert after <= round(0.3 * before) + len(report.channels_before)  # ratio met, up to rounding per group
    assert min(report.channels_after.values()) >= 1
    assert model(torch.randn(2, 2, 128)).shape == (2, 11)


@pytest.mark.parametrize("name", STUDENTS + (PRUNED_TEACHER,))
def test_pruned_model_reloads_and_exports_with_parity(name, tmp_path):
    model = _trained_like(name)
    prune(model, "gamma-redundancy", 0.9, "local")  # the harshest sweep point
    rebuilt = fit_to_state_dict(create_model(name, n_classes=11, frame_len=128), model.state_dict())
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(8, 2, 128)
    assert torch.equal(model.eval()(x), rebuilt.eval()(x))
    info = export_onnx(rebuilt, tmp_path / f"{name}.onnx", classes=[f"c{i}" for i in range(11)], frame_len=128,
                       samples_per_symbol=8, architecture=name, pruning="gamma-redundancy:0.9")
    assert info["parity_max_abs_diff"] < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / f"{name}.onnx")).metadata_props}
    assert meta["pruning"] == "gamma-redundancy:0.9"


def test_bad_prune_config_is_named():
    base = {"model": {"name": "cnn3"}, "prune": {"checkpoint": "x.pt"}}
    for field, value, match in (("ratio", 1.5, "prune.ratio"), ("criterion", "l2", "prune.criterion"),
                                ("strategy", "layer", "prune.strategy")):
        with pytest.raises(ConfigError, match=match):
            config_from_dict({**base, "prune": {**base["prune"], field: value}})
    with pytest.raises(ConfigError, match="prune.criterion_cfg"):
        config_from_dict({**base, "prune": {"criterion": "l1", "criterion_cfg": {"redundancy_weight": 0.5}}})


def test_tiny_prune_and_fine_tune_run(tmp_path, monkeypatch):
    """CI: train tiny-ci, prune it by half with our criterion, fine-tune, resume, export."""
    monkeypatch.setenv("MODREC_CACHE", str(tmp_path / "cache"))
    base, pruned = tmp_path / "base", tmp_path / "pruned"
    assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci.yaml"), "--out", str(base), "--threads", "1",
                 "--no-progress"]) == 0
    args = ["train", "--config", str(ROOT / "configs" / "tiny-ci-prune.yaml"), "--out", str(pruned), "--threads", "1",
            "--no-progress", "--set", f"prune.checkpoint={base / 'best.pt'}", "--epochs", "2"]
    assert main(args + ["--stop-after", "1"]) == 0
    assert main(args + ["--resume"]) == 0  # resumes at the pruned shapes, without pruning again
    ckpt = load_checkpoint(pruned / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["pruning"]["criterion"] == "gamma-redundancy"
    original = load_checkpoint(base / "best.pt")
    assert ckpt["params"] < 0.5 * original["params"] and ckpt["flops"] < 0.35 * original["flops"]
    assert ckpt["pruning"]["source_weights_sha256"] == weights_sha256(original)  # reproducible: not the file's bytes
    assert ckpt["pruning"]["after"]["flops"] == ckpt["flops"]
    model_from_checkpoint(ckpt)  # loads without torch-pruning's help
    onnx_path = tmp_path / "pruned.onnx"
    assert main(["export", "--checkpoint", str(pruned / "best.pt"), "--out", str(onnx_path)]) == 0
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert meta["pruning"] == "gamma-redundancy:0.5"
    training = json.loads(meta["training"])
    assert training["pruning"]["ratio"] == 0.5
    # the sweep report: the unpruned baseline and the pruned run, speeds timed side by side
    from gnuradio.modrec.training.prune.report import write_pruning_report

    assert main(["export", "--checkpoint", str(base / "best.pt"), "--out", str(tmp_path / "base.onnx")]) == 0
    for run, model in ((base, tmp_path / "base.onnx"), (pruned, onnx_path)):
        assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--onnx", str(model), "--out", str(run / "eval")]) == 0
    table, findings = write_pruning_report([base / "eval" / "summary.json", pruned / "eval" / "summary.json"],
                                           tmp_path / "PRUNING.md", tmp_path / "pruning.json", tmp_path)
    assert "| unpruned |" in table and "| gamma-redundancy | 50% |" in table
    base_flops, pruned_flops = (r["flops"] for r in json.loads((tmp_path / "pruning.json").read_text())["runs"])
    assert f"| {100 * (1 - pruned_flops / base_flops):.1f} % |" in table  # FLOPs cut, to a tenth: 59.7 % is not 60 %
    # fine-tuning against the unpruned model as teacher; the report then names each fine-tuning
    distilled = tmp_path / "pruned-kd"
    assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci-prune.yaml"), "--out", str(distilled), "--threads", "1",
                 "--no-progress", "--set", f"prune.checkpoint={base / 'best.pt'}", "--set", "distill.method=kd",
                 "--set", f"distill.teacher={{checkpoint: {base / 'best.pt'}}}"]) == 0
    assert load_checkpoint(distilled / "best.pt")["distill"]["method"] == "kd"
    assert main(["export", "--checkpoint", str(distilled / "best.pt"), "--out", str(tmp_path / "pruned-kd.onnx")]) == 0
    assert main(["evaluate", "--checkpoint", str(distilled / "best.pt"), "--onnx", str(tmp_path / "pruned-kd.onnx"),
                 "--out", str(distilled / "eval")]) == 0
    table, _ = write_pruning_report([r / "eval" / "summary.json" for r in (base, pruned, distilled)], remeasure=False)
    assert "| gamma-redundancy [2 ep] | 50% |" in table and "| gamma-redundancy [1 ep + kd] | 50% |" in table
    rows = json.loads((tmp_path / "pruning.json").read_text())["runs"]
    assert all(r["ort_frames_per_s_batch256"] > 0 for r in rows)  # measured here, not read from the summaries
    assert findings["cnn3"]["baseline"] == "base" and (tmp_path / "pruning-cnn3.png").is_file()
    # an already pruned checkpoint is refused, naming the file
    assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci-prune.yaml"), "--out", str(tmp_path / "again"),
                 "--threads", "1", "--no-progress", "--set", f"prune.checkpoint={pruned / 'best.pt'}"]) == 2


def test_fine_tune_label_names_a_teacher_other_than_the_pruned_net():
    from gnuradio.modrec.training.prune.report import _fine_tune

    config = {"model": {"name": "mini_inception_resnet"}, "train": {"epochs": 10}}
    def label(method, teacher=None):
        distill = {"teacher": {"model": teacher}} if teacher else {}
        return _fine_tune({"config": config, "distillation": method, "distill": distill})

    assert label("none") == "10 ep"
    assert label("kd", "mini_inception_resnet") == "10 ep + kd"  # taught by the net it was cut from
    assert label("nkd", "inception_resnet") == "10 ep + nkd from inception_resnet"


def _sweep_row(name, criterion, ratio, seed, accuracy, flops):
    return {"name": name, "architecture": "cnn3", "criterion": criterion, "strategy": "local" if criterion != "none" else "-",
            "fine_tune": "2 ep" if criterion != "none" else "", "ratio": ratio, "seed": seed, "accuracy": accuracy,
            "accuracy_snr_ge_10": accuracy + 0.2, "peak_accuracy": accuracy + 0.25, "params": 1000, "flops": flops,
            "onnx_kb": 10.0, "ort_frames_per_s_batch256": 1000.0 * 4e6 / flops, "per_snr": []}


def test_the_seeds_of_one_sweep_point_make_one_row_with_their_spread():
    from gnuradio.modrec.training.prune.report import aggregate, markdown, summarise

    runs = [_sweep_row("base", "none", 0.0, 0, 0.50, 4e6),
            _sweep_row("ours-30", "gamma-redundancy", 0.3, 0, 0.494, 1.6e6),
            _sweep_row("ours-30-s1", "gamma-redundancy", 0.3, 1, 0.498, 1.6e6),
            _sweep_row("ours-30-s2", "gamma-redundancy", 0.3, 2, 0.496, 1.6e6),
            _sweep_row("l1-30", "l1", 0.3, 0, 0.4965, 1.6e6)]
    points = aggregate(runs)
    assert [p["runs"] for p in points] == [1, 3, 1]
    ours = points[1]
    assert ours["name"] == "ours-30" and ours["seeds"] == [0, 1, 2]
    assert ours["accuracy"] == pytest.approx(0.496) and ours["accuracy_std"] == pytest.approx(0.002)  # sample std
    table = markdown(points)
    assert "| gamma-redundancy | 30% |" in table and "-0.40 ± 0.20 (n=3)" in table
    assert "| l1 | 30% |" in table and "-0.35 |" in table  # one run: no spread shown
    # the budget is judged on a point's mean, not on its luckiest seed
    best = summarise(points, budget_pp=0.36)["cnn3"]["best_within_budget"]
    assert best["name"] == "l1-30" and best["runs"] == 1
    # equal cuts: the more accurate point is the finding, whichever came first
    best = summarise(points, budget_pp=0.5)["cnn3"]["best_within_budget"]
    assert best["name"] == "l1-30"


def test_sparsity_training_adds_the_l1_subgradient_to_batch_norm_scales_only():
    from gnuradio.modrec.training.prune import BnSparsity

    model = _trained_like("cnn3")
    with torch.no_grad():
        model.features[1].weight[0] = -0.5  # a negative scale is pushed up, towards 0 too
    sparsity = BnSparsity(model, 0.01, frame_len=128)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    sparsity()
    for name, p in model.named_parameters():
        module = model.get_submodule(name.rsplit(".", 1)[0])
        if isinstance(module, torch.nn.BatchNorm1d) and name.endswith("weight"):
            assert torch.equal(p.grad, 0.01 * torch.sign(p.detach())), name
        else:
            assert not p.grad.any(), name


def test_sparsity_training_drives_batch_norm_scales_down(tmp_path, monkeypatch):
    """CI: the same tiny run with and without train.bn_sparsity; the L1 run ends with smaller gammas."""
    monkeypatch.setenv("MODREC_CACHE", str(tmp_path / "cache"))
    total = {}
    for strength in (0.0, 0.5):  # strong enough to show within a few steps of a tiny run
        out = tmp_path / f"l1-{strength}"
        assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci.yaml"), "--out", str(out), "--threads", "1",
                     "--no-progress", "--epochs", "3", "--set", "optim.lr=0.03", "--set", f"train.bn_sparsity={strength}"]) == 0
        state = load_checkpoint(out / "last.pt")["state_dict"]
        gammas = [v for k, v in state.items() if k.endswith(".weight") and k.replace(".weight", ".running_var") in state]
        total[strength] = float(sum(g.abs().sum() for g in gammas))
    assert total[0.5] < 0.9 * total[0.0]
    with pytest.raises(ConfigError, match="train.bn_sparsity"):
        config_from_dict({"model": {"name": "cnn3"}, "train": {"bn_sparsity": -1e-4}})


def test_the_same_commands_reproduce_a_student_and_a_pruned_export_bit_for_bit(tmp_path, monkeypatch):
    """Shipped files must be reproducible: training, pruning and export run twice give the same bytes
    (nothing in a checkpoint's or ONNX file's content depends on timings or file bytes)."""
    import shutil

    monkeypatch.setenv("MODREC_CACHE", str(tmp_path / "cache"))
    base, pruned = tmp_path / "base", tmp_path / "pruned"
    exported = {}
    for attempt in range(2):
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(pruned, ignore_errors=True)
        assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci.yaml"), "--out", str(base), "--threads", "1",
                     "--no-progress"]) == 0
        assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci-prune.yaml"), "--out", str(pruned), "--threads",
                     "1", "--no-progress", "--set", f"prune.checkpoint={base / 'best.pt'}"]) == 0
        for run in (base, pruned):
            assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(tmp_path / f"{run.name}.onnx"),
                         "--force"]) == 0  # the second attempt replaces the first's file
            exported.setdefault(run.name, []).append((tmp_path / f"{run.name}.onnx").read_bytes())
    for name, (first, second) in exported.items():
        assert first == second, f"{name}.onnx differs between two runs of the same commands"
