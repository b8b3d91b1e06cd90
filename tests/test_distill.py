"""Knowledge distillation: each loss against hand-computed values, gradients, the registry and
config errors, the teacher cache, and small end-to-end runs through train() (kd and bdkd),
with resume and ONNX export.

Reference values are computed in numpy here (and written out), never by the torch code under test.
"""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from torch import nn

from gnuradio.modrec.training.config import ConfigError, config_from_dict, load_config
from gnuradio.modrec.training.distill import create_distiller, default_config, list_distillers
from gnuradio.modrec.training.distill.teacher_cache import cache_key, teacher_outputs, weights_sha256
from gnuradio.modrec.training.export import export_checkpoint
from gnuradio.modrec.training.checkpoint import load_checkpoint, model_from_checkpoint
from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.models import create_model
from gnuradio.modrec.training.online_teacher import online_teacher_checkpoint
from gnuradio.modrec.training.train import train
from test_train_eval_export import write_dataset

# 2 samples, 3 classes
S = [[1.0, 2.0, 0.0], [0.5, -1.0, 1.5]]
T = [[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]
Y = [1, 2]


def _np_softmax(z, temp=1.0):
    e = np.exp(np.asarray(z, float) / temp)
    return e / e.sum(axis=1, keepdims=True)


def _np_kl(p, q):
    return (p * np.log(p / q)).sum(axis=1)


NP_CE = -np.log(_np_softmax(S)[[0, 1], Y]).mean()


def _t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _y():
    return torch.tensor(Y)


def test_ce_reference_by_hand():
    # sample 0: -log(e^2 / (e + e^2 + 1)); sample 1: -log(e^1.5 / (e^0.5 + e^-1 + e^1.5))
    by_hand = 0.5 * (-2 + math.log(math.e + math.e**2 + 1) - 1.5 + math.log(math.e**0.5 + math.e**-1 + math.e**1.5))
    assert NP_CE == pytest.approx(by_hand, abs=1e-12) and NP_CE == pytest.approx(0.389572498148, abs=1e-10)


@pytest.mark.parametrize("temp, alpha, expected", [(4.0, 0.9, 0.364782276636), (2.0, 0.5, 0.370778002527)])
def test_kd_loss_hand_computed(temp, alpha, expected):
    ref = alpha * temp**2 * _np_kl(_np_softmax(T, temp), _np_softmax(S, temp)).mean() + (1 - alpha) * NP_CE
    assert ref == pytest.approx(expected, abs=1e-10)
    kd = create_distiller("kd", temperature=temp, alpha=alpha)
    loss, parts = kd.loss(_t(S), _y(), _t(T))
    assert loss.item() == pytest.approx(expected, abs=1e-9)
    assert parts["ce"].item() == pytest.approx(NP_CE, abs=1e-9)


def test_kd_defaults_are_documented_values():
    assert default_config("kd") == {"temperature": 4.0, "alpha": 0.9}
    assert default_config("nkd") == {"temperature": 1.0, "gamma": 1.5, "ce_weight": 1.0}
    assert list_distillers() == ["bdkd", "kd", "nkd", "skd"]


def test_skd_loss_hand_computed_and_projection_gets_gradients():
    fs = [[1.0, 0.0], [1.0, 2.0]]  # student features, D_s = 2
    ft = [[1.0, 1.0, 0.0], [0.0, 0.0, 2.0]]  # teacher features, D_t = 3
    skd = create_distiller("skd", beta=0.5, student_dim=2, teacher_dim=3).double()
    with torch.no_grad():
        skd.proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        skd.proj.bias.zero_()
    # projected: (1,0,1) and (1,2,3). |a/|a| - b/|b||^2 = 2 (1 - cos):
    # sample 0: cos((1,0,1),(1,1,0)) = 1/2 -> 1; sample 1: cos((1,2,3),(0,0,1)) = 3/sqrt(14)
    feat = 0.5 * (1.0 + 2 * (1 - 3 / math.sqrt(14)))
    assert feat == pytest.approx(0.698216274263, abs=1e-10)
    soft = 16 * _np_kl(_np_softmax(T, 4), _np_softmax(S, 4)).mean()
    expected = 0.9 * soft + 0.1 * NP_CE + 0.5 * feat
    assert expected == pytest.approx(0.713890413768, abs=1e-10)
    s, f = _t(S, True), _t(fs, True)
    loss, parts = skd.loss(s, _y(), _t(T), f, _t(ft))
    assert loss.item() == pytest.approx(expected, abs=1e-9) and parts["feat"].item() == pytest.approx(feat, abs=1e-9)
    loss.backward()
    assert s.grad.abs().sum() > 0 and f.grad.abs().sum() > 0
    assert skd.proj.weight.grad is not None and skd.proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="student_dim and teacher_dim"):
        create_distiller("skd")


