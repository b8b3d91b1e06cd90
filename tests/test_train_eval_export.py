"""Training loop, resume, evaluation reports, export and CLI on a tiny hand-made dataset.

The dataset is written here in the on-disk format (meta.json + <split>/shard-NNNNN.npz) so these
tests do not depend on the data generator.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.config import ConfigError, config_from_dict, load_config
from gnuradio.modrec.training.evaluate import write_evaluation
from gnuradio.modrec.training.metrics import classification_metrics, expected_calibration_error
from gnuradio.modrec.training.checkpoint import load_checkpoint
from gnuradio.modrec.training.train import train

from gnuradio.modrec.training.data.dataset import FORMAT_VERSION

L = 64
SNRS = [-10.0, 0.0, 10.0]


def _frames(rng, n, cls, snr_db):
    """class 0: a complex tone; class 1: BPSK at 8 samples/symbol. Both at random phase/gain."""
    t = np.arange(L)
    if cls == 0:
        s = np.exp(1j * (2 * np.pi * rng.uniform(0.02, 0.1, (n, 1)) * t))
    else:
        s = np.repeat(rng.choice([-1.0, 1.0], (n, L // 8)), 8, axis=1).astype(complex)
    s = s * np.exp(1j * rng.uniform(0, 2 * np.pi, (n, 1)))
    noise = (rng.standard_normal((n, L)) + 1j * rng.standard_normal((n, L))) * np.sqrt(0.5 * 10 ** (-snr_db / 10))
    s = (s + noise) * rng.uniform(0.1, 10, (n, 1))
    return np.stack([s.real, s.imag], axis=1).astype(np.float32)


def write_dataset(root, per_class_snr={"train": 40, "val": 10, "test": 10}, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    meta = {"classes": ["TONE", "BPSK"], "frame_len": L, "samples_per_symbol": 8, "snrs_db": SNRS, "seed": seed,
            "format_version": FORMAT_VERSION, "shards": {split: 2 for split in per_class_snr},
            "counts": {split: n * 2 * len(SNRS) for split, n in per_class_snr.items()},
            "frames_per_class_snr": dict(per_class_snr)}
    (root / "meta.json").write_text(json.dumps(meta))
    for split, n in per_class_snr.items():
        xs, ys, ss = [], [], []
        for cls in (0, 1):
            for snr in SNRS:
                xs.append(_frames(rng, n, cls, snr))
                ys.append(np.full(n, cls, np.int64))
                ss.append(np.full(n, snr, np.float32))
        (root / split).mkdir(exist_ok=True)
        x, y, s = np.concatenate(xs), np.concatenate(ys), np.concatenate(ss)
        half = len(x) // 2  # two shards, to exercise concatenation
        for i, sl in enumerate((slice(0, half), slice(half, None))):
            np.savez(root / split / f"shard-{i:05d}.npz", x=x[sl], y=y[sl], snr_db=s[sl])
    return root


def train_tiny_checkpoint(tmp):
    """A one-epoch cnn3 of width 8 trained on a tiny dataset under ``tmp``: runs/best.pt's path."""
    from gnuradio.modrec.training.cli import main

    data = tmp / "data"
    write_dataset(data, {"train": 8, "val": 4, "test": 4})
    cfg = tmp / "c.yaml"
    cfg.write_text("model: {name: cnn3, cfg: {channels: [8, 8, 8], hidden: 8}}\ntrain: {epochs: 1, batch_size: 16}\n")
    assert main(["train", "--config", str(cfg), "--data-root", str(data), "--out", str(tmp / "run"), "--threads", "1",
                 "--no-progress"]) == 0
    return tmp / "run" / "best.pt"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "tiny")


def _cfg(dataset, out, epochs=2, **train):
    return config_from_dict({
        "experiment": "tiny",
        "seed": 123,
        "output_dir": str(out),
        "data": {"name": "tiny", "root": str(dataset), "frames_per_class_snr": {"train": 40, "val": 10, "test": 10}},
        "model": {"name": "cnn3", "cfg": {"channels": [8, 16, 16], "hidden": 16}},
        "optim": {"lr": 0.01},
        "augment": {"freq_offset": 0.005, "conjugate": True},
        "train": {"epochs": epochs, "batch_size": 32, "device": "cpu", "threads": 1, **train},
    }, source="test.yaml")


