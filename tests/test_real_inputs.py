"""Real inputs end to end: a RadioML 2016 pickle, a RadioML 2018 HDF5 and a labelled SigMF recording,
made here in the real files' layouts, go through ``modrec evaluate`` and ``modrec train``; every
score equals scoring the same frames directly with the model."""

import os
import json
from pathlib import Path

import numpy as np
import pytest

from gnuradio.modrec.runtime import load_model
from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.data.sources import open_source
from gnuradio.modrec.training.checkpoint import load_checkpoint
from real_input_files import frames, rml2016_dict, write_labelled_sigmf, write_rml2016, write_rml2018

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "mobilenet1d-skd.onnx"


def _direct_accuracy(model_path, x, y_names):
    model = load_model(model_path)
    pred = model.predict(x).argmax(1)
    return float(np.mean([model.classes[p] == name for p, name in zip(pred, y_names)]))


@pytest.fixture(scope="module")
def rml2016_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rml2016") / "RML2016.10a_dict.pkl"
    data = rml2016_dict(["8PSK", "AM-DSB", "BPSK", "QPSK", "WBFM"], [-10, 0, 18], per_key=20)
    # a class the shipped model does not know (RadioML 2018's spelling): reported, not scored
    data.update({("16APSK", s): frames("QAM16", 20, s, np.random.default_rng(s + 40)) for s in (-10, 0, 18)})
    write_rml2016(path, None, None, None, data=data)
    return path, data


def test_evaluate_a_shipped_model_on_a_radioml2016_pickle(rml2016_file, tmp_path, capsys):
    path, data = rml2016_file
    out = tmp_path / "eval"
    assert main(["evaluate", "--onnx", str(SHIPPED), "--data", str(path), "--out", str(out), "--no-latency"]) == 0
    s = json.loads((out / "summary.json").read_text())
    known = {k: v for k, v in data.items() if k[0] != "16APSK"}
    x = np.concatenate(list(known.values()))
    names = [k[0] for k, v in known.items() for _ in range(len(v))]
    assert s["split"] == "all" and s["n_frames"] == len(x) == 300 and s["n_frames_in_split"] == 360
    assert s["accuracy"] == pytest.approx(_direct_accuracy(SHIPPED, x, names), abs=1e-12)
    assert s["accuracy"] > 0.5  # the frames are what the model was trained on
    unknown = s["frames_of_classes_unknown_to_model"]
    assert list(unknown) == ["16APSK"] and unknown["16APSK"]["n"] == 60 and sum(unknown["16APSK"]["predicted"].values()) == 60
    assert "60 frames of 16APSK, a class the model does not know, were not scored" in capsys.readouterr().out
    assert [r["snr_db"] for r in s["per_snr"]] == [-10.0, 0.0, 18.0]
    for f in ("per_snr.csv", "confusion.png", "accuracy_vs_snr.png"):
        assert (out / f).is_file()
    # a split of the file: only its frames
    out2 = tmp_path / "eval_test"
    assert main(["evaluate", "--onnx", str(SHIPPED), "--data", f"rml2016:{path}", "--split", "test", "--data-split", "50/50",
                 "--out", str(out2), "--no-latency"]) == 0
    s2 = json.loads((out2 / "summary.json").read_text())
    test = open_source(path, split="50/50").load("test")
    classes = open_source(path).classes
    sel = np.array([classes[i] != "16APSK" for i in test.y])
    assert s2["n_frames"] == sel.sum() == 150
    assert s2["accuracy"] == pytest.approx(_direct_accuracy(SHIPPED, test.x[sel], [classes[i] for i in test.y[sel]]))


@pytest.mark.parametrize("student", ["cnn3", "mobilenet1d", "mini_inception_resnet"])
def test_each_rml2016_config_trains_on_a_file_of_the_same_layout(rml2016_file, tmp_path, student):
    path, _ = rml2016_file
    run = tmp_path / "run"
    assert main(["train", "--config", str(ROOT / "configs" / f"rml2016-{student}.yaml"), "--data", str(path),
                 "--epochs", "1", "--threads", "1", "--out", str(run), "--no-progress",
                 "--set", "train.batch_size=64", "--set", "train.eval_batch_size=256"]) == 0
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["classes"] == ["16APSK", "8PSK", "AM-DSB", "BPSK", "QPSK", "WBFM"] and ckpt["model_cfg"]["frame_len"] == 128
    assert ckpt["training"]["data"]["source"]["source"] == f"rml2016:{path.resolve()}"
    assert ckpt["training"]["data"]["train_frames"] == 216 and ckpt["training"]["data"]["val_frames"] == 72
    if student != "cnn3":
        return
    # the whole chain for one: export (real validation frames for parity come from the same file) and score
    onnx = tmp_path / "rml2016-cnn3.onnx"
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(onnx), "--legacy"]) == 0
    assert load_model(onnx).metadata["samples_per_symbol"] == 8
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--onnx", str(onnx), "--out", str(out), "--no-latency"]) == 0
    s = json.loads((out / "summary.json").read_text())
    test = open_source(path).load("test")  # the checkpoint's own source and split, by default
    assert s["split"] == "test" and s["n_frames"] == len(test) == 72
    classes = ckpt["classes"]
    assert s["accuracy"] == pytest.approx(_direct_accuracy(onnx, test.x, [classes[i] for i in test.y]))


