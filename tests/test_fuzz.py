"""Fuzzing the model loader and the blocks' parameters (issue 19.7): every input ends in a working
model or block, or in a clear error (ContractError / ValueError / FileNotFoundError, naming what
is wrong); never another exception, a crash or a hang."""

import json
import math
import os
import tempfile

import numpy as np
import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto

import onnx_fixtures as fx
from flowgraph_run import finish_or_stop
from gnuradio.modrec import contract
from gnuradio.modrec.runtime import OnnxModel

CLEAR_ERRORS = (contract.ContractError, ValueError, FileNotFoundError)
# derandomize: the same examples in every run, so CI is repeatable (widen max_examples to explore)
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
L = 32
_TMP = tempfile.mkdtemp(prefix="modrec_fuzz_")
GOOD_MODEL = fx.save_model(os.path.join(_TMP, "good.onnx"), frame_len=L)

junk = st.one_of(st.text(max_size=12), st.integers(-10**6, 10**6).map(str), st.sampled_from(
    ["", "[]", "{}", "null", "-1", "0", "1e309", "nan", '["BPSK"]', '["a", "a"]', '["unknown"]', '[1, 2]', '{"a": 1}']))


@st.composite
def model_files(draw):
    frame_len = draw(st.sampled_from([1, 2, 16, L, 100]))
    classes = draw(st.sampled_from([fx.FIXTURE_CLASSES, ("A", "B"), ("BPSK",), ("BPSK", "QPSK", "QPSK")]))
    shape = draw(st.sampled_from([
        None, ["batch", 2, frame_len + 1], ["batch", 2], [3, 2, frame_len], ["batch", 2, frame_len, 1],
        ["batch", "two", frame_len]]))
    kwargs = dict(
        frame_len=frame_len, classes=classes, input_shape=shape,
        input_dtype=draw(st.sampled_from([TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16])),
        n_outputs=draw(st.sampled_from([None, len(classes) + 1, 1])),
        softmax=draw(st.booleans()), batch_one=draw(st.booleans()),
        scale=draw(st.sampled_from([4.0, 0.0, 1e30])),
    )
    metadata = dict(fx.fixture_metadata(classes, frame_len))
    for key in draw(st.lists(st.sampled_from(contract.REQUIRED_METADATA), max_size=3, unique=True)):
        if draw(st.booleans()):
            metadata.pop(key, None)
        else:
            metadata[key] = draw(junk)
    kwargs["metadata"] = metadata
    return kwargs


def _model_path(kwargs):
    path = os.path.join(_TMP, "fuzz.onnx")
    try:
        onnx.save(fx.build_model(**kwargs), path)
    except (ValueError, TypeError):  # onnx refused to build this one: then it is not our input
        return None
    return path


@SETTINGS
@given(model_files())
def test_the_model_loader_accepts_a_good_model_or_refuses_clearly(kwargs):
    path = _model_path(kwargs)
    if path is None:
        return
    try:
        model = OnnxModel(path)
    except CLEAR_ERRORS as err:
        assert "fuzz.onnx" in str(err), f"the error does not name the file: {err}"
        return
    # what loads works: probabilities for any batch
    for n in (1, 5):
        probs = model.predict(np.random.default_rng(n).standard_normal((n, 2, model.frame_len)).astype(np.float32))
        assert probs.shape == (n, model.n_classes)
        assert np.all(probs >= -1e-3) and np.allclose(probs.sum(1), 1, atol=1e-3)


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_as_a_model_are_refused_clearly(data):
    path = os.path.join(_TMP, "bytes.onnx")
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        OnnxModel(path)
    except CLEAR_ERRORS as err:
        assert "bytes.onnx" in str(err)


def _run(tb, timeout=20.0):
    assert finish_or_stop(tb, timeout), "the flowgraph hung"


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**9, 10**9), st.text(max_size=4),
                    st.none(), st.booleans())


CONSTRUCTED = {"classifier": 0, "sink": 0}  # how often the fuzzing reached a working block