def test_train_writes_checkpoints_and_resume_is_exact(dataset, tmp_path):
    full = train(_cfg(dataset, tmp_path / "full"), progress=False, log=lambda *a: None)
    for name in ("last.pt", "best.pt", "history.json", "history.csv"):
        assert (full / name).is_file(), name
    ckpt = load_checkpoint(full / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["model_name"] == "cnn3" and ckpt["classes"] == ["TONE", "BPSK"]
    for key in ("optimizer", "scheduler", "rng", "config", "history", "model_cfg", "state_dict"):
        assert key in ckpt
    history = json.loads((full / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(np.isfinite(h["train_loss"]) for h in history)
    best = load_checkpoint(full / "best.pt")
    assert best["val_acc"] == max(h["val_acc"] for h in history)

    # interrupted after one epoch, then resumed: must match the uninterrupted run bit for bit
    split = _cfg(dataset, tmp_path / "split")
    train(split, progress=False, stop_after_epochs=1, log=lambda *a: None)
    assert load_checkpoint(tmp_path / "split" / "last.pt")["epoch"] == 1
    logs = []
    train(split, resume=True, progress=False, log=logs.append)
    assert any("resuming" in m and "after epoch 1" in m for m in logs)
    resumed = load_checkpoint(tmp_path / "split" / "last.pt")
    assert resumed["epoch"] == 2 and len(resumed["history"]) == 2
    assert [r["epochs"] for r in resumed["training"]["invocations"]] == [[1, 1], [2, 2]]  # both kept
    for k, v in ckpt["state_dict"].items():
        assert torch.equal(v, resumed["state_dict"][k]), k

    with pytest.raises(ValueError, match="planned for 2 epochs.*--epochs 2"):
        train(_cfg(dataset, tmp_path / "split", epochs=3), resume=True, progress=False, log=lambda *a: None)


def test_a_run_moved_between_cpu_and_gpu_resumes(dataset, tmp_path):
    """A GPU box writes a CUDA generator state (16 bytes); resuming on a CPU box must not fail."""
    cfg = _cfg(dataset, tmp_path / "moved")
    train(cfg, progress=False, stop_after_epochs=1, log=lambda *a: None)
    ckpt = load_checkpoint(tmp_path / "moved" / "last.pt")
    assert isinstance(ckpt["rng"]["numpy"][1], list)  # no pickled ndarray: numpy 1 and 2 name theirs differently
    ckpt["rng"]["generator"] = torch.zeros(16, dtype=torch.uint8)  # the shape of a CUDA generator's state
    torch.save(ckpt, tmp_path / "moved" / "last.pt")
    logs = []
    train(cfg, resume=True, progress=False, log=logs.append)
    assert any("written on another kind of device" in m for m in logs)
    assert load_checkpoint(tmp_path / "moved" / "last.pt")["epoch"] == 2


def test_checkpoint_written_under_numpy2_loads_under_numpy1(dataset, tmp_path):
    import io
    import pickle

    buf = io.BytesIO()
    payload = {"model_name": "cnn3", "model_cfg": {}, "state_dict": {}, "keys": np.arange(3, dtype=np.uint32)}
    torch.save(payload, buf, _use_new_zipfile_serialization=False, pickle_protocol=2)
    own = np.ndarray.__reduce__(np.arange(1))[0].__module__  # numpy.core.multiarray or numpy._core.multiarray
    other = "numpy._core.multiarray" if own == "numpy.core.multiarray" else "numpy.core.multiarray"
    data = buf.getvalue()
    assert own.encode() in data
    (tmp_path / "np.pt").write_bytes(data.replace(own.encode(), other.encode()))
    if other == "numpy.core.multiarray":
        pytest.skip("numpy 2 reads numpy 1 pickles itself")
    assert list(load_checkpoint(tmp_path / "np.pt")["keys"]) == [0, 1, 2]


def test_resume_without_checkpoint_is_clear(dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(_cfg(dataset, tmp_path / "none"), resume=True, progress=False, log=lambda *a: None)


def test_metrics_and_report_on_hand_built_predictions(tmp_path):
    classes = ["A", "B", "C"]
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    snr = np.array([-10, -10, -10, 0, 0, 10, 10, 10], float)
    pred = np.array([0, 2, 1, 0, 1, 2, 0, 0])  # -10 dB: 1/3, 0 dB: 2/2, 10 dB: 2/3
    probs = np.full((8, 3), 0.1)
    probs[np.arange(8), pred] = 0.8
    m = classification_metrics(probs, y, snr, classes)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["accuracy_snr_ge_0"] == pytest.approx(4 / 5)
    assert m["accuracy_snr_ge_10"] == pytest.approx(2 / 3)
    assert m["peak_accuracy"] == 1.0 and m["peak_snr_db"] == 0.0
    assert m["confusion"][1] == [1, 1, 1] and np.sum(m["confusion"]) == 8
    assert m["ece"] == pytest.approx(abs(5 / 8 - 0.8))  # one bin, conf 0.8

    summary = write_evaluation(m, tmp_path / "eval", title="hand")
    for f in ("summary.json", "per_snr.csv", "per_snr.json", "confusion.png", "accuracy_vs_snr.png"):
        assert (tmp_path / "eval" / f).is_file(), f
    rows = list(csv.DictReader(open(tmp_path / "eval" / "per_snr.csv")))
    assert [(float(r["snr_db"]), int(r["n"]), float(r["accuracy"])) for r in rows] == [
        (-10.0, 3, pytest.approx(1 / 3)), (0.0, 2, 1.0), (10.0, 3, pytest.approx(2 / 3))]
    on_disk = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert on_disk["confusion"] == summary["confusion"] and on_disk["accuracy"] == pytest.approx(5 / 8)


def test_ece_hand_checked():
    y = np.array([0, 0, 1, 1])
    sure = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert expected_calibration_error(sure, y) == pytest.approx(0.0)
    # two bins: conf 0.95 (both right, gap 0.05), conf 0.6 (one right, gap 0.1)
    p = np.array([[0.95, 0.05], [0.05, 0.95], [0.6, 0.4], [0.6, 0.4]])
    assert expected_calibration_error(p, np.array([0, 1, 0, 1])) == pytest.approx(0.5 * 0.05 + 0.5 * 0.1)


def test_cli_train_export_evaluate_card(dataset, tmp_path):
    cfg_path = tmp_path / "exp.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "experiment": "cli",
        "data": {"name": "tiny", "frames_per_class_snr": {"train": 40, "val": 10, "test": 10}},
        "model": {"name": "cnn3", "cfg": {"channels": [8, 16, 16], "hidden": 16}},
        "train": {"epochs": 5, "batch_size": 32},
    }))
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg_path), "--epochs", "1", "--device", "auto", "--threads", "1",
                 "--data-root", str(dataset), "--out", str(out), "--no-progress"]) == 0
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["config"]["train"]["epochs"] == 1 and ckpt["training"]["command"].startswith("modrec train")

    onnx_path = tmp_path / "models" / "cli.onnx"
    assert main(["export", "--checkpoint", str(out / "best.pt"), "--out", str(onnx_path), "--legacy"]) == 0
    assert onnx_path.is_file()

    ev = tmp_path / "eval"
    card = tmp_path / "models" / "cli.md"
    assert main(["evaluate", "--checkpoint", str(out / "best.pt"), "--onnx", str(onnx_path), "--out", str(ev),
                 "--card", str(card)]) == 0
    s = json.loads((ev / "summary.json").read_text())
    assert s["backend"] == "onnxruntime" and s["n_frames"] == 60 and len(s["per_snr"]) == 3
    for key in ("accuracy", "accuracy_snr_ge_0", "accuracy_snr_ge_10", "peak_accuracy", "ece", "params", "flops",
                "onnx_bytes", "onnx_kb", "ort_ms_per_frame_batch1", "ort_frames_per_s_batch256"):
        assert s[key] is not None, key
    text = card.read_text()
    assert "| 10 |" in text and "modrec train" in text
    # the card links figures copied beside it, so it stays valid without the run directory
    for fig in ("accuracy_vs_snr.png", "confusion.png"):
        assert f"](cli-{fig})" in text and (card.parent / f"cli-{fig}").is_file()
    assert json.loads((card.parent / "cli.summary.json").read_text()) == s

    # torch checkpoint alone gives the same predictions as the exported model
    ev2 = tmp_path / "eval_torch"
    assert main(["evaluate", "--checkpoint", str(out / "best.pt"), "--out", str(ev2)]) == 0
    s2 = json.loads((ev2 / "summary.json").read_text())
    assert s2["backend"] == "torch" and s2["confusion"] == s["confusion"]

    # ONNX alone needs to be told where the data is
    assert main(["evaluate", "--onnx", str(onnx_path), "--out", str(ev2)]) == 2

    # ... and then runs without torch at all (a shipped model scored on a GNU Radio box)
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from gnuradio.modrec.training.evaluate import evaluate\n"
        f"s = evaluate({str(tmp_path / 'eval_nt')!r}, onnx_path={str(onnx_path)!r}, data={str(dataset)!r}, latency=False)\n"
        f"assert s['confusion'] == {s['confusion']!r}\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)


