"""Data sources: RadioML 2016 pickles (read without running code), RadioML 2018 HDF5 (in chunks),
labelled SigMF recordings and built datasets behind one interface; splits; bad files."""

import json
import pickle
import tracemalloc

import numpy as np
import pytest

from gnuradio.modrec.classes import RADIOML2018_CLASSES, canonical_class_name
from gnuradio.modrec.training.data.safe_pickle import UnsafePickleError, load_restricted
from gnuradio.modrec.training.data.source import ALL_SPLIT, DataSourceError, assign_splits, parse_split_scheme
from gnuradio.modrec.training.data.sources import detect_kind, open_source
from real_input_files import write_labelled_sigmf, write_rml2016, write_rml2018

RML16_CLASSES = ["8PSK", "AM-DSB", "BPSK", "QPSK", "WBFM"]  # sorted, as the file's own order
SNRS = [-10, 0, 10, 18]


@pytest.fixture(scope="module")
def rml2016(tmp_path_factory):
    path = tmp_path_factory.mktemp("rml") / "RML2016.10a_dict.pkl"
    data = write_rml2016(path, RML16_CLASSES, SNRS, per_key=20)
    return path, data


@pytest.fixture(scope="module")
def rml2018(tmp_path_factory):
    path = tmp_path_factory.mktemp("rml") / "GOLD_XYZ_OSC.0001_1024.hdf5"
    classes = ["OOK", "BPSK", "QPSK", "16QAM"]
    x, y, z = write_rml2018(path, ["BPSK", "BPSK", "QPSK", "QAM16"], [-10, 10], per_key=12, frame_len=256)
    return path, classes, x, y, z


# ----------------------------------------------------------------------------- RadioML 2016


def test_rml2016_pickle_written_like_python2_is_read_with_its_classes_and_frames(rml2016):
    path, data = rml2016
    assert pickle.PROTO + b"\x02" == path.read_bytes()[:2] and b"numpy.core.multiarray" in path.read_bytes()
    src = open_source(path)  # kind detected from the first bytes
    assert src.kind == "rml2016" and src.classes == tuple(RML16_CLASSES) and src.frame_len == 128
    assert src.samples_per_symbol == 8
    everything = src.load(ALL_SPLIT)
    assert len(everything) == len(RML16_CLASSES) * len(SNRS) * 20
    for (cls, snr), frames in data.items():
        sel = (everything.y == RML16_CLASSES.index(cls)) & (everything.snr_db == snr)
        np.testing.assert_array_equal(everything.x[sel], frames)


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "RML2016.10a_dict.pkl"
    bad.write_bytes(pickle.dumps({("BPSK", 0): Payload()}, protocol=2))
    # the same bytes run the payload when unpickled the ordinary way (so the test can fail)
    probe = tmp_path / "probe.pkl"
    probe.write_bytes(bad.read_bytes().replace(str(marker).encode(), str(tmp_path / "probe").encode()))
    pickle.loads(probe.read_bytes())
    assert (tmp_path / "probe").exists()

    with pytest.raises(UnsafePickleError, match=r"RML2016.10a_dict.pkl: refused to load global '(posix|os)\.system'"):
        load_restricted(bad)
    with pytest.raises(DataSourceError, match="refused to load global"):
        open_source(f"rml2016:{bad}")
    assert not marker.exists()

    # builtins reached through the restricted loader are refused too (eval, getattr, ...)
    sneaky = b"\x80\x02cbuiltins\neval\nq\x00X\x0b\x00\x00\x001+1\x85q\x01Rq\x02."
    evil = tmp_path / "eval.pkl"
    evil.write_bytes(sneaky)
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        load_restricted(evil)


@pytest.mark.parametrize("content, expected", [
    (b"\x80\x02}q\x00(X", "not a readable pickle"),  # truncated download
    (pickle.dumps([1, 2, 3], protocol=2), "expected a non-empty dict"),
    (pickle.dumps({"BPSK": np.zeros((2, 2, 8), np.float32)}, protocol=2), r"key 'BPSK': expected \(modulation name"),
    (pickle.dumps({("BPSK", 0): np.zeros((2, 3, 8), np.float32)}, protocol=2), r"expected an array \(N, 2, frame_len\), found \(2, 3, 8\)"),
    (pickle.dumps({("BPSK", 0): np.zeros((2, 2, 8), np.int16)}, protocol=2), "expected float32 frames, found dtype int16"),
    (pickle.dumps({("BPSK", 0): np.zeros((2, 2, 8), np.float32), ("QPSK", 0): np.zeros((2, 2, 16), np.float32)},
                  protocol=2), "frames of 16 samples, but earlier entries have 8"),
])
def test_bad_rml2016_files_name_the_file_and_the_problem(tmp_path, content, expected):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(DataSourceError, match=expected) as err:
        open_source(f"rml2016:{path}")
    assert str(path) in str(err.value)


