"""runtime.annotations: merging classifier decisions and writing them as SigMF annotations."""

import hashlib
import json
import os
import warnings

import numpy as np
import pytest
import sigmf
from sigmf import sigmffile

from gnuradio.modrec.classes import UNKNOWN_CLASS
from gnuradio.modrec.runtime.annotations import (
    MODREC_EXTENSION,
    Decision,
    Segment,
    annotation_metadata,
    merge_decisions,
    write_annotations,
)

L = 128


def frames(labels, hop=L, length=L, confidence=0.5, start=0):
    return [Decision(start + i * hop, length, label, confidence) for i, label in enumerate(labels)]


def spans(segments):
    return [(s.start, s.count, s.label, s.frames) for s in segments]


# --- Decision -------------------------------------------------------------------------------


def test_decision_accepts_numpy_integers_and_rejects_bad_fields():
    d = Decision(np.int64(5), np.uint32(L), "BPSK", np.float32(0.25))
    assert (d.start, d.length, d.confidence) == (5, L, 0.25) and type(d.start) is int
    for kwargs, field in [
        (dict(start=-1), "start"),
        (dict(start=1.5), "start"),
        (dict(length=0), "length"),
        (dict(label=""), "label"),
        (dict(label=None), "label"),
        (dict(confidence=float("nan")), "confidence"),
        (dict(confidence=1.5), "confidence"),
        (dict(confidence=True), "confidence"),
    ]:
        args = dict(start=0, length=L, label="BPSK", confidence=0.5) | kwargs
        with pytest.raises(ValueError, match=field):
            Decision(**args)


# --- merge_decisions ------------------------------------------------------------------------


def test_adjacent_same_label_frames_merge():
    segs = merge_decisions(frames(["QPSK"] * 4, confidence=0.5) + [Decision(4 * L, L, "QPSK", 0.9)])
    assert spans(segs) == [(0, 5 * L, "QPSK", 5)]
    assert segs[0].mean_confidence == pytest.approx((4 * 0.5 + 0.9) / 5)