def _write(tmp_path, data):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize("data, match", [
    ({"trian": {"epochs": 1}}, r"bad.yaml: unknown field 'trian' \(did you mean 'train'\?\)"),
    ({"train": {"epoch": 1}}, r"unknown field 'train.epoch' \(did you mean 'train.epochs'\?\)"),
    ({"train": {"epochs": "ten"}}, r"field 'train.epochs' expected an integer, got str 'ten'"),
    ({"train": {"epochs": 0}}, r"field 'train.epochs' expected >= 1, got 0"),
    ({"optim": {"lr": "fast"}}, r"field 'optim.lr' expected a number"),
    ({"schedule": {"name": "step"}}, r"field 'schedule.name' expected one of onecycle, cosine, constant"),
    ({"model": {"name": "cnn4"}}, r"field 'model.name'.*did you mean 'cnn3'"),
    ({"model": {"name": "cnn3", "cfg": {"width": 3}}}, r"'model.cfg' has unknown key\(s\) width"),
    ({"data": {"frames_per_class_snr": {"train": 10}}}, r"data.frames_per_class_snr.val"),
    ({"train": {"device": "gpu"}}, r"field 'train.device' expected auto, cpu"),
])
def test_config_errors_are_clear(tmp_path, data, match):
    with pytest.raises(ConfigError, match=match):
        load_config(_write(tmp_path, data))


