import numpy as np
import onnx
import pytest
from onnx import TensorProto

import onnx_fixtures as fx
from gnuradio.modrec import contract
from gnuradio.modrec.runtime import DEFAULT_MODEL_NAME, OnnxModel, default_model_path, model_search_dirs, onnx_model

L = 32


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return fx.save_model(tmp_path_factory.mktemp("m") / "good.onnx", frame_len=L)


def _frames(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 2, L)).astype(np.float32)


def test_loads_metadata(model_file):
    m = OnnxModel(model_file)
    assert m.classes == fx.FIXTURE_CLASSES
    assert m.frame_len == L and m.samples_per_symbol == 8
    assert m.metadata["architecture"] == "fixture-linear"
    assert m.metadata["version"] == contract.CONTRACT_VERSION


def test_predict_matches_graph_reference(model_file):
    m = OnnxModel(model_file)
    x = 3.0 * _frames(9)
    probs = m.predict(x)
    assert probs.dtype == np.float32 and probs.shape == (9, len(fx.FIXTURE_CLASSES))
    np.testing.assert_allclose(probs, fx.reference_probs(x, fx.build_model(frame_len=L)), atol=1e-5)


def _counting_calls(m):
    """The frames of each session.run call ``m`` makes from now on."""
    calls = []
    real_run = m._session.run

    def counting_run(*args, **kwargs):
        calls.append(args[1][m._input_name].shape[0])
        return real_run(*args, **kwargs)

    m._session.run = counting_run
    return calls