def test_overlapping_same_label_frames_merge_to_the_furthest_end():
    segs = merge_decisions(frames(["BPSK"] * 5, hop=L // 2))
    assert spans(segs) == [(0, 4 * (L // 2) + L, "BPSK", 5)]


def test_gap_splits_unless_max_gap_covers_it():
    decisions = frames(["GFSK"] * 3, hop=L + 10)  # 10-sample gaps between frames
    assert spans(merge_decisions(decisions)) == [(0, L, "GFSK", 1), (L + 10, L, "GFSK", 1), (2 * L + 20, L, "GFSK", 1)]
    assert spans(merge_decisions(decisions, max_gap=9)) == spans(merge_decisions(decisions))
    assert spans(merge_decisions(decisions, max_gap=10)) == [(0, 3 * L + 20, "GFSK", 3)]


def test_alternating_labels_never_merge():
    segs = merge_decisions(frames(["AM-DSB", "WBFM", "AM-DSB", "WBFM"]))
    assert spans(segs) == [(i * L, L, label, 1) for i, label in enumerate(["AM-DSB", "WBFM", "AM-DSB", "WBFM"])]


def test_overlapping_frames_of_different_labels_give_overlapping_segments():
    segs = merge_decisions(frames(["BPSK", "BPSK", "QPSK", "QPSK"], hop=L // 2))
    assert spans(segs) == [(0, L // 2 + L, "BPSK", 2), (L, L // 2 + L, "QPSK", 2)]


def test_unsorted_input_is_sorted_first():
    ordered = frames(["8PSK", "8PSK", "CPFSK", "CPFSK", "8PSK"])
    shuffled = [ordered[i] for i in (3, 0, 4, 2, 1)]
    assert merge_decisions(shuffled) == merge_decisions(ordered)
    assert spans(merge_decisions(shuffled)) == [(0, 2 * L, "8PSK", 2), (2 * L, 2 * L, "CPFSK", 2), (4 * L, L, "8PSK", 1)]


def test_unknown_segments_are_kept_and_empty_input_gives_nothing():
    segs = merge_decisions(frames(["QAM16", UNKNOWN_CLASS, UNKNOWN_CLASS, "QAM16"]))
    assert spans(segs) == [(0, L, "QAM16", 1), (L, 2 * L, UNKNOWN_CLASS, 2), (3 * L, L, "QAM16", 1)]
    assert merge_decisions([]) == []


def test_merge_rejects_bad_input():
    with pytest.raises(ValueError, match="max_gap"):
        merge_decisions([], max_gap=-1)
    with pytest.raises(ValueError, match=r"decisions\[1\]"):
        merge_decisions([frames(["BPSK"])[0], (0, L, "BPSK", 0.5)])


# --- annotation_metadata --------------------------------------------------------------------


def test_annotation_dicts_and_extension_declaration():
    segs = [Segment(L, 2 * L, "QPSK", 0.75, 2), Segment(0, L, "BPSK", 0.5, 1)]
    md = annotation_metadata(segs, 1e6, "cnn3.onnx")
    assert md["global"] == {"core:sample_rate": 1e6, "core:extensions": [MODREC_EXTENSION]}
    assert MODREC_EXTENSION == {"name": "modrec", "version": "1.0.0", "optional": True}
    assert md["annotations"] == [
        {"core:sample_start": 0, "core:sample_count": L, "core:label": "BPSK",
         "modrec:confidence": 0.5, "modrec:frames": 1, "modrec:model": "cnn3.onnx"},
        {"core:sample_start": L, "core:sample_count": 2 * L, "core:label": "QPSK",
         "modrec:confidence": 0.75, "modrec:frames": 2, "modrec:model": "cnn3.onnx"},
    ]
    assert "modrec:model" not in annotation_metadata(segs, 1e6, "")["annotations"][0]
    with pytest.raises(ValueError, match="sample_rate"):
        annotation_metadata(segs, 0, "m")
    with pytest.raises(ValueError, match=r"segments\[0\]"):
        annotation_metadata([object()], 1e6, "m")


# --- write_annotations ----------------------------------------------------------------------


@pytest.fixture
def recording(tmp_path):
    path = tmp_path / "capture.cfile"
    (np.arange(16 * L) * (1 + 1j)).astype(np.complex64).tofile(path)
    return path


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(meta):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. an undeclared extension namespace
        handle = sigmffile.fromfile(meta)
        handle.validate()
    return handle


def test_round_trip_with_a_non_conforming_dataset(tmp_path, recording):
    before = sha(recording)
    mtime = recording.stat().st_mtime_ns
    segs = merge_decisions(frames(["BPSK", "BPSK", UNKNOWN_CLASS, "QPSK"], confidence=0.8))
    digest = hashlib.sha512(recording.read_bytes()).hexdigest()  # sigmf checks it on load
    base = {"core:author": "lab", "core:datatype": "cf32_le", "core:hw": "usrp", "core:sha512": digest,
            "core:extensions": [{"name": "other", "version": "2.0.0", "optional": True}]}
    meta = write_annotations(tmp_path / "capture.sigmf-meta", segs, 2e6, "mobilenet1d-skd.onnx",
                             data_path=recording, base_global=base, center_frequency=915e6)
    assert meta == tmp_path / "capture.sigmf-meta"
    handle = load(meta)
    glob = handle.get_global_info()
    assert glob["core:dataset"] == "capture.cfile"
    assert handle.data_file == recording  # sigmf found the .cfile through core:dataset
    assert np.array_equal(handle.read_samples(0, 4), (np.arange(4) * (1 + 1j)).astype(np.complex64))
    assert (glob["core:sample_rate"], glob["core:datatype"], glob["core:author"], glob["core:hw"]) == (2e6, "cf32_le", "lab", "usrp")
    assert glob["core:sha512"] == digest
    assert glob["core:extensions"] == [{"name": "other", "version": "2.0.0", "optional": True}, MODREC_EXTENSION]
    assert handle.get_captures() == [{"core:sample_start": 0, "core:frequency": 915e6}]
    anns = handle.get_annotations()
    assert [(a["core:sample_start"], a["core:sample_count"], a["core:label"], a["modrec:frames"]) for a in anns] == [
        (0, 2 * L, "BPSK", 2), (2 * L, L, UNKNOWN_CLASS, 1), (3 * L, L, "QPSK", 1)]
    assert all(a["modrec:confidence"] == pytest.approx(0.8) and a["modrec:model"] == "mobilenet1d-skd.onnx" for a in anns)
    # The data file was never written to.
    assert sha(recording) == before and recording.stat().st_mtime_ns == mtime


def test_conforming_dataset_has_no_core_dataset(tmp_path):
    data = tmp_path / "rec.sigmf-data"
    np.zeros(4 * L, np.complex64).tofile(data)
    before = sha(data)
    meta = write_annotations(tmp_path / "rec.sigmf-meta", merge_decisions(frames(["WBFM"] * 4)), 1e6, "m",
                             data_path=data, base_global={"core:dataset": "stale.bin"})
    handle = load(meta)
    assert "core:dataset" not in handle.get_global_info()
    assert handle.data_file == data and handle.sample_count == 4 * L
    assert sha(data) == before


def test_a_sigmf_data_file_with_another_base_is_non_conforming(tmp_path):
    data = tmp_path / "other.sigmf-data"
    np.zeros(L, np.complex64).tofile(data)
    meta = write_annotations(tmp_path / "rec.sigmf-meta", [], 1e6, "m", data_path=data)
    assert load(meta).get_global_info()["core:dataset"] == "other.sigmf-data"


def test_metadata_only_and_given_captures(tmp_path):
    captures = [{"core:sample_start": 0, "core:frequency": 1e9}, {"core:sample_start": 2 * L, "core:frequency": 2e9}]
    meta = write_annotations(tmp_path / "m.sigmf-meta", merge_decisions(frames(["BPSK"] * 4)), 1e6, "",
                             captures=captures)
    handle = load(meta)
    assert handle.data_file is None and "core:dataset" not in handle.get_global_info()
    assert handle.get_captures() == captures
    assert "modrec:model" not in handle.get_annotations()[0]


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path, recording):
    meta = tmp_path / "capture.sigmf-meta"
    meta.write_text("old, not even JSON")
    write_annotations(meta, merge_decisions(frames(["BPSK"])), 1e6, "m", data_path=recording)
    write_annotations(meta, merge_decisions(frames(["QPSK", "QPSK"])), 1e6, "m", data_path=recording)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capture.cfile", "capture.sigmf-meta"]
    assert [a["core:label"] for a in json.loads(meta.read_text())["annotations"]] == ["QPSK"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    meta = tmp_path / "x.sigmf-meta"
    meta.write_text("previous")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_annotations(meta, [], 1e6, "m")
    assert meta.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["x.sigmf-meta"]


def test_bad_arguments_raise_before_writing(tmp_path, recording):
    segs = merge_decisions(frames(["BPSK"]))
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    cases = [
        (dict(meta_path=tmp_path / "capture.json"), "meta_path"),
        (dict(meta_path=""), "meta_path"),
        (dict(meta_path=tmp_path), "meta_path"),
        (dict(sample_rate=-1.0), "sample_rate"),
        (dict(data_path=elsewhere / "capture.cfile"), "data_path"),
        (dict(data_path=tmp_path / "capture.sigmf-meta"), "data_path"),
        (dict(base_global={"core:sample_rate": 2e6}), "core:sample_rate"),
        (dict(base_global={"core:datatype": "ci16_le"}), "core:datatype"),
        (dict(base_global=[1]), "base_global"),
        (dict(captures=[{"core:sample_start": 0}], center_frequency=1e6), "captures"),
        (dict(captures=[{"frequency": 1}]), "captures"),
        (dict(datatype="complex64"), "does not validate"),  # not a SigMF datatype: the schema says so
    ]
    for kwargs, message in cases:
        args = dict(meta_path=tmp_path / "capture.sigmf-meta", segments=segs, sample_rate=1e6, model_name="m",
                    data_path=recording) | kwargs
        with pytest.raises(ValueError, match=message):
            write_annotations(**args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capture.cfile", "sub"]


def test_written_file_passes_the_sigmf_validator_command(tmp_path, recording):
    # sigmf's own CLI entry point, as a user would run it.
    from sigmf import validate

    meta = write_annotations(tmp_path / "capture.sigmf-meta", merge_decisions(frames(["BPSK"] * 3)), 1e6, "m",
                             data_path=recording)
    assert validate.main([str(meta)]) in (None, 0)
    assert sigmf.__version__ == "1.14.0"