def test_config_loading_and_overrides(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    cfg = load_config(_write(tmp_path, {"train": {"epochs": 3}}), ["train.epochs=7", "augment.freq_offset=0.01"])
    assert cfg.experiment == "bad" and cfg.train.epochs == 7 and cfg.augment.freq_offset == 0.01
    assert str(cfg.run_dir).endswith("runs/bad")


CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path, monkeypatch, tmp_path):
    # Every committed experiment must be valid, including the study runs that take hours.
    from gnuradio.modrec.training.models import list_models

    monkeypatch.setenv("MODREC_CACHE", str(tmp_path))
    cfg = load_config(path)
    assert cfg.experiment == path.stem
    assert cfg.model.name in list_models() and cfg.data_root == tmp_path / "datasets" / cfg.data.name


def test_tiny_ci_config_with_generated_data(tmp_path, monkeypatch):
    """The CI experiment end to end, with the real data generator."""
    from pathlib import Path

    monkeypatch.setenv("MODREC_CACHE", str(tmp_path / "cache"))
    config = Path(__file__).resolve().parents[1] / "configs" / "tiny-ci.yaml"
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out), "--threads", "1", "--no-progress"]) == 0
    assert (tmp_path / "cache" / "datasets" / "rml2016-tiny-ci" / "meta.json").is_file()
    assert main(["evaluate", "--checkpoint", str(out / "best.pt"), "--out", str(out / "eval"), "--no-latency"]) == 0
    s = json.loads((out / "eval" / "summary.json").read_text())
    assert len(s["classes"]) == 11 and len(s["per_snr"]) == 20


def test_pack_runs_slims_and_splits(dataset, tmp_path):
    """scripts/pack_runs.py: best.pt without training state, last.pt only for unfinished runs, parts rejoin."""
    import tarfile

    runs = tmp_path / "runs"
    train(_cfg(dataset, runs / "done", epochs=1), progress=False, log=lambda *a: None)
    train(_cfg(dataset, runs / "partial", epochs=2), progress=False, stop_after_epochs=1, log=lambda *a: None)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "scripts" / "pack_runs.py"),
                             "--runs", str(runs), "--out", str(out), "--part-mb", "0.05"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    parts = sorted(out.glob("runs.tar.part-*"))
    assert len(parts) > 1 and all(p.stat().st_size <= 0.05 * 2**20 for p in parts)
    (tmp_path / "joined.tar").write_bytes(b"".join(p.read_bytes() for p in parts))
    unpacked = tmp_path / "unpacked"
    with tarfile.open(tmp_path / "joined.tar") as tar:
        tar.extractall(unpacked)
    assert (unpacked / "partial" / "last.pt").is_file() and not (unpacked / "done" / "last.pt").exists()
    for run in ("done", "partial"):
        slim = load_checkpoint(unpacked / run / "best.pt")
        assert not {"optimizer", "scheduler", "rng"} & set(slim)
        full = load_checkpoint(runs / run / "best.pt")
        for k, v in full["state_dict"].items():
            assert torch.equal(v, slim["state_dict"][k]), k
        assert (unpacked / run / "history.json").is_file()


