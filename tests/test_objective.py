"""The training loop's one interface: which objective trains which run, and what each answers."""

import pytest
import torch
import torch.nn.functional as F

from gnuradio.modrec.training.config import config_from_dict
from gnuradio.modrec.training.distill.session import DistillSession
from gnuradio.modrec.training.exits import ExitTraining
from gnuradio.modrec.training.models import create_model
from gnuradio.modrec.training.objective import Objective
from gnuradio.modrec.training.train import make_objective

META = {"classes": ["TONE", "BPSK"]}


def _cfg(model, **extra):
    return config_from_dict({"experiment": "t", "model": model, "train": {"label_smoothing": 0.1}, **extra},
                            source="test.yaml")


def _data(n=8, length=128):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 2, length, generator=gen), torch.randint(0, 2, (n,), generator=gen)


def test_plain_objective_is_label_smoothed_cross_entropy():
    cfg = _cfg({"name": "cnn3", "cfg": {}})
    model = create_model("cnn3", n_classes=2, frame_len=128)
    objective = make_objective(cfg, model, *_data(), META, "cpu")
    assert type(objective) is Objective
    assert objective.trainable is model and objective.step_module is model and objective.augment == cfg.augment
    x, y = _data()
    assert objective.start_epoch(0, x) is x and model.training
    model.eval()  # no dropout, fixed BN statistics: two forward passes agree
    loss, correct = objective.batch_loss(model, x, y, torch.arange(len(y)))
    logits = model(x)
    assert torch.equal(loss, F.cross_entropy(logits, y, label_smoothing=0.1))
    assert int(correct) == int((logits.argmax(1) == y).sum())
    val = objective.validate(x, y)
    assert list(val) == ["val_loss", "val_acc"] and val["val_loss"] == pytest.approx(F.cross_entropy(logits, y).item())
    assert val["val_acc"] == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert objective.epoch_row(x, y) == {} and objective.checkpoint_entries() == {} and objective.training_info() == {}
    with pytest.raises(ValueError, match=r"last\.pt: run used distillation 'kd', config asks for 'none'"):
        objective.resume_from({"distill": {"method": "kd"}}, "last.pt")


def test_early_exit_objective_scores_every_exit():
    cfg = _cfg({"name": "cnn3_ee", "cfg": {"exits": [1]}})
    model = create_model("cnn3_ee", exits=[1], n_classes=2, frame_len=128)
    objective = make_objective(cfg, model, *_data(), META, "cpu")
    assert isinstance(objective, ExitTraining)
    x, y = _data()
    assert objective.start_epoch(0, x) is x and model.training
    model.eval()  # no dropout, fixed BN statistics: two forward passes agree
    loss, correct = objective.batch_loss(objective.step_module, x, y, torch.arange(len(y)))
    outs = model.forward_exits(x)
    assert int(correct) == int((outs[-1].argmax(1) == y).sum())  # the final exit's answers
    assert torch.allclose(loss, objective.exit_loss(outs, y)[0])
    row = objective.epoch_row(x, y)
    assert list(row) == ["val_acc_exit0", "val_acc_exit1", "val_score"]
    assert row["val_score"] == pytest.approx((row["val_acc_exit0"] + row["val_acc_exit1"]) / 2)


def test_distillation_picks_the_session_and_refuses_early_exit_students(tmp_path):
    teacher = {"model": "cnn3", "cfg": {}}
    cfg = _cfg({"name": "cnn3", "cfg": {}}, distill={"method": "bdkd", "teacher": teacher, "cache_teacher": False})
    model = create_model("cnn3", n_classes=2, frame_len=128)
    objective = make_objective(cfg, model, *_data(), META, "cpu", log=lambda *a: None)
    assert isinstance(objective, DistillSession)
    # an online teacher and the distiller train beside the student: all three are stepped
    assert set(objective.trainable) == {"student", "distiller", "teacher"}
    assert objective.training_info()["distill"]["method"] == "bdkd"
    assert objective.checkpoint_entries()["distill"]["method"] == "bdkd"
    with pytest.raises(ValueError, match="run used distillation 'none', config asks for 'bdkd'"):
        objective.resume_from({}, "last.pt")
    ee = _cfg({"name": "cnn3_ee", "cfg": {"exits": [1]}}, distill={"method": "bdkd", "teacher": teacher, "cache_teacher": False})
    with pytest.raises(ValueError, match="early-exit model cannot be distilled"):
        make_objective(ee, create_model("cnn3_ee", exits=[1], n_classes=2, frame_len=128), *_data(), META, "cpu")