@pytest.mark.parametrize("lam, gamma, expected", [(1.0, 1.5, 1.646304091623), (2.0, 1.0, 3.349233077940)])
def test_nkd_loss_hand_computed(lam, gamma, expected):
    ps, pt = _np_softmax(S), _np_softmax(T)
    target = -(pt[[0, 1], Y] * np.log(ps[[0, 1], Y])).mean()
    non = 0.0
    for i, y in enumerate(Y):
        keep = [c for c in range(3) if c != y]  # drop the target, renormalise at temperature lambda
        qs = _np_softmax([np.asarray(S[i])[keep]], lam)[0]
        qt = _np_softmax([np.asarray(T[i])[keep]], lam)[0]
        non += -(qt * np.log(qs)).sum() / 2
    # the target term by hand: sample 0: T_1 = e/(e^2+e+1), S_1 = e^2/(e^2+e+1); sample 1: T_2 = e^3/(e^3+2)
    t0, s0 = math.e / (math.e**2 + math.e + 1), math.e**2 / (math.e**2 + math.e + 1)
    t1, s1 = math.e**3 / (math.e**3 + 2), math.e**1.5 / (math.e**0.5 + math.e**-1 + math.e**1.5)
    assert target == pytest.approx(-(t0 * math.log(s0) + t1 * math.log(s1)) / 2, abs=1e-12)
    assert NP_CE + target + gamma * lam**2 * non == pytest.approx(expected, abs=1e-10)
    nkd = create_distiller("nkd", temperature=lam, gamma=gamma)
    s = _t(S, True)
    loss, parts = nkd.loss(s, _y(), _t(T))
    assert loss.item() == pytest.approx(expected, abs=1e-9)
    assert parts["nkd_target"].item() == pytest.approx(target, abs=1e-9)
    assert parts["nkd_non_target"].item() == pytest.approx(non, abs=1e-9)
    loss.backward()
    assert s.grad.abs().sum() > 0


def test_bdkd_loss_hand_computed_and_gradients_reach_both_networks():
    temp, alpha, k = 4.0, 0.5, 2.0
    ps, pt = _np_softmax(S, temp), _np_softmax(T, temp)
    ent = lambda p: -(p * np.log(p)).sum(axis=1)  # noqa: E731
    w = 1 / (1 + np.exp(-k * (ent(pt) - ent(ps))))
    # sample 0: teacher and student logits are permutations of each other -> equal entropies -> w = 1/2
    assert w[0] == pytest.approx(0.5, abs=1e-12) and w[1] == pytest.approx(0.480888202, abs=1e-8)
    soft = temp**2 * (w * _np_kl(pt, ps) + (1 - w) * _np_kl(ps, pt)).mean()
    t_ce = -np.log(_np_softmax(T)[[0, 1], Y]).mean()
    expected = alpha * soft + (1 - alpha) * NP_CE + t_ce
    assert expected == pytest.approx(1.129637817024, abs=1e-10)

    bd = create_distiller("bdkd")
    s, t = _t(S, True), _t(T, True)
    loss, parts = bd.loss(s, _y(), t)
    assert loss.item() == pytest.approx(expected, abs=1e-9)
    assert parts["w_forward"].item() == pytest.approx(w.mean(), abs=1e-9)
    loss.backward()
    assert s.grad.abs().sum() > 0 and t.grad.abs().sum() > 0
    # with teacher_kd = 0 the teacher learns from its labels only: its gradient is CE's alone
    t2 = _t(T, True)
    torch.nn.functional.cross_entropy(t2, _y()).backward()
    assert torch.allclose(t.grad, t2.grad, atol=1e-12)
    # with teacher_kd > 0 the student pulls on the teacher too
    t3 = _t(T, True)
    create_distiller("bdkd", teacher_kd=1.0).loss(_t(S), _y(), t3)[0].backward()
    assert not torch.allclose(t3.grad, t2.grad)


def test_registry_errors_are_clear():
    with pytest.raises(KeyError, match=r"unknown distillation method 'kdd' \(did you mean 'kd'\?\)"):
        create_distiller("kdd")
    with pytest.raises(TypeError, match=r"distiller 'kd': unknown config key\(s\) temp; expected a subset of temperature, alpha"):
        create_distiller("kd", temp=2.0)
    with pytest.raises(TypeError, match=r"'alpha' expected float"):
        create_distiller("kd", alpha="high")
    with pytest.raises(ValueError, match=r"'alpha' expected in \[0, 1\], got 1.5"):
        create_distiller("kd", alpha=1.5)


def _write(tmp_path, distill, **extra):
    p = tmp_path / "kd.yaml"
    p.write_text(yaml.safe_dump({"distill": distill, **extra}))
    return p