def test_model_card_keeps_hand_written_notes(tmp_path):
    from gnuradio.modrec.training.model_card import write_model_card

    summary = {"accuracy": 0.5, "per_snr": [{"snr_db": 0, "n": 10, "accuracy": 0.5}], "classes": ["A", "B"],
               "training": {"invocations": [{"command": "modrec train --device cuda", "epochs": [1, 29], "device": "NVIDIA H100"},
                                            {"command": "modrec train --resume", "epochs": [30, 30], "device": "cpu (2 cores)"}]}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    card = tmp_path / "m.md"
    write_model_card(tmp_path / "summary.json", card)
    text = card.read_text()
    assert "epochs 1-29 on NVIDIA H100: `modrec train --device cuda`" in text and "epochs 30-30 on cpu" in text
    card.write_text(text + "\n## Notes\n\n- trained on a borrowed GPU\n")
    write_model_card(tmp_path / "summary.json", card)  # re-rendered, e.g. after a new evaluation
    again = card.read_text()
    assert again.count("## Notes") == 1 and "- trained on a borrowed GPU" in again


def _card_text(tmp_path, name, classes=("A", "B"), **fields):
    """The model card write_model_card renders for a summary of one 0 dB row plus ``fields``."""
    from gnuradio.modrec.training.model_card import write_model_card

    summary = {"accuracy": 0.5, "per_snr": [{"snr_db": 0, "n": 10, "accuracy": 0.5}], "classes": list(classes), **fields}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    write_model_card(tmp_path / "summary.json", tmp_path / name)
    return (tmp_path / name).read_text()


def test_model_card_states_the_distillation_recipe(tmp_path):
    distill = {"method": "kd", "cfg": {"temperature": 4.0, "alpha": 0.9}, "cache_teacher": True, "cache_views": 4,
               "teacher": {"checkpoint": "runs/inception_resnet/best.pt", "model": "inception_resnet", "val_acc": 0.5175}}
    text = _card_text(tmp_path, "m.md", training={"distill": distill})
    assert ("- distillation: kd `{\"alpha\": 0.9, \"temperature\": 4.0}` from `runs/inception_resnet/best.pt` "
            "(inception_resnet, validation accuracy 51.7 %); teacher outputs cached on 4 augmented copies") in text


def test_model_card_states_the_exit_rule_and_exports_with_it(tmp_path):
    calibration = {"policy": "gate", "threshold": 0.04, "budget_pp": 0.5, "snr_min": 10.0}
    text = _card_text(tmp_path, "x_ee.md", training={
        "exit_calibration": calibration, "config": {"source": "configs/x_ee.yaml", "experiment": "x-p4"}})
    assert "- exit rule: `gate` <= 0.040, calibrated on the validation split to lose at most 0.5 pp (also at SNR >= 10 dB)" in text
    assert ("modrec export --checkpoint runs/x-p4/best.pt --out models/x_ee.onnx --exit-policy gate "
            "--exit-budget-pp 0.5 --exit-budget-snr-min 10 --force") in text


def test_model_card_of_a_joined_model_reproduces_it_with_its_detector_and_thresholds(tmp_path):
    detector = {"checkpoint": "runs/signal_detector-dc-narrow/best.pt", "noise_false_rate": 0.005}
    text = _card_text(tmp_path, "x-v2.md", classes=("A", "noise"),
                      metadata={"unknown_score": "energy", "unknown_threshold": "-3.4", "unknown_false_rate": "0.05",
                                "training": {"detector": detector,
                                             "config": {"source": "configs/x.yaml", "experiment": "x"}}})
    assert "modrec train --config configs/signal_detector-dc-narrow.yaml      # the signal detector" in text
    assert ("modrec export --checkpoint runs/x/best.pt --out models/x-v2.onnx --detector "
            "runs/signal_detector-dc-narrow/best.pt --noise-false-rate 0.005 --unknown-score energy "
            "--unknown-false-rate 0.05 --force") in text


def test_model_card_shows_where_an_interrupted_invocation_ended_and_checkout_relative_paths(tmp_path, monkeypatch):
    from gnuradio.modrec.training.model_card import render_model_card

    monkeypatch.chdir(tmp_path)
    train = f"modrec train --config {tmp_path}/configs/m.yaml --out {tmp_path}/runs/m"
    summary = {"accuracy": 0.5, "per_snr": [], "classes": ["A", "B"],
               "training": {"config": {"source": f"{tmp_path}/configs/m.yaml", "experiment": "m"},
                            # the first invocation planned 30 epochs and was stopped after 5
                            "invocations": [{"command": train, "epochs": [1, 30]},
                                            {"command": train + " --resume", "epochs": [6, 30]}]}}
    text = render_model_card(summary, "m")
    assert "epochs 1-5: `modrec train --config configs/m.yaml --out runs/m`" in text
    assert "epochs 6-30: `modrec train --config configs/m.yaml --out runs/m --resume`" in text
    assert "modrec train --config configs/m.yaml --out runs/m      # the dataset" in text  # without --resume
    assert str(tmp_path) not in text


def test_model_card_states_what_a_pruned_model_was_pruned_from(tmp_path, monkeypatch):
    from gnuradio.modrec.training.model_card import render_model_card

    monkeypatch.chdir(tmp_path)
    pruning = {"criterion": "gamma-redundancy", "criterion_cfg": {"redundancy_weight": 1.0}, "ratio": 0.37, "strategy": "local",
               "source_checkpoint": f"{tmp_path}/runs/mini_inception_resnet/best.pt", "source_val_acc": 0.4934,
               "before": {"params": 164443, "flops": 8865824}, "after": {"params": 66000, "flops": 3510000}}
    text = render_model_card({"accuracy": 0.5, "per_snr": [], "classes": ["A"], "training": {"pruning": pruning}}, "m")
    assert ("- pruned from: `runs/mini_inception_resnet/best.pt` (validation accuracy 49.3 %), gamma-redundancy "
            "`{\"redundancy_weight\": 1.0}`, 37% of each layer's channels (local): 164,443 -> 66,000 parameters, "
            "8.87 -> 3.51 MFLOPs/frame (60.4% cut), then fine-tuned") in text
    pruning.update(criterion="bn-gamma", criterion_cfg={})  # a criterion without options shows none
    text = render_model_card({"accuracy": 0.5, "per_snr": [], "classes": ["A"], "training": {"pruning": pruning}}, "m")
    assert "(validation accuracy 49.3 %), bn-gamma, 37% of each layer's channels" in text


def test_a_shipped_card_rerendered_from_its_summary_copy_keeps_its_own_figures(tmp_path):
    from gnuradio.modrec.training.model_card import write_model_card

    run_eval, models = tmp_path / "runs" / "m" / "eval", tmp_path / "models"
    run_eval.mkdir(parents=True)
    (run_eval / "summary.json").write_text(json.dumps({"accuracy": 0.5, "per_snr": [], "classes": ["A"]}))
    for fig in ("accuracy_vs_snr.png", "confusion.png"):
        (run_eval / fig).write_bytes(b"run figure")
    write_model_card(run_eval / "summary.json", models / "m.md")
    (models / "accuracy_vs_snr.png").write_bytes(b"another model's plot")  # the study's report figure
    write_model_card(models / "m.summary.json", models / "m.md")
    text = (models / "m.md").read_text()
    assert "](m-accuracy_vs_snr.png)" in text and "](m-confusion.png)" in text
    assert (models / "m-accuracy_vs_snr.png").read_bytes() == b"run figure"


def test_model_card_of_an_int8_file_says_how_it_was_quantised_and_reproduces_it(tmp_path):
    quantization = {"method": "onnxruntime.quantization.quantize_static", "format": "QDQ", "ops": ["Conv", "Gemm"],
                    "activations": "QInt8", "weights": "QInt8 per channel", "calibration": "minmax",
                    "calibration_frames": 2048, "calibration_seed": 0, "from": "x.onnx"}
    text = _card_text(tmp_path, "x-int8.md", training={
        "quantization": quantization, "config": {"source": "configs/x.yaml", "experiment": "x"}})
    assert "- quantization: QDQ QInt8 activations, QInt8 per channel weights on Conv, Gemm, minmax calibration on 2,048" in text
    # the fp32 file is exported, then quantised into the file the card describes
    assert "modrec export --checkpoint runs/x/best.pt --out models/x.onnx --force" in text
    assert "modrec quantize --onnx models/x.onnx --out models/x-int8.onnx --frames 2048 --seed 0 --force" in text