def test_radioml2018_layout_trains_exports_and_scores(tmp_path):
    path = tmp_path / "GOLD_XYZ_OSC.0001_1024.hdf5"
    x, y, z = write_rml2018(path, ["BPSK", "QPSK", "QAM16"], [0, 10], per_key=24, frame_len=256)
    classes = "BPSK,QPSK,16QAM"
    run = tmp_path / "run"
    assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci.yaml"), "--data", f"rml2018:{path}",
                 "--set", f"data.classes=[{classes}]", "--epochs", "1", "--threads", "1", "--out", str(run),
                 "--no-progress"]) == 0
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["model_cfg"]["frame_len"] == 256 and ckpt["classes"] == classes.split(",")
    onnx = tmp_path / "rml2018-tiny.onnx"
    # RadioML 2018 does not state its samples per symbol: export asks for it
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(onnx), "--legacy"]) == 2
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(onnx), "--legacy",
                 "--samples-per-symbol", "8"]) == 0
    model = load_model(onnx)
    assert model.frame_len == 256 and model.samples_per_symbol == 8
    out = tmp_path / "eval"
    assert main(["evaluate", "--onnx", str(onnx), "--data", str(path), "--classes", classes, "--out", str(out),
                 "--no-latency"]) == 0
    s = json.loads((out / "summary.json").read_text())
    names = [classes.split(",")[i] for i in y]
    assert s["n_frames"] == 144 and s["accuracy"] == pytest.approx(_direct_accuracy(onnx, x, names))
    # the wrong class order is caught by the column count, a frame length mismatch by name
    assert main(["evaluate", "--onnx", str(SHIPPED), "--data", str(path), "--classes", classes, "--out", str(out)]) == 2


