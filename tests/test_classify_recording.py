"""runtime.classify and ``modrec classify``: a model over a whole recording, in bounded chunks."""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly
from sigmf import sigmffile

from gnuradio.modrec.classes import UNKNOWN_CLASS
from gnuradio.modrec.runtime import complex_to_iq, default_model_path, frame_starts, load_model
from gnuradio.modrec.runtime.annotations import merge_decisions
from gnuradio.modrec.runtime.classify import classify_recording, format_class_shares, format_segments, write_outputs
from gnuradio.modrec.runtime.recording import open_recording
from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.data.generator import DEFAULT_CONFIG, generate_frames

RATE = 1e6
A, B = "BPSK", "WBFM"  # the default model recognises both at 30 dB (all 64 frames of each seed used here)
N_EACH = 64


# Framing, chunking and resampling are checked with the student alone (contract version 1: every
# frame gets one of its classes); the default (version 2: noise, unknown, SNR) is checked against
# the block at the end.
STUDENT = str(Path(default_model_path()).parent / "mobilenet1d-skd.onnx")


def classify_with_student(path, **kwargs):
    return classify_recording(path, model_path=STUDENT, **kwargs)


@pytest.fixture(scope="module")
def model():
    return load_model(STUDENT)


@pytest.fixture(scope="module")
def signal():
    """64 frames of A then 64 of B at 30 dB, 50 trailing samples (a partial frame), complex64."""
    frames = np.concatenate([generate_frames(A, N_EACH, 30, rng=1), generate_frames(B, N_EACH, 30, rng=1)])
    return np.concatenate([frames.reshape(-1), np.full(50, 0.01 + 0.01j, np.complex64)])


def _sigmf(directory, name, samples, extra_global=None, captures=None):
    samples.astype("<c8").tofile(directory / f"{name}.sigmf-data")
    glob = {"core:datatype": "cf32_le", "core:sample_rate": RATE, "core:version": "1.2.0", **(extra_global or {})}
    meta = {"global": glob, "captures": captures or [{"core:sample_start": 0}], "annotations": []}
    (directory / f"{name}.sigmf-meta").write_text(json.dumps(meta))
    return directory / f"{name}.sigmf-meta"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory, signal):
    """The signal as cf32 SigMF (915 MHz) and as a raw ci16 capture (+ its dequantised samples)."""
    d = tmp_path_factory.mktemp("rec")
    meta = _sigmf(d, "mixed", signal, captures=[{"core:sample_start": 0, "core:frequency": 915e6}])
    ints = np.round(signal.view(np.float32) / np.abs(signal.view(np.float32)).max() * 32000).astype("<i2")
    ints.tofile(d / "mixed.ci16")
    dequantised = (ints.astype(np.float32) / 32768).view(np.complex64)
    return {"sigmf": meta, "raw": d / "mixed.ci16", "raw_samples": dequantised}


def _direct(model, samples, starts, frame_len):
    """(labels, confidences) of the model run on exactly these frames, under its own rule
    (contract version 2): its noise class is ``noise``; a frame whose energy score
    (-logsumexp of the logits) is above its threshold is ``unknown``, unless noise won."""
    out = model.predict_details(complex_to_iq(samples[starts[:, None] + np.arange(frame_len)]))
    top = out.probs.argmax(1)
    labels = ["noise" if model.classes[i] == model.open_set.noise_class else model.classes[i] for i in top]
    if model.open_set.score == "energy":
        z = out.logits.astype(np.float64)
        energy = -(z.max(1) + np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)))
        labels = ["unknown" if e > model.open_set.threshold and label != "noise" else label
                  for e, label in zip(energy, labels)]
    return labels, out.probs.max(1)


def _same(r1, r2):
    for key in ("starts", "lengths", "class_index"):
        np.testing.assert_array_equal(getattr(r1, key), getattr(r2, key), err_msg=key)
    np.testing.assert_allclose(r1.confidence, r2.confidence, rtol=0, atol=1e-6)


def _check_segments(result):
    expected = merge_decisions(result.decisions)
    assert [(s.start, s.count, s.label, s.frames) for s in result.segments] == \
        [(s.start, s.count, s.label, s.frames) for s in expected]
    np.testing.assert_allclose([s.mean_confidence for s in result.segments],
                               [s.mean_confidence for s in expected], atol=1e-9)