def test_predict_runs_a_batch_in_slices_equal_to_per_frame(model_file):
    m = OnnxModel(model_file)
    n = 2 * onnx_model.RUN_FRAMES + 17
    x = _frames(n, seed=3)
    calls = _counting_calls(m)
    batched = m.predict(x)
    assert calls == [onnx_model.RUN_FRAMES, onnx_model.RUN_FRAMES, 17]
    calls.clear()
    assert m.predict(x[:5]).shape == (5, len(fx.FIXTURE_CLASSES)) and calls == [5]
    single = np.concatenate([m.predict(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)


def test_every_output_of_a_sliced_batch_is_the_one_call_answer(tmp_path):
    path = tmp_path / "v2.onnx"
    onnx.save(fx.build_v2_model(frame_len=L), str(path))
    m = OnnxModel(str(path))
    x = _frames(onnx_model.RUN_FRAMES + 9, seed=4)
    whole = dict(zip([o.name for o in m._session.get_outputs()], m._session.run(None, {m._input_name: x})))
    calls = _counting_calls(m)
    got = m.predict_details(x)
    assert calls == [onnx_model.RUN_FRAMES, 9]
    np.testing.assert_allclose(got.probs, whole[contract.PROBS_OUTPUT_NAME], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got.snr_db, whole[contract.SNR_OUTPUT_NAME], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got.logits, whole[contract.LOGITS_OUTPUT_NAME], rtol=1e-6, atol=1e-6)


def test_predict_edge_inputs(model_file):
    m = OnnxModel(model_file)
    assert m.predict(np.zeros((0, 2, L), np.float32)).shape == (0, len(m.classes))
    zeros = m.predict(np.zeros((2, 2, L), np.float32))
    assert np.all(np.isfinite(zeros)) and np.allclose(zeros.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match=r"\(N, 2, 32\)"):
        m.predict(np.zeros((2, 2, L + 1), np.float32))


def test_a_plain_model_answers_as_an_early_exit_model_does(model_file):
    """The same interface as EarlyExitModel: one exit, so every frame takes exit 0 (= n_exits - 1)."""
    m = OnnxModel(model_file)
    assert m.n_exits == 1
    x = _frames(7, seed=5)
    probs, taken = m.predict_with_exits(x)
    np.testing.assert_array_equal(probs, m.predict(x))
    assert taken.dtype == np.int64 and taken.tolist() == [m.n_exits - 1] * 7 == [0] * 7
    p0, t0 = m.predict_with_exits(np.zeros((0, 2, L), np.float32))
    assert p0.shape == (0, len(m.classes)) and t0.shape == (0,)
    with pytest.raises(ValueError, match=r"\(N, 2, 32\)"):
        m.predict_with_exits(np.zeros((2, 2, L + 1), np.float32))


def test_one_session_options_builder():
    import onnxruntime as ort

    opts = onnx_model.session_options(3)
    assert opts.intra_op_num_threads == 3 and opts.inter_op_num_threads == 1
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL and opts.log_severity_level == 3
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_single_thread_sequential_by_default(model_file):
    opts = OnnxModel(model_file)._session.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    import onnxruntime as ort

    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert OnnxModel(model_file, threads=2)._session.get_session_options().intra_op_num_threads == 2
    with pytest.raises(ValueError, match="threads"):
        OnnxModel(model_file, threads=0)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        OnnxModel(path)


def test_not_onnx(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    with pytest.raises(contract.ContractError, match="garbage.onnx.*not a loadable ONNX"):
        OnnxModel(path)


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"input_shape": ["batch", 2, L + 1]}, r"input 'iq' should have shape \(N, 2, 32\)"),
        ({"input_shape": ["batch", 2 * L]}, r"input 'iq' should have shape"),
        ({"input_shape": ["batch", 3, L]}, r"input 'iq' should have shape"),
        ({"input_shape": [4, 2, L]}, r"batch axis should be dynamic"),
        ({"input_dtype": TensorProto.DOUBLE}, r"should be float32"),
        ({"n_outputs": len(fx.FIXTURE_CLASSES) + 1}, r"first output 'probs' should have shape \(N, 5\)"),
        ({"drop_metadata": ("frame_len",)}, r"lacks required field\(s\) frame_len"),
        ({"drop_metadata": ("classes", "version")}, r"lacks required field\(s\) classes, version"),
        ({"metadata": {**fx.fixture_metadata(frame_len=L), "frame_len": "many"}}, r"'frame_len' should be an integer"),
        ({"metadata": {**fx.fixture_metadata(frame_len=L), "classes": "[1, 2]"}}, r"'classes' should be a non-empty"),
        # issue 19: models that passed the construction checks, then hung a flowgraph or lied
        ({"batch_one": True}, r"fails on a probe batch of 3 frame\(s\) of shape \(3, 2, 32\).*any batch size"),
        ({"softmax": False}, r"first output 'probs' is not class probabilities: rows should be >= 0 and sum to 1"),
        ({"classes": ("BPSK", "QPSK", "8PSK", "QPSK", "WBFM")}, r"names one class more than once \(QPSK"),
        ({"classes": ("BPSK", "QPSK", "8PSK", "16QAM", "QAM16")}, r"names one class more than once \(16QAM, QAM16"),
        ({"classes": ("BPSK", "QPSK", "8PSK", "unknown", "WBFM")}, r"holds 'unknown', the label the classifier gives"),
    ],
)
def test_contract_violations_name_file_and_problem(tmp_path, kwargs, pattern):
    path = fx.save_model(tmp_path / "broken.onnx", frame_len=L, **kwargs)
    with pytest.raises(contract.ContractError, match=pattern) as info:
        OnnxModel(path)
    assert "broken.onnx" in str(info.value)


def test_default_model_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("MODREC_MODEL_DIR", str(tmp_path))
    dirs = [str(d) for d in model_search_dirs()]
    assert dirs[0] == str(tmp_path)
    assert any(d.endswith("share/gr-modrec/models") for d in dirs)
    src_models = str(onnx_model.Path(onnx_model.__file__).resolve().parents[3] / "models")
    assert src_models in dirs
    assert max(i for i, d in enumerate(dirs) if d.endswith("share/gr-modrec/models")) < dirs.index(src_models)

    fx.save_model(tmp_path / DEFAULT_MODEL_NAME, frame_len=L)
    assert default_model_path() == str(tmp_path / DEFAULT_MODEL_NAME)


def test_default_model_missing_lists_places(tmp_path, monkeypatch):
    monkeypatch.setenv("MODREC_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(onnx_model, "_package_dirs", lambda: [tmp_path / "a" / "b" / "c" / "d" / "e" / "modrec"])
    with pytest.raises(FileNotFoundError) as info:
        default_model_path()
    msg = str(info.value)
    assert str(tmp_path / "empty" / DEFAULT_MODEL_NAME) in msg
    assert str(tmp_path / "a" / "share" / "gr-modrec" / "models" / DEFAULT_MODEL_NAME) in msg
    assert str(tmp_path / "a" / "b" / "c" / "d" / "models" / DEFAULT_MODEL_NAME) in msg
