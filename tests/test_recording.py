"""Reading users' recordings: SigMF and raw captures, bounded chunks, labelled segments, errors."""

import json

import numpy as np
import pytest
import sigmf

from gnuradio.modrec.runtime.recording import (
    Recording,
    RecordingError,
    Segment,
    frames_from_segments,
    open_recording,
)

N = 1000
RATE = 2.4e6


def _payload(datatype, n=N, seed=0):
    """(bytes as written, complex64 values they must read back as) for a datatype."""
    rng = np.random.default_rng(seed)
    if datatype == "cf32_le":
        z = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype("<c8")
        return z.tobytes(), z.astype(np.complex64)
    if datatype == "ci16_le":
        raw = rng.integers(-32768, 32768, 2 * n).astype("<i2")
        return raw.tobytes(), (raw[0::2] / 32768 + 1j * (raw[1::2] / 32768)).astype(np.complex64)
    if datatype == "ci8":
        raw = rng.integers(-128, 128, 2 * n).astype(np.int8)
        return raw.tobytes(), (raw[0::2] / 128 + 1j * (raw[1::2] / 128)).astype(np.complex64)
    if datatype == "cu8":
        raw = rng.integers(0, 256, 2 * n).astype(np.uint8)
        v = raw.astype(np.float64) - 128
        return raw.tobytes(), (v[0::2] / 128 + 1j * (v[1::2] / 128)).astype(np.complex64)
    raise AssertionError(datatype)


def _write_sigmf(tmp_path, name, payload, datatype, annotations=(), frequency=None, rate=RATE):
    """Write <name>.sigmf-data/-meta with the sigmf package; annotations are (start, count, label)."""
    data = tmp_path / f"{name}.sigmf-data"
    data.write_bytes(payload)
    sf = sigmf.SigMFFile(data_file=str(data), global_info={sigmf.DATATYPE_KEY: datatype, sigmf.SAMPLE_RATE_KEY: rate})
    sf.add_capture(0, metadata={sigmf.FREQUENCY_KEY: frequency} if frequency is not None else {})
    for start, count, label in annotations:
        sf.add_annotation(start, count, metadata={sigmf.LABEL_KEY: label} if label else {})
    sf.tofile(tmp_path / name)
    return tmp_path / f"{name}.sigmf-meta"


def _edit_meta(meta, edit):
    doc = json.loads(meta.read_text())
    edit(doc)
    meta.write_text(json.dumps(doc))


def _raises(call, *needles):
    with pytest.raises(RecordingError) as info:
        call()
    message = str(info.value)
    for needle in needles:
        assert str(needle) in message, f"{needle!r} not in {message!r}"
    return message


DATATYPES = ["cf32_le", "ci16_le", "ci8", "cu8"]


@pytest.mark.parametrize("datatype", DATATYPES)
def test_sigmf_values_and_fields(tmp_path, datatype):
    payload, expected = _payload(datatype)
    meta = _write_sigmf(tmp_path, "rec", payload, datatype, frequency=433.92e6)
    for given in (meta, tmp_path / "rec.sigmf-data", tmp_path / "rec", str(meta)):
        rec = open_recording(given)
        assert rec.path == str(given) and rec.meta_path == str(meta)
        assert rec.data_path == str(tmp_path / "rec.sigmf-data")
        assert (rec.datatype, rec.sample_rate, rec.center_frequency, rec.n_samples) == (datatype, RATE, 433.92e6, N)
        assert rec.global_info["core:datatype"] == datatype and not rec.labelled
        got = rec.read(0, N)
        assert got.dtype == np.complex64 and np.array_equal(got, expected)
        assert np.array_equal(rec.read(123, 7), expected[123:130])
        assert rec.read(N, 0).shape == (0,)


@pytest.mark.parametrize("datatype", DATATYPES)
def test_raw_and_sigmf_read_identically(tmp_path, datatype):
    payload, expected = _payload(datatype, seed=3)
    sig = open_recording(_write_sigmf(tmp_path, "rec", payload, datatype))
    (tmp_path / "capture.bin").write_bytes(payload)
    raw = open_recording(tmp_path / "capture.bin", datatype=datatype, sample_rate=RATE)
    assert raw.meta_path is None and raw.global_info == {} and raw.annotations == [] and not raw.labelled
    assert (raw.datatype, raw.sample_rate, raw.n_samples, raw.center_frequency) == (datatype, RATE, N, None)
    for start, count in ((0, N), (1, 1), (500, 333)):
        a, b = raw.read(start, count), sig.read(start, count)
        assert a.dtype == b.dtype == np.complex64
        assert a.tobytes() == b.tobytes()  # bit for bit, not just close
        assert np.array_equal(a, expected[start : start + count])