@pytest.mark.parametrize("distill, match", [
    ({"method": "kdd"}, r"kd.yaml: field 'distill.method': unknown distillation method 'kdd' \(did you mean 'kd'\?\)"),
    ({"method": "kd", "teacher": {"checkpoint": "t.pt"}, "cfg": {"temp": 2}},
     r"kd.yaml: field 'distill.cfg' .*unknown config key\(s\) temp"),
    ({"method": "kd", "teacher": {"checkpoint": "t.pt"}, "cfg": {"alpha": 2.0}},
     r"kd.yaml: field 'distill.cfg.alpha' expected in \[0, 1\], got 2.0"),
    ({"method": "kd", "teacher": {"checkpoint": "t.pt"}, "cfg": {"alpha": "x"}},
     r"field 'distill.cfg.alpha' expected float"),
    ({"method": "kd"}, r"field 'distill.teacher.checkpoint' expected a string"),
    ({"method": "kd", "teacher": {"model": "cnn3"}}, r"field 'distill.teacher' has unknown key\(s\) model for method 'kd'"),
    ({"method": "bdkd", "teacher": {"checkpoint": "t.pt"}}, r"field 'distill.teacher' has unknown key\(s\) checkpoint"),
    ({"method": "bdkd", "teacher": {"model": "cnn4"}}, r"field 'distill.teacher.model'.*did you mean 'cnn3'"),
    ({"method": "bdkd", "teacher": {"model": "cnn3", "cfg": {"width": 2}}}, r"'distill.teacher.cfg' has unknown key\(s\) width"),
    ({"method": "bdkd", "teacher": {"model": "cnn3"}, "cache_teacher": True}, r"field 'distill.cache_teacher' expected false"),
    ({"method": "kd", "teacher": {"checkpoint": "t.pt"}, "cache_teacher": "yes"}, r"field 'distill.cache_teacher' expected true/false"),
    ({"methd": "kd"}, r"unknown field 'distill.methd' \(did you mean 'distill.method'\?\)"),
    ({"method": "kd", "teacher": {"checkpoints": ["a.pt"]}}, r"'distill.teacher.checkpoints' expected a list of at least 2"),
    ({"method": "kd", "teacher": {"checkpoints": "a.pt"}}, r"'distill.teacher.checkpoints' expected a list of at least 2"),
    ({"method": "kd", "teacher": {"checkpoint": "a.pt", "checkpoints": ["a.pt", "b.pt"]}}, r"both checkpoint and checkpoints"),
    ({"method": "bdkd", "teacher": {"checkpoints": ["a.pt", "b.pt"]}}, r"unknown key\(s\) checkpoints for method 'bdkd'"),
])
def test_distill_config_errors_name_file_and_field(tmp_path, distill, match):
    with pytest.raises(ConfigError, match=match):
        load_config(_write(tmp_path, distill))


def test_plain_config_has_distill_none(tmp_path):
    cfg = load_config(_write(tmp_path, {}))
    assert cfg.distill.method == "none" and cfg.to_dict()["distill"]["method"] == "none"


def test_shipped_kd_config_loads(monkeypatch, tmp_path):
    from pathlib import Path

    monkeypatch.setenv("MODREC_CACHE", str(tmp_path))
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny-ci-kd.yaml")
    assert cfg.distill.method == "kd" and cfg.distill.teacher["checkpoint"].endswith("best.pt")


# ----------------------------------------------------------------------------- teacher cache