def test_rml2010b_style_file_has_the_classes_it_holds(tmp_path):
    path = tmp_path / "RML2016.10b.dat"
    write_rml2016(path, ["8PSK", "BPSK", "QPSK"], [0], per_key=3)
    assert open_source(path).classes == ("8PSK", "BPSK", "QPSK")


# ----------------------------------------------------------------------------- splits


def test_split_schemes_parse_and_bad_ones_are_refused():
    assert parse_split_scheme("60/20/20") == {"train": 0.6, "val": 0.2, "test": 0.2}
    assert parse_split_scheme("50/50") == {"train": 0.5, "test": 0.5}
    for bad in ("60/20", "50/50/50", "a/b", "100", "0/50/50"):
        with pytest.raises(DataSourceError, match="percentages"):
            parse_split_scheme(bad)


def test_splits_are_stratified_deterministic_and_disjoint(rml2016):
    path, _ = rml2016
    src = open_source(path, split="60/20/20", seed=7)
    parts = {name: src.load(name) for name in ("train", "val", "test")}
    assert {k: len(v) for k, v in parts.items()} == {"train": 240, "val": 80, "test": 80}
    for name, frac in (("train", 12), ("val", 4), ("test", 4)):  # per (class, SNR) of 20 frames
        d = parts[name]
        for c in range(len(RML16_CLASSES)):
            for s in SNRS:
                assert ((d.y == c) & (d.snr_db == s)).sum() == frac
    # disjoint and together the whole file
    keys = [tuple(np.round(x[0, :4], 6)) for d in parts.values() for x in d.x]
    assert len(set(keys)) == 400
    again = open_source(path, split="60/20/20", seed=7).load("test")
    np.testing.assert_array_equal(again.x, parts["test"].x)
    other = open_source(path, split="60/20/20", seed=8).load("test")
    assert not np.array_equal(other.x, parts["test"].x)
    # 50/50 has no val split, and says so
    with pytest.raises(DataSourceError, match="training needs a val split"):
        open_source(path, split="50/50").load("val")


def test_split_of_a_group_does_not_depend_on_the_other_groups():
    y = np.repeat([0, 1], 50)
    snr = np.zeros(100)
    a = assign_splits(y, snr, ["A", "B"], parse_split_scheme("50/50"), seed=1)
    b = assign_splits(y[:50], snr[:50], ["A", "B"], parse_split_scheme("50/50"), seed=1)
    np.testing.assert_array_equal(a[:50], b)
    limited = assign_splits(y, snr, ["A", "B"], parse_split_scheme("50/50"), seed=1, limit=10)
    assert (limited >= 0).sum() == 20 and (limited == -1).sum() == 80


# ----------------------------------------------------------------------------- RadioML 2018


def test_rml2018_reads_layout_classes_and_snrs(rml2018):
    path, classes, x, y, z = rml2018
    src = open_source(path, classes=classes)
    assert src.kind == "rml2018" and src.frame_len == 256 and src.classes == tuple(classes)
    every = src.load(ALL_SPLIT)
    np.testing.assert_array_equal(every.x, x)
    np.testing.assert_array_equal(every.y, y)
    np.testing.assert_array_equal(every.snr_db, z)
    streamed = list(src.iter_split("test", frames=5))
    assert max(len(c) for c in streamed) == 5
    np.testing.assert_array_equal(np.concatenate([c.x for c in streamed]), src.load("test").x)
    assert src.record()["classes"] == classes and open_source(src.record()).classes == tuple(classes)


def test_rml2018_default_class_order_is_the_corrected_one(tmp_path):
    path = tmp_path / "full.hdf5"
    write_rml2018(path, ["BPSK"], [0], per_key=2, frame_len=64, n_columns=24)
    src = open_source(f"rml2018:{path}")
    assert src.classes == RADIOML2018_CLASSES and src.classes[:4] == ("OOK", "4ASK", "8ASK", "BPSK")
    assert "classes" not in src.record()
    from gnuradio.modrec.classes import RADIOML2018_CLASSES_TXT

    with pytest.warns(UserWarning, match="classes.txt"):
        open_source(path, classes=list(RADIOML2018_CLASSES_TXT))