@st.composite
def mostly(draw, good, bad):
    """Three draws in four from ``good``: every parameter bad at once would only test refusals."""
    return draw(good) if draw(st.sampled_from([True, True, True, False])) else draw(bad)


@SETTINGS
@given(hop=mostly(st.integers(0, 200), st.one_of(st.integers(-3, -1), st.just(10**9), numbers)),
       min_confidence=mostly(st.floats(0, 1), numbers),
       tag_key=mostly(st.just("modrec"), st.one_of(st.text(max_size=6), numbers)),
       threads=mostly(st.just(1), st.one_of(st.integers(-2, 4), numbers)),
       sample_rate=mostly(st.one_of(st.just(0.0), st.floats(1, 1e7)), numbers),
       symbol_rate=mostly(st.one_of(st.just(0.0), st.floats(1, 1e6)), numbers), n_samples=st.integers(0, 700))
def test_the_classifier_takes_any_parameters_or_refuses_them(hop, min_confidence, tag_key, threads, sample_rate,
                                                            symbol_rate, n_samples):
    from gnuradio import blocks, gr

    from gnuradio.modrec.classifier import classifier

    try:
        clf = classifier(GOOD_MODEL, hop=hop, min_confidence=min_confidence, tag_key=tag_key, threads=threads,
                         sample_rate=sample_rate, symbol_rate=symbol_rate)
    except ValueError as err:
        assert str(err)
        return
    CONSTRUCTED["classifier"] += 1
    x = (np.random.default_rng(n_samples).standard_normal(n_samples) + 1j).astype(np.complex64)
    tb = gr.top_block()
    src, snk = blocks.vector_source_c(x.tolist(), False), blocks.vector_sink_c()
    tb.connect(src, clf, snk)
    _run(tb)
    assert np.array_equal(np.array(snk.data(), np.complex64).view(np.uint64), x.view(np.uint64))
    assert (clf.min_confidence == -1 or 0 <= clf.min_confidence <= 1) and math.isfinite(clf.sample_rate) and math.isfinite(clf.symbol_rate)


@SETTINGS
@given(name=mostly(st.just("x.sigmf-meta"), st.one_of(st.sampled_from([".sigmf-meta", "a/b.sigmf-meta", ""]),
                                                       st.text(max_size=10))),
       sample_rate=mostly(st.floats(1, 1e9), numbers), tag_key=mostly(st.just("modrec"), st.one_of(st.text(max_size=4), numbers)),
       datatype=mostly(st.sampled_from(["cf32_le", "ci16_le", "cu8"]), st.one_of(st.sampled_from(["rf32_le", "complex"]), numbers)),
       center_frequency=mostly(st.one_of(st.just(0.0), st.floats(-1e10, 1e10)), numbers),
       model_name=mostly(st.text(max_size=5), numbers))
def test_the_annotation_sink_takes_any_parameters_or_refuses_them(name, sample_rate, tag_key, datatype,
                                                                  center_frequency, model_name):
    from gnuradio import blocks, gr

    from gnuradio.modrec.sigmf_annotation_sink import sigmf_annotation_sink

    directory = tempfile.mkdtemp(dir=_TMP)
    meta = os.path.join(directory, name) if isinstance(name, str) and name else name
    try:
        sink = sigmf_annotation_sink(meta, sample_rate, tag_key=tag_key, datatype=datatype,
                                     center_frequency=center_frequency, model_name=model_name)
    except (ValueError, OSError) as err:
        assert str(err)
        return
    CONSTRUCTED["sink"] += 1
    tb = gr.top_block()
    tb.connect(blocks.vector_source_c([0j] * 100, False), sink)
    _run(tb)
    assert sink.last_error is None, sink.last_error
    written = json.loads(open(sink.meta_path).read())
    assert written["global"]["core:sample_rate"] == float(sample_rate)


def test_the_fuzzing_reached_working_blocks():
    # the property tests above run first (file order): they must not have refused everything
    assert CONSTRUCTED["classifier"] >= 5 and CONSTRUCTED["sink"] >= 5, CONSTRUCTED