def test_cfile_defaults_to_cf32(tmp_path):
    payload, expected = _payload("cf32_le", n=64)
    path = tmp_path / "gr_sink.cfile"
    path.write_bytes(payload)
    rec = open_recording(path, sample_rate=1e6)
    assert rec.datatype == "cf32_le" and rec.n_samples == 64
    assert np.array_equal(rec.read(0, 64), expected)


@pytest.mark.parametrize("chunk,overlap", [(100, 0), (128, 31), (7, 6), (1, 0), (N, 10), (5000, 4999)])
def test_chunks_cover_every_sample_with_overlap(tmp_path, chunk, overlap):
    payload, expected = _payload("ci16_le")
    rec = open_recording(_write_sigmf(tmp_path, "rec", payload, "ci16_le"))
    asked = []
    reader = rec._reader
    rec._reader = lambda s, c: (asked.append(c), reader(s, c))[1]  # spy: never the whole file at once
    chunks = list(rec.iter_chunks(chunk, overlap=overlap))
    assert max(asked) <= chunk
    for start, samples in chunks:
        assert samples.dtype == np.complex64 and 0 < len(samples) <= chunk
        assert np.array_equal(samples, expected[start : start + len(samples)])
    starts = [s for s, _ in chunks]
    assert starts[0] == 0 and chunks[-1][0] + len(chunks[-1][1]) == N
    for (s0, a), (s1, _) in zip(chunks, chunks[1:]):
        assert len(a) == chunk and s0 + chunk - s1 == overlap
    seen = np.zeros(N, dtype=int)
    for start, samples in chunks:
        seen[start : start + len(samples)] += 1
    assert seen.min() >= 1


def test_bad_chunk_arguments_fail_at_call(tmp_path):
    rec = open_recording(_write_sigmf(tmp_path, "rec", _payload("cu8")[0], "cu8"))
    for chunk, overlap in ((0, 0), (10, 10), (10, -1), (2.5, 0)):
        with pytest.raises(ValueError):
            rec.iter_chunks(chunk, overlap)
    _raises(lambda: rec.read(N - 5, 6), "rec.sigmf-data", str(N))
    assert list(Recording("x", "x", None, "cf32_le", 1.0, 0, None).iter_chunks(4)) == []


def test_annotations_become_segments(tmp_path):
    anns = [(0, 300, "bpsk"), (300, 100, None), (400, 600, "qpsk"), (950, 50, "fm")]
    meta = _write_sigmf(tmp_path, "rec", _payload("ci8")[0], "ci8", annotations=anns)
    rec = open_recording(meta)
    assert rec.labelled
    assert rec.annotations == [Segment(0, 300, "bpsk"), Segment(400, 600, "qpsk"), Segment(950, 50, "fm")]
    assert [s.index for s in rec.annotations] == [0, 2, 3]


def test_core_offset_is_subtracted_from_annotation_starts(tmp_path):
    meta = _write_sigmf(tmp_path, "rec", _payload("ci8")[0], "ci8", annotations=[(10, 20, "am")])

    def shift(doc):
        doc["global"]["core:offset"] = 5000
        doc["annotations"][0]["core:sample_start"] = 5010

    _edit_meta(meta, shift)
    assert open_recording(meta).annotations == [Segment(10, 20, "am")]


def test_unlabelled_annotations_are_not_an_error(tmp_path):
    meta = _write_sigmf(tmp_path, "rec", _payload("ci8")[0], "ci8", annotations=[(0, 10, None), (20, 30, None)])
    rec = open_recording(meta)
    assert not rec.labelled and rec.annotations == []
    _raises(lambda: frames_from_segments(rec, 16), "rec.sigmf-meta", "core:label")