def test_decisions_equal_scoring_the_same_frames_directly(model, signal, recordings):
    r = classify_with_student(recordings["sigmf"], progress=False)
    starts = frame_starts(len(signal), model.frame_len, model.frame_len)
    assert r.n_frames == 2 * N_EACH  # the 50-sample tail is not a frame
    np.testing.assert_array_equal(r.starts, starts)
    np.testing.assert_array_equal(r.lengths, model.frame_len)
    labels, conf = _direct(model, signal, starts, model.frame_len)
    assert r.labels == labels
    np.testing.assert_allclose(r.confidence, conf, atol=1e-6)
    assert r.labels[:N_EACH].count(A) >= 0.9 * N_EACH and r.labels[N_EACH:].count(B) >= 0.9 * N_EACH
    # the merged segments are merge_decisions of the frames; A's frames are one segment
    _check_segments(r)
    assert (r.segments[0].start, r.segments[0].label) == (0, A)
    assert sum(s.frames for s in r.segments) == r.n_frames
    assert r.model_name == "mobilenet1d-skd" and r.resample == (1, 1)
    table = format_segments(r)
    assert table.splitlines()[0].split() == ["start", "(s)", "duration", "(s)", "class", "confidence", "frames"]
    assert f"{r.segments[0].count / RATE:.6f}" in table.splitlines()[2]
    # the summary: one row per label, most frames first, shares and frames adding up
    shares = format_class_shares(r).splitlines()
    assert shares[0].split() == ["class", "share", "frames", "time", "(s)", "confidence"]
    rows = [line.split() for line in shares[2:]]
    counts = {row[0]: int(row[3]) for row in rows}
    assert counts == {label: r.labels.count(label) for label in set(r.labels)} and rows[0][0] == A
    assert sum(int(row[3]) for row in rows) == r.n_frames
    assert [int(row[3]) for row in rows] == sorted(counts.values(), reverse=True)
    assert abs(sum(float(row[1]) for row in rows) - 100.0) < 0.1 * len(rows)


def test_raw_ci16_capture_equals_direct_scoring(model, recordings):
    with pytest.raises(ValueError, match="sample_rate not given"):
        classify_with_student(recordings["raw"], datatype="ci16_le", progress=False)
    r = classify_with_student(recordings["raw"], datatype="ci16_le", sample_rate=RATE, progress=False)
    samples = recordings["raw_samples"]
    labels, conf = _direct(model, samples, r.starts, model.frame_len)
    assert r.labels == labels and r.n_frames == 2 * N_EACH
    np.testing.assert_allclose(r.confidence, conf, atol=1e-6)


@pytest.mark.parametrize("hop", [None, 48, 300])
def test_chunking_does_not_change_decisions_and_hops_work(model, signal, recordings, hop):
    big = classify_with_student(recordings["sigmf"], hop=hop, progress=False)
    small = classify_with_student(recordings["sigmf"], hop=hop, chunk_samples=1000, batch_frames=7, progress=False)
    _same(big, small)
    step = hop or model.frame_len
    np.testing.assert_array_equal(big.starts, frame_starts(len(signal), model.frame_len, step))
    labels, conf = _direct(model, signal, big.starts, model.frame_len)
    assert big.labels == labels
    np.testing.assert_allclose(big.confidence, conf, atol=1e-6)
    _check_segments(big)
    _check_segments(small)
    if step < model.frame_len:  # overlapping frames merge: fewer segments than frames
        assert len(big.segments) < big.n_frames / 4