def test_labelled_sigmf_recording_trains_and_scores(tmp_path, capsys):
    x, labels = write_labelled_sigmf(tmp_path / "capture", [("QPSK", 30), ("WBFM", 30), ("BPSK", 30)], snr_db=20)
    meta = tmp_path / "capture.sigmf-meta"
    out = tmp_path / "eval"
    assert main(["evaluate", "--onnx", str(SHIPPED), "--data", str(meta), "--out", str(out), "--no-latency"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["n_frames"] == 90 and s["accuracy"] == pytest.approx(_direct_accuracy(SHIPPED, x, labels), abs=1e-12)
    assert s["per_snr"] == [{"snr_db": None, "n": 90, "correct": round(s["accuracy"] * 90), "accuracy": s["accuracy"]}]
    assert s["accuracy_snr_ge_10"] is None and "accuracy_vs_snr" not in s["figures"]  # no SNR, no curve
    run = tmp_path / "run"
    assert main(["train", "--config", str(ROOT / "configs" / "tiny-ci.yaml"), "--data", f"sigmf:{meta}",
                 "--set", "data.split=50/25/25", "--epochs", "1", "--threads", "1", "--out", str(run), "--no-progress"]) == 0
    assert load_checkpoint(run / "best.pt")["classes"] == ["BPSK", "QPSK", "WBFM"]
    # a label the model does not know is reported; bad input is one clear error
    bad = tmp_path / "other"
    write_labelled_sigmf(bad, [("QPSK", 4)])
    text = bad.with_suffix(".sigmf-meta").read_text().replace('"core:label": "QPSK"', '"core:label": ""')
    bad.with_suffix(".sigmf-meta").write_text(text)
    capsys.readouterr()
    assert main(["evaluate", "--onnx", str(SHIPPED), "--data", str(bad.with_suffix(".sigmf-meta")), "--out", str(out)]) == 2
    assert "other.sigmf-meta" in capsys.readouterr().err


@pytest.mark.parametrize("symbol_rate", [0.0, 62.5e3])
def test_sigmf_recording_through_a_flowgraph_gives_the_annotations_of_modrec_classify(tmp_path, symbol_rate):
    """file source (the recording's data) -> classifier -> sigmf_annotation_sink writes the segments
    that modrec classify finds, and the frames' accuracy equals scoring them directly."""
    from gnuradio import blocks, gr
    from sigmf import sigmffile

    from gnuradio.modrec.classifier import classifier
    from gnuradio.modrec.runtime.classify import classify_recording
    from gnuradio.modrec.sigmf_annotation_sink import sigmf_annotation_sink

    x, labels = write_labelled_sigmf(tmp_path / "capture", [("QPSK", 12), ("WBFM", 12), ("BPSK", 12)], snr_db=20)
    # min_confidence 0: every frame its top class, as scoring directly gives it (the version-2
    # default's unknown threshold is tested in test_shipped_version2.py)
    offline = classify_recording(tmp_path / "capture.sigmf-meta", symbol_rate=symbol_rate or None, min_confidence=0.0,
                                 progress=False)
    if not symbol_rate:  # frame by frame, the recording's labels: the accuracy of scoring directly
        got = np.mean([a == b for a, b in zip(offline.labels, labels)])
        assert got == pytest.approx(_direct_accuracy(SHIPPED, x, labels))
    tb = gr.top_block()
    src = blocks.file_source(gr.sizeof_gr_complex, str(tmp_path / "capture.sigmf-data"), False)
    clf = classifier(sample_rate=1e6, symbol_rate=symbol_rate, min_confidence=0.0)
    sink = sigmf_annotation_sink(str(tmp_path / "flowgraph.sigmf-meta"), 1e6, model_name=offline.model_name,
                                 data_path=str(tmp_path / "capture.sigmf-data"))
    tb.connect(src, clf, sink)
    tb.run()
    written = sigmffile.fromfile(str(tmp_path / "flowgraph.sigmf-meta"))
    got = [(a["core:sample_start"], a["core:sample_count"], a["core:label"], a["modrec:frames"])
           for a in written.get_annotations()]
    assert got == [(s.start, s.count, s.label, s.frames) for s in offline.segments]
    assert [a["modrec:confidence"] for a in written.get_annotations()] == pytest.approx(
        [s.mean_confidence for s in offline.segments], abs=1e-6)
    del tb, src, clf, sink


def test_distillation_pruning_and_exits_eval_read_a_radioml_file(rml2016_file, tmp_path):
    """The other readers of frames take the same --data: a teacher and its kd student, a pruned run,
    and the early-exit evaluation, all on the RadioML 2016 pickle."""
    path, data = rml2016_file
    configs = ROOT / "configs"
    common = ["--data", str(path), "--epochs", "1", "--threads", "1", "--no-progress"]
    teacher = tmp_path / "teacher"
    assert main(["train", "--config", str(configs / "tiny-ci.yaml"), "--out", str(teacher), *common]) == 0
    kd = tmp_path / "kd"
    assert main(["train", "--config", str(configs / "tiny-ci-kd.yaml"), "--out", str(kd), *common,
                 "--set", f"distill.teacher.checkpoint={teacher / 'best.pt'}",
                 "--set", f"distill.cache_dir={tmp_path / 'teacher-cache'}"]) == 0
    ckpt = load_checkpoint(kd / "best.pt")
    assert ckpt["training"]["distill"]["method"] == "kd" and ckpt["training"]["data"]["train_frames"] == 216
    pruned = tmp_path / "pruned"
    assert main(["train", "--config", str(configs / "tiny-ci-prune.yaml"), "--out", str(pruned), *common,
                 "--set", f"prune.checkpoint={teacher / 'best.pt'}"]) == 0
    assert load_checkpoint(pruned / "best.pt")["pruning"]["ratio"] == 0.5

    result = tmp_path / "exits.json"
    assert main(["exits-eval", "--onnx", str(ROOT / "models" / "mobilenet1d_ee.onnx"), "--plain",
                 str(ROOT / "models" / "mobilenet1d.onnx"), "--data", str(path), "--split", "all",
                 "--out", str(result)]) == 0
    r = json.loads(result.read_text())
    assert r["frames_of_classes_unknown_to_model"] == 60 and sum(row["n"] for row in r["per_snr"]) == 300
    # the file's class order is not the model's: accuracy is scored by name
    known = {k: v for k, v in data.items() if k[0] != "16APSK"}
    x = np.concatenate(list(known.values()))
    names = [k[0] for k, v in known.items() for _ in range(len(v))]
    assert r["all"]["plain_accuracy"] == pytest.approx(
        _direct_accuracy(ROOT / "models" / "mobilenet1d.onnx", x, names), abs=1e-9)


def test_evaluate_runs_under_a_one_core_affinity_mask(rml2016_file, tmp_path):
    # taskset -c 0 modrec evaluate ...: the runtime refuses more threads than the process may use,
    # so evaluate asks for the cores of its affinity mask, not the machine's
    path, _ = rml2016_file
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        assert main(["evaluate", "--onnx", str(SHIPPED), "--data", str(path), "--out", str(tmp_path / "eval"),
                     "--no-latency"]) == 0
    finally:
        os.sched_setaffinity(0, before)
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["n_frames"] == 300