class TinyNet(nn.Module):
    """The registry interface in miniature: forward -> logits, forward_features -> (features, logits)."""

    def __init__(self, n_classes=3, width=4):
        super().__init__()
        self.feature_dim = width
        self.body = nn.Sequential(nn.Conv1d(2, width, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(width, n_classes)
        self.calls = 0

    def forward_features(self, x):
        self.calls += 1
        f = self.body(x).mean(dim=-1)
        return f, self.head(f)

    def forward(self, x):
        return self.forward_features(x)[1]


def test_teacher_cache_hit_miss_and_key(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(10, 2, 16)
    y = torch.randint(0, 3, (10,))
    meta = {"classes": ["A", "B", "C"], "seed": 1}
    teacher = TinyNet()
    teacher_id = weights_sha256({"model_name": "tiny", "state_dict": teacher.state_dict()})
    kw = dict(teacher_sha256=teacher_id, meta=meta, y=y, cache_dir=tmp_path / "cache", batch_size=4, log=lambda *a: None)

    logits, feats, hit = teacher_outputs(teacher, x, features=True, **kw)
    assert not hit and teacher.calls == 3 and logits.shape == (10, 3) and feats.shape == (10, 4)
    with torch.no_grad():
        ref_f, ref_l = teacher.forward_features(x)
    teacher.calls = 0
    logits2, feats2, hit2 = teacher_outputs(teacher, x, features=True, **kw)
    assert hit2 and teacher.calls == 0  # no teacher forward on a hit
    assert torch.allclose(logits2, ref_l, atol=1e-6) and torch.equal(logits2, logits) and torch.equal(feats2, feats)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1

    key = cache_key(teacher_id, meta, "train", x, y)
    retrained = weights_sha256({"model_name": "tiny", "state_dict": TinyNet().state_dict()})
    assert retrained != teacher_id and cache_key(retrained, meta, "train", x, y) != key
    assert cache_key(teacher_id, {**meta, "seed": 2}, "train", x, y) != key
    assert cache_key(teacher_id, meta, "val", x, y) != key
    _, _, hit3 = teacher_outputs(teacher, x, features=True, **{**kw, "teacher_sha256": retrained})
    assert not hit3 and teacher.calls == 3


def test_teacher_identity_is_its_weights_not_its_file():
    net = TinyNet()
    full = {"model_name": "tiny", "model_cfg": {}, "state_dict": net.state_dict(), "optimizer": {"lr": 1}}
    slim = {k: v for k, v in full.items() if k != "optimizer"}  # what scripts/pack_runs.py keeps
    assert weights_sha256(full) == weights_sha256(slim)
    nudged = {k: v.clone() for k, v in net.state_dict().items()}
    next(iter(nudged.values())).view(-1)[0] += 1e-6
    assert weights_sha256({**slim, "state_dict": nudged}) != weights_sha256(slim)
    assert weights_sha256({**slim, "model_cfg": {"width": 2}}) != weights_sha256(slim)


def test_teacher_cache_default_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MODREC_CACHE", str(tmp_path / "mc"))
    teacher = TinyNet()
    teacher_outputs(teacher, torch.randn(4, 2, 8), teacher_sha256=weights_sha256({}), meta={}, y=torch.zeros(4, dtype=torch.long),
                    log=lambda *a: None)
    assert len(list((tmp_path / "mc" / "teacher").glob("*.npz"))) == 1


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "tiny", {"train": 40, "val": 10, "test": 10})


def _cfg(dataset, out, epochs=2, distill=None, model_cfg=None):
    return config_from_dict({
        "experiment": "kd-test", "seed": 5, "output_dir": str(out),
        "data": {"name": "tiny", "root": str(dataset), "frames_per_class_snr": {"train": 40, "val": 10, "test": 10}},
        "model": {"name": "cnn3", "cfg": model_cfg or {"channels": [4, 8, 8], "hidden": 8}},
        "optim": {"lr": 0.01},
        "train": {"epochs": epochs, "batch_size": 32, "device": "cpu", "threads": 1},
        "distill": distill or {},
    }, source="kd-test.yaml")


@pytest.fixture(scope="module")
def teacher_ckpt(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    train(_cfg(dataset, out, epochs=1, model_cfg={"channels": [8, 16, 16], "hidden": 16}), progress=False,
          log=lambda *a: None)
    return out / "best.pt"


def _assert_resume_exact(cfg_split, full_dir, split_dir):
    """Interrupt cfg_split after one epoch, resume it: it must match the uninterrupted run in full_dir."""
    train(cfg_split, progress=False, stop_after_epochs=1, log=lambda *a: None)
    (split_dir / "epoch1.pt").write_bytes((split_dir / "last.pt").read_bytes())
    logs = []
    train(cfg_split, resume=True, progress=False, log=logs.append)
    assert any("resuming" in m for m in logs)
    a, b = load_checkpoint(full_dir / "last.pt"), load_checkpoint(split_dir / "last.pt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    return a, b


def test_kd_end_to_end_resume_export(dataset, teacher_ckpt, tmp_path):
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(teacher_ckpt.read_bytes())
    distill = {"method": "kd", "teacher": {"checkpoint": str(teacher)}, "cfg": {"temperature": 2.0}}
    logs = []
    full = train(_cfg(dataset, tmp_path / "full", distill=distill), progress=False, log=logs.append)
    assert any("distill: kd" in m for m in logs) and not any("augmentation is OFF" in m for m in logs)
    _, ckpt = _assert_resume_exact(_cfg(dataset, tmp_path / "split", distill=distill), full, tmp_path / "split")
    assert ckpt["training"]["distillation"] == "kd" and ckpt["distill"]["cfg"] == {"temperature": 2.0, "alpha": 0.9}
    row = ckpt["history"][-1]
    assert np.isfinite(row["distill_kd"]) and np.isfinite(row["distill_ce"])

    onnx_path = tmp_path / "kd.onnx"
    export_checkpoint(full / "best.pt", onnx_path, dynamo=False)
    md = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert md["distillation"] == "kd" and json.loads(md["training"])["distill"]["teacher"]["model"] == "cnn3"

    # the teacher file slimmed for transport (scripts/pack_runs.py) is the same teacher: resuming is fine
    ck = load_checkpoint(teacher)
    torch.save({k: v for k, v in ck.items() if k not in ("optimizer", "scheduler", "rng")}, teacher)
    train(_cfg(dataset, tmp_path / "split", distill=distill), resume=True, progress=False, log=lambda *a: None)
    # resuming against a changed teacher is refused rather than silently mixing teachers
    ck["state_dict"] = {k: v + 1 if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    torch.save(ck, teacher)
    with pytest.raises(ValueError, match="the weights in .* differ"):
        train(_cfg(dataset, tmp_path / "split", distill=distill), resume=True, progress=False, log=lambda *a: None)
    with pytest.raises(ValueError, match="run used distillation 'kd', config asks for 'none'"):
        train(_cfg(dataset, tmp_path / "split"), resume=True, progress=False, log=lambda *a: None)


def test_kd_with_teacher_cache_turns_augmentation_off(dataset, teacher_ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("MODREC_CACHE", str(tmp_path / "cache"))
    distill = {"method": "kd", "teacher": {"checkpoint": str(teacher_ckpt)}, "cache_teacher": True}
    logs = []
    run = train(_cfg(dataset, tmp_path / "a", epochs=1, distill=distill), progress=False, log=logs.append)
    assert any("augmentation is OFF" in m for m in logs) and any("computed" in m for m in logs)
    info = load_checkpoint(run / "last.pt")["training"]["distill"]
    assert info["cache_teacher"] and info["augmentation_disabled"]
    assert len(list((tmp_path / "cache" / "teacher").glob("*.npz"))) == 1
    logs = []
    train(_cfg(dataset, tmp_path / "b", epochs=1, distill=distill), progress=False, log=logs.append)
    assert any("cache hit" in m for m in logs)


def test_kd_with_cached_augmented_views_keeps_augmentation(dataset, teacher_ckpt, tmp_path, monkeypatch):
    from gnuradio.modrec.training.data.dataset import load_split
    from gnuradio.modrec.training.distill.session import augmented_view
    from gnuradio.modrec.training.augment import augment

    monkeypatch.setenv("MODREC_CACHE", str(tmp_path / "cache"))
    distill = {"method": "kd", "teacher": {"checkpoint": str(teacher_ckpt)}, "cache_teacher": True, "cache_views": 2}
    cfg = _cfg(dataset, tmp_path / "a", epochs=3, distill=distill)
    logs = []
    run = train(cfg, progress=False, log=logs.append)
    assert not any("augmentation is OFF" in m for m in logs) and any("2 augmented copies" in m for m in logs)
    info = load_checkpoint(run / "last.pt")["training"]["distill"]
    assert info["cache_teacher"] and info["cache_views"] == 2 and not info["augmentation_disabled"]
    cached = sorted((tmp_path / "cache" / "teacher").glob("*.npz"))
    assert len(cached) == 2  # one per view, computed once for three epochs

    # a view is the run's augmentation, seeded: the same frames every time, different per view
    x = torch.from_numpy(load_split(dataset, "train").x)
    v0, v1 = (augmented_view(x, cfg.augment, seed=cfg.seed, view=v) for v in (0, 1))
    assert torch.equal(v0, augmented_view(x, cfg.augment, seed=cfg.seed, view=0))
    assert not torch.allclose(v0, v1) and not torch.allclose(v0, x)
    assert torch.allclose(v0.pow(2).sum((1, 2)), x.pow(2).sum((1, 2)), rtol=1e-4)  # rotations and shifts keep power
    assert v0.shape == augment(x, cfg.augment, torch.Generator().manual_seed(0)).shape
    # and the cache holds the teacher's answer for those augmented frames
    teacher = model_from_checkpoint(load_checkpoint(teacher_ckpt)).eval()
    with torch.no_grad():
        want = teacher(v1)
    stored = [torch.from_numpy(np.load(p)["logits"]) for p in cached]
    assert any(torch.allclose(s, want, atol=1e-5) for s in stored)

    logs = []
    train(_cfg(dataset, tmp_path / "b", epochs=1, distill=distill), progress=False, log=logs.append)
    assert sum("cache hit" in m for m in logs) == 2
    with pytest.raises(ConfigError, match="distill.cache_views"):
        _cfg(dataset, tmp_path / "c", distill={**distill, "cache_teacher": False})
    with pytest.raises(ConfigError, match="distill.cache_views"):
        _cfg(dataset, tmp_path / "c", distill={**distill, "cache_views": -1})


def test_bdkd_end_to_end_resume_export(dataset, tmp_path):
    distill = {"method": "bdkd", "teacher": {"model": "cnn3", "cfg": {"channels": [8, 16, 16], "hidden": 16}}}
    full = train(_cfg(dataset, tmp_path / "full", distill=distill), progress=False, log=lambda *a: None)
    a, b = _assert_resume_exact(_cfg(dataset, tmp_path / "split", distill=distill), full, tmp_path / "split")
    for k, v in a["distill"]["teacher_state_dict"].items():  # the jointly trained teacher resumes exactly too
        assert torch.equal(v, b["distill"]["teacher_state_dict"][k]), k
    mid = load_checkpoint(tmp_path / "split" / "epoch1.pt")["distill"]["teacher_state_dict"]
    assert any(not torch.equal(v, mid[k]) for k, v in a["distill"]["teacher_state_dict"].items()
               if v.is_floating_point())  # the teacher is stepped: epoch 2 changed it
    row = a["history"][-1]
    assert 0 <= row["teacher_val_acc"] <= 1 and 0 < row["distill_w_forward"] < 1

    onnx_path = tmp_path / "bdkd.onnx"
    export_checkpoint(full / "best.pt", onnx_path, dynamo=False)
    md = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert md["distillation"] == "bdkd" and md["architecture"] == "cnn3"

    # the teacher trained beside the student, out of the run as a checkpoint of its own (modrec online-teacher)
    teacher_pt = tmp_path / "full-teacher" / "best.pt"
    assert main(["online-teacher", "--checkpoint", str(full / "best.pt"), "--out", str(teacher_pt)]) in (0, None)
    best = load_checkpoint(full / "best.pt")
    teacher = load_checkpoint(teacher_pt)
    assert teacher["model_name"] == "cnn3" and teacher["model_cfg"]["channels"] == [8, 16, 16]
    for k, v in best["distill"]["teacher_state_dict"].items():
        assert torch.equal(v, teacher["state_dict"][k]), k
    beside = teacher["training"]["online_teacher_of"]
    assert beside["checkpoint"] == str(full / "best.pt") and beside["epoch"] == best["epoch"]
    assert teacher["val_acc"] == beside["teacher_val_acc"] == best["history"][best["epoch"] - 1]["teacher_val_acc"]
    assert teacher["training"]["distillation"] == "none"  # teacher_kd = 0: it learnt from the labels alone
    assert teacher["config"]["model"]["name"] == "cnn3" and teacher["config"]["experiment"] == "kd-test-teacher"
    with torch.no_grad():  # the same network the run's teacher is: the same outputs
        frames = torch.randn(4, 2, 128)
        jointly = create_model("cnn3", **best["distill"]["teacher"]["model_cfg"]).eval()
        jointly.load_state_dict(best["distill"]["teacher_state_dict"])
        assert torch.equal(model_from_checkpoint(teacher)(frames), jointly(frames))
    teacher_onnx = tmp_path / "bdkd-teacher.onnx"
    export_checkpoint(teacher_pt, teacher_onnx, dynamo=False)
    md = {p.key: p.value for p in onnx.load(str(teacher_onnx)).metadata_props}
    assert md["distillation"] == "none" and md["architecture"] == "cnn3"
    assert json.loads(md["training"])["online_teacher_of"]["epoch"] == best["epoch"]
    card = tmp_path / "bdkd-teacher.md"
    assert main(["evaluate", "--checkpoint", str(teacher_pt), "--onnx", str(teacher_onnx), "--out", str(tmp_path / "eval"),
                 "--device", "cpu", "--no-latency", "--card", str(card)]) in (0, None)
    text = card.read_text()
    assert f"trained jointly with the student of `{full / 'best.pt'}` (cnn3, bdkd" in text
    assert f"modrec online-teacher --checkpoint runs/full/best.pt --out runs/kd-test-teacher/best.pt --force" in text
    # an offline run, or a plain one, has no teacher inside it: refused, naming the file and the method
    with pytest.raises(ValueError, match=r"best.pt: not an online-distillation run \(distillation 'none'\)"):
        online_teacher_checkpoint(teacher_pt, tmp_path / "x.pt")
    assert main(["online-teacher", "--checkpoint", str(full / "best.pt"), "--out", str(teacher_pt)]) == 2  # no --force


@pytest.mark.parametrize("method, cache", [("skd", True), ("skd", False), ("nkd", False)])
def test_offline_methods_train_one_epoch(dataset, teacher_ckpt, tmp_path, monkeypatch, method, cache):
    monkeypatch.setenv("MODREC_CACHE", str(tmp_path / "cache"))
    distill = {"method": method, "teacher": {"checkpoint": str(teacher_ckpt)}, "cache_teacher": cache}
    run = train(_cfg(dataset, tmp_path / "run", epochs=1, distill=distill), progress=False, log=lambda *a: None)
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["training"]["distillation"] == method
    row = ckpt["history"][-1]
    assert all(np.isfinite(v) for k, v in row.items() if k.startswith("distill_"))
    if method == "skd":  # student feature_dim 16 (cnn3 [4, 8, 8]) projected onto the teacher's 32
        assert ckpt["distill"]["distiller"]["proj.weight"].shape == (32, 16) and np.isfinite(row["distill_feat"])
        if cache:
            with np.load(next((tmp_path / "cache" / "teacher").glob("*.npz"))) as z:
                assert z["features"].shape == (240, 32) and z["logits"].shape == (240, 2)


def test_a_teacher_without_features_is_refused_for_feature_distillation(tmp_path):
    # skd matches pooled features: an early-exit network has none (models/interface.py)
    from gnuradio.modrec.training.distill.session import _check_features

    _check_features(create_model("clst"), "teacher", "skd")  # every registry architecture has them
    with pytest.raises(ValueError, match=r"the teacher \(cnn3_ee\) has no forward_features/feature_dim"):
        _check_features(create_model("cnn3_ee"), "teacher", "skd")


@pytest.fixture(scope="module")
def second_teacher_ckpt(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher2")
    cfg = _cfg(dataset, out, epochs=1, model_cfg={"channels": [8, 8, 24], "hidden": 16})
    train(dataclasses.replace(cfg, seed=9), progress=False, log=lambda *a: None)
    return out / "best.pt"


def test_an_ensemble_teacher_averages_logits_and_joins_features(dataset, teacher_ckpt, second_teacher_ckpt, tmp_path,
                                                                  monkeypatch):
    from gnuradio.modrec.training.checkpoint import model_from_checkpoint
    from gnuradio.modrec.training.models.ensemble import Ensemble

    members = [model_from_checkpoint(teacher_ckpt), model_from_checkpoint(second_teacher_ckpt)]
    ensemble = Ensemble(members).eval()
    x = torch.randn(5, 2, 128)
    with torch.no_grad():
        feats, logits = ensemble.forward_features(x)
        assert ensemble.feature_dim == 32 + 48 and feats.shape == (5, 80)
        torch.testing.assert_close(logits, (members[0](x) + members[1](x)) / 2)
        torch.testing.assert_close(ensemble(x), logits)
        torch.testing.assert_close(feats[:, :32], members[0].forward_features(x)[0])
    with pytest.raises(ValueError, match="at least 2 members"):
        Ensemble(members[:1])

    monkeypatch.setenv("MODREC_CACHE", str(tmp_path / "cache"))
    distill = {"method": "skd", "teacher": {"checkpoints": [str(teacher_ckpt), str(second_teacher_ckpt)]},
               "cache_teacher": True}
    run = train(_cfg(dataset, tmp_path / "run", epochs=2, distill=distill), progress=False, log=lambda *a: None,
                stop_after_epochs=1)
    ckpt = load_checkpoint(run / "last.pt")
    teacher = ckpt["distill"]["teacher"]
    assert [m["checkpoint"] for m in teacher["members"]] == [str(teacher_ckpt), str(second_teacher_ckpt)]
    assert teacher["model"] == "ensemble(cnn3, cnn3)"
    assert ckpt["distill"]["distiller"]["proj.weight"].shape == (80, 16)  # student 16 -> the members' 32 + 48
    # the same members in another order are another teacher (its cache and its resume check say so)
    swapped = {**distill, "teacher": {"checkpoints": [str(second_teacher_ckpt), str(teacher_ckpt)]}}
    with pytest.raises(ValueError, match="resuming would mix teachers"):
        train(_cfg(dataset, tmp_path / "run", epochs=2, distill=swapped), resume=True, progress=False,
              log=lambda *a: None)


def test_modrec_ensemble_is_a_model_that_evaluates_exports_and_teaches(dataset, teacher_ckpt, second_teacher_ckpt,
                                                                       tmp_path, monkeypatch, capsys):
    from gnuradio.modrec.runtime import load_model
    from gnuradio.modrec.training.checkpoint import save_checkpoint

    out = tmp_path / "ens" / "best.pt"
    assert main(["ensemble", "--checkpoints", str(teacher_ckpt), str(second_teacher_ckpt), "--out", str(out)]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt["model_name"] == "ensemble" and ckpt["classes"] == load_checkpoint(teacher_ckpt)["classes"]
    assert [m["checkpoint"] for m in ckpt["training"]["ensemble_of"]] == [str(teacher_ckpt), str(second_teacher_ckpt)]
    members = [model_from_checkpoint(teacher_ckpt), model_from_checkpoint(second_teacher_ckpt)]
    model, x = model_from_checkpoint(out), torch.randn(6, 2, int(ckpt["model_cfg"]["frame_len"]))
    with torch.no_grad():
        torch.testing.assert_close(model(x), (members[0](x) + members[1](x)) / 2)

    # exported and run by the runtime like any model; evaluated, with a card that names the members
    onnx_path, card = tmp_path / "ens.onnx", tmp_path / "ens.md"
    assert main(["export", "--checkpoint", str(out), "--out", str(onnx_path)]) == 0
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=1).numpy()
    np.testing.assert_allclose(load_model(onnx_path).predict(x.numpy()), expected, atol=1e-5)
    assert main(["evaluate", "--checkpoint", str(out), "--onnx", str(onnx_path), "--out", str(tmp_path / "eval"),
                 "--card", str(card), "--no-latency"]) == 0
    text = card.read_text()
    assert "an ensemble of 2 trained models, their logits averaged" in text and "optimiser" not in text
    # both members are experiment kd-test: the recipe names them by the paths they were read from
    assert f"modrec ensemble --checkpoints {teacher_ckpt} {second_teacher_ckpt} --out runs/ens/best.pt" in text

    # a teacher like any checkpoint
    monkeypatch.setenv("MODREC_CACHE", str(tmp_path / "cache"))
    run = train(_cfg(dataset, tmp_path / "student", epochs=1, distill={"method": "kd", "teacher": {"checkpoint": str(out)}}),
                progress=False, log=lambda *a: None)
    assert load_checkpoint(run / "best.pt")["distill"]["teacher"]["model"] == "ensemble"

    # refused, naming the problem
    with pytest.raises(ValueError, match=r"members\[1\] is a 'signal_detector'; members are plain classifiers"):
        create_model("ensemble", members=[{"name": "cnn3"}, {"name": "signal_detector"}])
    other = load_checkpoint(second_teacher_ckpt)
    other["classes"] = list(reversed(other["classes"]))
    save_checkpoint(tmp_path / "other.pt", **{k: v for k, v in other.items() if k != "format"})
    elsewhere = load_checkpoint(second_teacher_ckpt)  # the same data stored in another folder: accepted
    elsewhere["training"]["data"]["root"] = "/elsewhere/" + Path(elsewhere["training"]["data"]["root"]).name
    save_checkpoint(tmp_path / "elsewhere.pt", **{k: v for k, v in elsewhere.items() if k != "format"})
    assert main(["ensemble", "--checkpoints", str(teacher_ckpt), str(tmp_path / "elsewhere.pt"), "--out",
                 str(tmp_path / "ok" / "best.pt")]) == 0
    other_data = load_checkpoint(second_teacher_ckpt)
    other_data["training"]["data"]["seed"] = 1 + other_data["training"]["data"]["seed"]
    save_checkpoint(tmp_path / "otherdata.pt", **{k: v for k, v in other_data.items() if k != "format"})
    pruned = load_checkpoint(second_teacher_ckpt)
    pruned["pruning"] = {"criterion": "bn-gamma", "ratio": 0.3}
    save_checkpoint(tmp_path / "pruned.pt", **{k: v for k, v in pruned.items() if k != "format"})
    (tmp_path / "copy.pt").write_bytes(Path(teacher_ckpt).read_bytes())
    (tmp_path / "text.pt").write_text("hello")
    (tmp_path / "dir").mkdir()
    onnx_member = tmp_path / "ens.onnx"
    for given, message, target in (
            ([teacher_ckpt, second_teacher_ckpt], "exists", out),  # without --force
            ([teacher_ckpt], "at least 2 checkpoints, got 1", None),
            ([teacher_ckpt, teacher_ckpt], "given twice", None),
            ([teacher_ckpt, tmp_path / "copy.pt"], "copy.pt: the same weights as", None),
            ([out, teacher_ckpt], "holds an ensemble; give its members' checkpoints", None),
            ([teacher_ckpt, tmp_path / "other.pt"], "other.pt: classes", None),
            ([teacher_ckpt, tmp_path / "otherdata.pt"], "otherdata.pt: trained on other data", None),
            ([teacher_ckpt, tmp_path / "pruned.pt"], "pruned.pt: a pruned cnn3", None),
            ([teacher_ckpt, tmp_path / "missing.pt"], "missing.pt: checkpoint not found", None),
            ([teacher_ckpt, tmp_path / "text.pt"], "text.pt: not a gr-modrec checkpoint", None),
            ([teacher_ckpt, onnx_member], "ens.onnx: an ONNX model, not a training checkpoint", None),
            ([teacher_ckpt, second_teacher_ckpt], "(--out) is a directory", tmp_path / "dir"),
            ([teacher_ckpt, second_teacher_ckpt], "(--out) is one of the members", teacher_ckpt)):
        target = target or tmp_path / "refused.pt"
        force = [] if message == "exists" else ["--force"]
        before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
        capsys.readouterr()
        assert main(["ensemble", "--checkpoints", *map(str, given), "--out", str(target), *force]) != 0
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.splitlines()) == 1, err
        # nothing written, nothing replaced
        assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before, message