def test_frames_from_segments_shapes_labels_and_content(tmp_path):
    payload, expected = _payload("cf32_le")
    anns = [(0, 300, "bpsk"), (300, 100, None), (400, 250, "qpsk"), (900, 60, "fm")]
    rec = open_recording(_write_sigmf(tmp_path, "rec", payload, "cf32_le", annotations=anns))
    x, labels, starts = frames_from_segments(rec, 64)
    # bpsk: 300 // 64 = 4 frames, qpsk: 250 // 64 = 3, fm: 60 < 64 gives none.
    assert x.dtype == np.float32 and x.shape == (7, 2, 64)
    assert labels == ["bpsk"] * 4 + ["qpsk"] * 3
    assert starts.dtype == np.int64 and starts.tolist() == [0, 64, 128, 192, 400, 464, 528]
    for frame, s in zip(x, starts):
        assert np.array_equal(frame[0], expected[s : s + 64].real)
        assert np.array_equal(frame[1], expected[s : s + 64].imag)

    x, idx, starts = frames_from_segments(rec, 64, hop=32, classes=["fm", "qpsk", "bpsk"])
    assert x.shape == (8 + 6, 2, 64) and idx.dtype == np.int64
    assert idx.tolist() == [2] * 8 + [1] * 6
    assert starts[:3].tolist() == [0, 32, 64] and starts[8] == 400

    _raises(lambda: frames_from_segments(rec, 64, classes=["bpsk", "fm"]), "rec.sigmf-meta", "'qpsk'", "annotation 2", "['bpsk', 'fm']")
    _raises(lambda: frames_from_segments(rec, 512), "no annotation long enough", "512", "annotation 0", "300")


def _good_meta(tmp_path, **kw):
    return _write_sigmf(tmp_path, "rec", _payload("ci16_le")[0], "ci16_le", **kw)


@pytest.mark.parametrize(
    "edit,needles",
    [
        (lambda d: d["global"].update({"core:datatype": "rf32_le"}), ["core:datatype", "real"]),
        (lambda d: d["global"].update({"core:datatype": "cq7"}), ["core:datatype", "cq7", "cf32_le"]),
        (lambda d: d["global"].pop("core:datatype"), ["core:datatype", "missing"]),
        (lambda d: d["global"].update({"core:num_channels": 2}), ["core:num_channels", "2"]),
        (lambda d: d["global"].pop("core:sample_rate"), ["core:sample_rate", "missing"]),
        (lambda d: d["global"].update({"core:sample_rate": 0}), ["core:sample_rate", "0"]),
        (lambda d: d["global"].update({"core:dataset": "gone.bin"}), ["core:dataset", "gone.bin"]),
        (lambda d: d["annotations"][1].pop("core:sample_count"), ["annotation 1", "core:sample_count"]),
        (lambda d: d["annotations"][1].update({"core:sample_count": 0}), ["annotation 1", "core:sample_count", "0"]),
        (lambda d: d["annotations"][1].update({"core:sample_count": 901}), ["annotation 1", "past the end", "1001"]),
        (lambda d: d["annotations"][0].update({"core:sample_start": -1}), ["annotation 0", "core:sample_start"]),
        (lambda d: d["annotations"][0].pop("core:sample_start"), ["annotation 0", "core:sample_start"]),
    ],
)
def test_bad_metadata_is_a_recording_error(tmp_path, edit, needles):
    meta = _good_meta(tmp_path, annotations=[(0, 50, "am"), (100, 50, "fm")])
    _edit_meta(meta, edit)
    _raises(lambda: open_recording(meta), "rec.sigmf-meta", *needles)


def test_truncated_and_missing_data_files(tmp_path):
    meta = _good_meta(tmp_path)
    data = tmp_path / "rec.sigmf-data"
    data.write_bytes(data.read_bytes()[:-1])
    _raises(lambda: open_recording(meta), "rec.sigmf-data", str(4 * N - 1), "4-byte", "truncated")
    data.unlink()
    _raises(lambda: open_recording(meta), "rec.sigmf-data", "does not exist")
    _raises(lambda: open_recording(tmp_path / "nothing.bin"), "nothing.bin", "does not exist")
    _raises(lambda: open_recording(tmp_path / "a.sigmf"), "a.sigmf", "archive")


def test_flags_must_agree_with_sigmf_metadata(tmp_path):
    meta = _good_meta(tmp_path)
    assert open_recording(meta, datatype="ci16_le", sample_rate=RATE).n_samples == N
    _raises(lambda: open_recording(meta, sample_rate=1e6), "rec.sigmf-meta", "core:sample_rate", "--rate")
    _raises(lambda: open_recording(meta, datatype="cu8"), "rec.sigmf-meta", "core:datatype", "--format")