def test_rml2018_bad_files_are_named(tmp_path):
    import h5py

    path = tmp_path / "bad.hdf5"
    with h5py.File(path, "w") as f:
        f["X"] = np.zeros((4, 64, 2), np.float32)
        f["Y"] = np.eye(4, 3)
        f["Z"] = np.zeros((4, 1))
    with pytest.raises(DataSourceError, match=r"Y has 3 columns, but the class list has 24"):
        open_source(path)
    with pytest.raises(DataSourceError, match=r"names one class twice \(16QAM, QAM16"):
        open_source(path, classes=["16QAM", "QAM16", "BPSK"])
    with pytest.raises(DataSourceError, match=r"dataset Y row 3: expected a one-hot row"):
        open_source(path, classes=["A", "B", "C"]).load(ALL_SPLIT)
    with h5py.File(path, "w") as f:
        f["X"] = np.zeros((4, 2, 64), np.float32)
    with pytest.raises(DataSourceError, match=r"lacks dataset\(s\) Y, Z"):
        open_source(f"rml2018:{path}")
    with h5py.File(path, "w") as f:
        f["X"], f["Y"], f["Z"] = np.zeros((4, 64, 3), np.float32), np.eye(4), np.zeros((4, 1))
    with pytest.raises(DataSourceError, match=r"dataset X: expected shape \(N, frame_len, 2\), found \(4, 64, 3\)"):
        open_source(path, classes=list("ABCD"))


def test_rml2018_streaming_keeps_memory_far_below_the_file(tmp_path):
    import h5py

    path = tmp_path / "big.hdf5"
    n, L = 24 * 1024, 1024  # 192 MB of X, the 2018.01A layout
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        xds = f.create_dataset("X", (n, L, 2), np.float32)
        for s in range(0, n, 4096):
            xds[s : s + 4096] = rng.standard_normal((4096, L, 2), np.float32)
        onehot = np.zeros((n, 24), np.int64)
        onehot[np.arange(n), np.arange(n) % 24] = 1
        f["Y"], f["Z"] = onehot, np.repeat(np.arange(-20, 20, 2), n // 20 + 1)[:n].reshape(-1, 1)
    src = open_source(path)
    tracemalloc.start()
    total = 0
    for chunk in src.iter_split(ALL_SPLIT, frames=2048):
        total += float(chunk.x[:, 0, 0].sum())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # a chunk of output (16 MiB), one HDF5 read (16 MiB) and its transpose: the same for the 21 GB file
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB while streaming a {path.stat().st_size / 2**20:.0f} MiB file"


# ----------------------------------------------------------------------------- SigMF, synthetic, detection


def test_labelled_sigmf_recording_is_a_source(tmp_path):
    x, labels = write_labelled_sigmf(tmp_path / "rec", [("BPSK", 10), ("QPSK", 6), ("BPSK", 4)])
    src = open_source(tmp_path / "rec.sigmf-meta")
    assert src.kind == "sigmf" and src.classes == ("BPSK", "QPSK") and src.frame_len == 128
    every = src.load(ALL_SPLIT)
    np.testing.assert_allclose(every.x, x, atol=1e-6)
    assert [src.classes[i] for i in every.y] == labels and np.isnan(every.snr_db).all()
    with pytest.raises(DataSourceError, match="QPSK"):
        open_source(tmp_path / "rec.sigmf-meta", classes=["BPSK", "8PSK"])


def test_kind_detection_and_spec_errors(tmp_path, rml2016):
    path, _ = rml2016
    assert detect_kind(path) == "rml2016"
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"GARBAGE!")
    with pytest.raises(DataSourceError, match=r"junk.bin: cannot tell the data format .*rml2016"):
        open_source(junk)
    with pytest.raises(DataSourceError, match="no such file"):
        open_source(tmp_path / "missing.pkl")
    with pytest.raises(DataSourceError, match="do not apply to a rml2016 source"):
        open_source(path, classes=["A"])


def test_class_names_match_across_spellings():
    assert canonical_class_name("16QAM") == canonical_class_name("QAM16") == canonical_class_name("qam-16")
    assert canonical_class_name("AM-DSB") != canonical_class_name("AM-DSB-SC")
    assert canonical_class_name("8PSK") == canonical_class_name("PSK8")


def test_a_recording_without_labels_is_no_training_data(tmp_path):
    write_labelled_sigmf(tmp_path / "rec", [("BPSK", 2)])
    meta = tmp_path / "rec.sigmf-meta"
    raw = json.loads(meta.read_text())
    raw["annotations"] = []
    meta.write_text(json.dumps(raw))
    with pytest.raises(DataSourceError, match=r"rec.sigmf-meta: no annotation carries core:label.*modrec classify"):
        open_source(meta)
    with pytest.raises(DataSourceError, match="has its own splits"):
        open_source(f"synthetic:{_built_dataset(tmp_path)}", split="50/50")


def _built_dataset(tmp_path):
    from gnuradio.modrec.training.data import GeneratorConfig, build_dataset

    root = tmp_path / "synth"
    build_dataset(root, GeneratorConfig(classes=("BPSK", "QPSK"), snrs_db=(0.0,)), splits={"train": 2, "val": 1},
                  progress=False)
    return root