def test_rejection_and_non_finite_frames(tmp_path, model, signal):
    bad = signal.copy()
    bad[3 * 128 + 5] = np.nan
    bad[7 * 128] = np.inf
    r = classify_with_student(_sigmf(tmp_path, "bad", bad), progress=False)
    assert r.labels[3] == r.labels[7] == UNKNOWN_CLASS and r.confidence[3] == r.confidence[7] == 0
    assert UNKNOWN_CLASS not in r.labels[:3]
    strict = classify_with_student(tmp_path / "bad.sigmf-meta", min_confidence=0.97, progress=False)
    low = (r.confidence < 0.97) & (r.class_index >= 0)
    assert low.any() and all(strict.labels[i] == UNKNOWN_CLASS for i in np.flatnonzero(low))
    np.testing.assert_array_equal(strict.confidence, r.confidence)  # the confidence is kept
    with pytest.raises(ValueError, match="min_confidence"):
        classify_with_student(tmp_path / "bad.sigmf-meta", min_confidence=1.5, progress=False)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_write_outputs_sigmf_beside_the_recording_untouched(tmp_path, signal):
    meta = _sigmf(tmp_path, "cap", signal, extra_global={"core:author": "a test", "core:offset": 1000},
                  captures=[{"core:sample_start": 1000, "core:frequency": 433.92e6}])
    data = tmp_path / "cap.sigmf-data"
    before = (_digest(meta), _digest(data))
    r = classify_with_student(meta, progress=False)
    out = write_outputs(r)
    assert (_digest(meta), _digest(data)) == before
    assert out["meta"] == tmp_path / "cap.modrec.sigmf-meta" and out["plot"] == tmp_path / "cap.modrec.png"
    assert out["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. an undeclared extension namespace
        # sigmf 1.14 compares annotation ends with the file's sample count ignoring core:offset;
        # SigMF indices are absolute (open_recording below agrees with us).
        warnings.filterwarnings("ignore", message="Data source ends before")
        back = sigmffile.fromfile(str(out["meta"]))
    back.validate()
    glob = back.get_global_info()
    assert glob["core:author"] == "a test" and glob["core:dataset"] == "cap.sigmf-data"
    assert back.get_captures() == [{"core:sample_start": 1000, "core:frequency": 433.92e6}]
    np.testing.assert_array_equal(back.read_samples(0, 200), signal[:200])  # it points at the samples
    anns = back.get_annotations()
    assert len(anns) == len(r.segments)
    for ann, seg in zip(anns, r.segments):
        assert ann["core:sample_start"] == seg.start + 1000 and ann["core:sample_count"] == seg.count
        assert ann["core:label"] == seg.label and ann["modrec:model"] == "mobilenet1d-skd"
        assert ann["modrec:confidence"] == pytest.approx(seg.mean_confidence)
    reread = open_recording(out["meta"])  # the project's reader: same samples, segments as labels
    assert reread.data_path == str(data) and reread.n_samples == len(signal)
    assert [(a.start, a.count, a.label) for a in reread.annotations] == \
        [(s.start, s.count, s.label) for s in r.segments]
    with pytest.raises(ValueError, match="own metadata"):
        write_outputs(r, meta_out=meta)


def test_write_outputs_raw_capture(tmp_path, recordings):
    raw = tmp_path / "mixed.ci16"
    raw.write_bytes(recordings["raw"].read_bytes())
    r = classify_with_student(raw, datatype="ci16_le", sample_rate=RATE, progress=False)
    out = write_outputs(r, plot=False)
    assert out == {"meta": tmp_path / "mixed.ci16.modrec.sigmf-meta", "plot": None}
    back = sigmffile.fromfile(str(out["meta"]))
    back.validate()
    assert back.get_global_field("core:dataset") == "mixed.ci16"
    np.testing.assert_allclose(back.read_samples(0, 300), recordings["raw_samples"][:300])
    assert [a["core:label"] for a in back.get_annotations()] == [s.label for s in r.segments]
    # elsewhere: a metadata-only file without core:dataset
    (tmp_path / "out").mkdir()
    out = write_outputs(r, meta_out=tmp_path / "out" / "x.sigmf-meta", plot=tmp_path / "out" / "x.png")
    assert "core:dataset" not in json.loads(out["meta"].read_text())["global"] and out["plot"].is_file()


def test_symbol_rate_resamples_and_maps_back_to_input_samples(tmp_path, model):
    # 32 frames of BPSK at 16 samples per symbol: the model (8) barely knows them as they are.
    cfg = dataclasses.replace(DEFAULT_CONFIG, samples_per_symbol=16, frame_len=256)
    x = generate_frames(A, 32, 30, rng=1, config=cfg).reshape(-1)
    meta = _sigmf(tmp_path, "sps16", x)
    plain = classify_with_student(meta, progress=False)
    r = classify_with_student(meta, symbol_rate=RATE / 16, progress=False)
    assert r.resample == (1, 2) and r.n_frames == len(x) // 256
    np.testing.assert_array_equal(r.starts, np.arange(r.n_frames) * 256)
    np.testing.assert_array_equal(r.lengths, 256)  # frames cover the recording back to back
    labels, conf = _direct(model, resample_poly(x, 1, 2).astype(np.complex64), np.arange(r.n_frames) * 128, 128)
    assert r.labels == labels
    np.testing.assert_allclose(r.confidence, conf, atol=1e-5)
    assert r.labels.count(A) >= 0.9 * r.n_frames > plain.labels.count(A)
    _check_segments(r)

    # A ratio that does not divide evenly (16/23) and an odd hop: offsets stay inside the
    # recording, frames stay in order, and the chunking still changes nothing.
    odd = classify_with_student(meta, symbol_rate=RATE / 11.5, hop=50, progress=False)
    assert odd.resample == (16, 23)
    out_starts = np.arange(odd.n_frames) * 50
    np.testing.assert_array_equal(odd.starts, out_starts * 23 // 16)  # the block's mapping: floor
    ends = odd.starts + odd.lengths
    assert odd.starts[0] == 0 and np.all(np.diff(odd.starts) > 0) and np.all(np.diff(ends) > 0)
    assert ends[-1] <= len(x) and np.all(np.abs(odd.lengths - 128 * 23 / 16) <= 1)
    _same(odd, classify_with_student(meta, symbol_rate=RATE / 11.5, hop=50, chunk_samples=999, progress=False))
    _check_segments(odd)


def test_memory_stays_bounded_on_a_large_file(tmp_path, recordings):
    write_outputs(classify_with_student(recordings["sigmf"], progress=False), plot=tmp_path / "warm.png",
                  meta_out=tmp_path / "warm.sigmf-meta")  # imports (matplotlib, fonts) are not the file's cost
    path = tmp_path / "big.sigmf-data"
    rng = np.random.default_rng(0)
    with open(path, "wb") as fp:
        for _ in range(25):  # 25 x 2 MB = 50 MB of cf32 noise
            fp.write((rng.standard_normal(2**19, dtype=np.float32) * 0.1).tobytes())
    (tmp_path / "big.sigmf-meta").write_text(json.dumps(
        {"global": {"core:datatype": "cf32_le", "core:sample_rate": RATE, "core:version": "1.2.0"},
         "captures": [{"core:sample_start": 0}], "annotations": []}))
    size = os.path.getsize(path)
    tracemalloc.start()
    try:
        # a wide hop keeps the model's share of the time small; every sample is still read
        r = classify_with_student(tmp_path / "big.sigmf-meta", hop=32 * 128, chunk_samples=1 << 18, progress=False)
        write_outputs(r, plot=False)
        classify_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        out = write_outputs(r)  # + a second pass for the spectrogram and the figure
        plot_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.n_frames == (size // 8 - 128) // (32 * 128) + 1 and out["plot"].is_file()
    # reading, framing, classifying, merging: a few chunks of 2 MB, whatever the file's size;
    # a matplotlib figure costs ~15 MB
    chunk_bytes = (1 << 18) * 8
    assert classify_peak < 4 * chunk_bytes, f"classify: peak {classify_peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB file"
    assert plot_peak < size / 2, f"plot: peak {plot_peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB file"


def test_cli(tmp_path, signal, capsys):
    meta = _sigmf(tmp_path, "cli", signal)
    assert main(["classify", str(meta), "--no-progress", "--hop", "64", "--min-confidence", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "class" in out.splitlines()[0] and A in out
    assert f"wrote {tmp_path / 'cli.modrec.sigmf-meta'}" in out and f"wrote {tmp_path / 'cli.modrec.png'}" in out

    raw = tmp_path / "cli.cf32"
    signal.tofile(raw)
    assert main(["classify", str(raw), "--format", "cf32_le", "--no-progress", "--no-plot"]) == 2
    assert "error:" in (err := capsys.readouterr().err) and "--rate" in err
    assert main(["classify", str(tmp_path / "missing.sigmf-meta"), "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["classify", str(meta), "--model", str(tmp_path / "none.onnx"), "--no-progress"]) == 2
    assert "none.onnx" in capsys.readouterr().err
    assert main(["classify", str(raw), "--format", "cf32_le", "--rate", "1e6", "--no-progress",
                 "--meta-out", str(tmp_path / "r.sigmf-meta"), "--plot", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.sigmf-meta").is_file() and (tmp_path / "r.png").is_file()


def test_cli_runs_without_torch(tmp_path, signal):
    meta = _sigmf(tmp_path, "nt", signal)
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from gnuradio.modrec.training.cli import main\n"
        f"rc = main(['classify', {str(meta)!r}, '--no-progress'])\n"
        "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n"
        "sys.exit(rc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert A in done.stdout
    assert (tmp_path / "nt.modrec.sigmf-meta").is_file() and (tmp_path / "nt.modrec.png").is_file()


@pytest.mark.parametrize("symbol_rate, hop", [(None, 0), (RATE / 16, 0), (RATE / 6, 100)])
def test_flowgraph_and_command_line_give_the_same_decisions(tmp_path, signal, symbol_rate, hop):
    """modrec classify and modrec.classifier on the same capture: same frames, offsets, classes."""
    from gnuradio import blocks, gr
    import pmt

    from gnuradio.modrec.classifier import classifier

    raw = tmp_path / "capture.cfile"
    signal.astype(np.complex64).tofile(raw)
    offline = classify_recording(raw, sample_rate=RATE, symbol_rate=symbol_rate, hop=hop or None, progress=False)
    tb = gr.top_block()
    src = blocks.file_source(gr.sizeof_gr_complex, str(raw), False)
    clf = classifier(hop=hop, sample_rate=RATE, symbol_rate=symbol_rate or 0.0)
    snk = blocks.vector_sink_c()
    tb.connect(src, clf, snk)
    tb.run()
    seen = [t for t in snk.tags() if pmt.symbol_to_string(t.key) == "modrec"]
    np.testing.assert_array_equal(np.array(snk.data(), np.complex64), signal)  # untouched
    values = [pmt.to_python(t.value) for t in seen]
    assert [t.offset for t in seen] == offline.starts.tolist()
    assert [v["class"] for v in values] == offline.labels  # noise and unknown included
    np.testing.assert_allclose([v["confidence"] for v in values], offline.confidence, atol=1e-5)
    # the tag's frame_len is the frame's span in input samples, what the annotations use
    spans = np.minimum([v["frame_len"] for v in values], len(signal) - offline.starts)
    np.testing.assert_array_equal(spans, offline.lengths)
    del tb, src, clf, snk


def test_a_recording_at_the_wrong_oversampling_is_unknown_and_the_command_line_says_why(tmp_path, capsys):
    from gnuradio.modrec.runtime.oversampling import WINDOW_LEN

    cfg = dataclasses.replace(DEFAULT_CONFIG, frame_len=3 * WINDOW_LEN, samples_per_symbol=4, sps_jitter=0.0,
                              fading_prob=0.0, rolloff_range=(0.35, 0.35))
    x = generate_frames("QPSK", 1, 20, rng=4, config=cfg, random_gain=False)[0]
    meta = _sigmf(tmp_path, "qpsk4", x)
    r = classify_recording(meta, progress=False)  # the default model
    judged = r.starts + r.lengths >= WINDOW_LEN
    assert np.isnan(r.sps_estimate[~judged]).all() and not r.sps_mismatch[~judged].any()
    np.testing.assert_allclose(r.sps_estimate[judged], 4, rtol=0.05)
    assert r.sps_mismatch[judged].all()
    labels = np.array(r.labels)
    assert (labels[judged] == UNKNOWN_CLASS).all() and UNKNOWN_CLASS not in labels[~judged]
    off = classify_recording(meta, progress=False, check_oversampling=False)
    assert not off.sps_mismatch.any() and np.isnan(off.sps_estimate).all()
    assert (np.array(off.labels)[judged] != UNKNOWN_CLASS).mean() > 0.5  # confident nonsense without the check
    assert main(["classify", str(meta), "--no-plot", "--no-progress"]) in (0, None)
    err = capsys.readouterr().err
    assert f"{int(judged.sum())} of {r.n_frames} frames are 'unknown'" in err and "4.0 samples per symbol" in err
    assert f"give --symbol-rate (it looks like {RATE / 4:g} Hz)" in err
    assert f"the first {int((~judged).sum())} frames end inside the first {WINDOW_LEN}-sample window" in err
    # a wrong symbol rate given: the message says which one the stream shows
    assert main(["classify", str(meta), "--no-plot", "--no-progress", "--symbol-rate", str(RATE / 8)]) in (0, None)
    assert f"the symbol rate looks like {RATE / 4:g} Hz" in capsys.readouterr().err
    # too short to be checked: said so
    short = _sigmf(tmp_path, "short", x[: WINDOW_LEN // 2])
    assert main(["classify", str(short), "--no-plot", "--no-progress"]) in (0, None)
    assert "the oversampling was not checked" in capsys.readouterr().err


@pytest.mark.parametrize("n_classes", [2, 9, 11, 12, 18])
def test_the_timeline_gives_no_class_the_unknown_grey_and_no_two_classes_one_colour(n_classes):
    from types import SimpleNamespace

    from gnuradio.modrec.classes import UNKNOWN_CLASS
    from gnuradio.modrec.runtime.timeline import _colours

    colours = _colours(SimpleNamespace(classes=[f"c{i}" for i in range(n_classes)]))
    grey = np.array(colours.pop(UNKNOWN_CLASS)[:3])
    rgb = np.array([c[:3] for c in colours.values()])
    assert len({tuple(c) for c in rgb}) == n_classes
    # a grey has equal channels: no class colour is one
    assert (np.ptp(rgb, axis=1) > 0.1).all() and (np.abs(rgb - grey).max(axis=1) > 0.1).all()