def test_raw_errors_name_the_flag(tmp_path):
    path = tmp_path / "cap.bin"
    path.write_bytes(_payload("ci8")[0])
    _raises(lambda: open_recording(path, sample_rate=RATE), "cap.bin", "datatype", "--format")
    _raises(lambda: open_recording(path, datatype="ci8"), "cap.bin", "sample_rate", "--rate")
    _raises(lambda: open_recording(path, datatype="ci8", sample_rate=-1.0), "cap.bin", "sample_rate", "--rate")
    _raises(lambda: open_recording(path, datatype="rf32_le", sample_rate=RATE), "cap.bin", "real", "--format")
    cfile = tmp_path / "cut.cfile"
    cfile.write_bytes(b"\0" * 8 * 10 + b"\0" * 5)
    _raises(lambda: open_recording(cfile, sample_rate=RATE), "cut.cfile", "85 bytes", "8-byte")


def test_non_conforming_dataset_with_header_and_trailer(tmp_path):
    payload, expected = _payload("ci16_le", n=200)
    (tmp_path / "capture.bin").write_bytes(b"H" * 16 + payload + b"T" * 8)
    meta = tmp_path / "capture.sigmf-meta"
    meta.write_text(json.dumps({
        "global": {"core:datatype": "ci16_le", "core:sample_rate": RATE, "core:version": "1.2.0",
                   "core:dataset": "capture.bin", "core:trailing_bytes": 8},
        "captures": [{"core:sample_start": 0, "core:header_bytes": 16}],
        "annotations": [],
    }))
    rec = open_recording(meta)
    assert rec.data_path == str(tmp_path / "capture.bin") and rec.n_samples == 200
    assert np.array_equal(rec.read(0, 200), expected)
    assert np.array_equal(np.concatenate([c for _, c in rec.iter_chunks(64)]), expected)


@pytest.mark.parametrize("datatype", ["cf64_le", "cf32_be", "ci16_be", "ci32_le", "cu16_le"])
def test_other_complex_datatypes_match_sigmf(tmp_path, datatype):
    from gnuradio.modrec.runtime.recording import _COMPONENT_DTYPES

    component = np.dtype(_COMPONENT_DTYPES[datatype])
    rng = np.random.default_rng(7)
    if component.kind == "f":
        raw = rng.standard_normal(2 * 300).astype(component)
    else:
        info = np.iinfo(component)
        raw = rng.integers(info.min, info.max, 2 * 300, endpoint=True, dtype=np.int64).astype(component)
    sig = open_recording(_write_sigmf(tmp_path, "rec", raw.tobytes(), datatype))
    (tmp_path / "cap.dat").write_bytes(raw.tobytes())
    mine = open_recording(tmp_path / "cap.dat", datatype=datatype, sample_rate=RATE)
    assert sig.n_samples == mine.n_samples == 300
    assert mine.read(0, 300).tobytes() == sig.read(0, 300).tobytes()
    scale = 1.0 if component.kind == "f" else 2.0 ** (8 * component.itemsize - 1)
    offset = 2.0 ** (8 * component.itemsize - 1) if component.kind == "u" else 0.0
    v = (raw.astype(np.float64) - offset) / scale
    np.testing.assert_allclose(mine.read(0, 300), v[0::2] + 1j * v[1::2], rtol=1e-6, atol=1e-7)


def test_a_missing_sigmf_sample_rate_is_given_on_the_command_line(tmp_path):
    np.zeros(64, np.complex64).tofile(tmp_path / "norate.sigmf-data")
    (tmp_path / "norate.sigmf-meta").write_text(json.dumps(
        {"global": {"core:datatype": "cf32_le", "core:version": "1.0.0"}, "captures": [], "annotations": []}))
    meta = tmp_path / "norate.sigmf-meta"
    with pytest.raises(RecordingError, match=r"norate.sigmf-meta: core:sample_rate is missing .*--rate"):
        open_recording(meta)
    assert open_recording(meta, sample_rate=2e6).sample_rate == 2e6
    assert np.isnan(open_recording(meta, require_rate=False).sample_rate)
