"""The early-exit runtime: stage-by-stage batched inference against a numpy reference, error
messages for broken early-exit models, and the cascade's equality with the whole network."""

import json
import os

import numpy as np
import onnx
import pytest

import onnx_fixtures as fx
from gnuradio.modrec import contract
from gnuradio.modrec.runtime import EarlyExitModel, OnnxModel, load_model, onnx_model
from gnuradio.modrec.runtime.early_exit import PROBE_EVERY, WINDOW_FRAMES, exit_decisions, uncertainty

L = 32


def _frames(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 2, L)).astype(np.float32)


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7, 1.0])
def test_cascade_matches_the_reference(tmp_path, threshold):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=threshold)
    model = load_model(path)
    assert isinstance(model, EarlyExitModel) and model.n_exits == 2
    frames = _frames(200)
    probs, taken = model.predict_with_exits(frames)
    want_probs, want_exit = fx.early_exit_reference(frames, L, threshold)
    assert np.array_equal(taken, want_exit)
    np.testing.assert_allclose(probs, want_probs, atol=1e-5)
    if threshold == 0.0:
        assert (taken == 1).all()  # nothing is certain enough: the whole network, every frame
    if threshold == 1.0:
        assert (taken == 0).all()
    # an early frame's answer is its branch's: same argmax as the stage-0 reference
    early = fx.reference_probs(frames, fx.build_model(L, seed=1))
    assert np.array_equal(probs[taken == 0].argmax(1), early[taken == 0].argmax(1))


def test_frames_that_go_all_the_way_equal_the_plain_network(tmp_path):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=0.6)
    frames = _frames(64, seed=3)
    probs, taken = EarlyExitModel(path).predict_with_exits(frames)
    whole = OnnxModel(path).predict(frames)  # the entry file alone: what an exit-unaware runtime runs
    np.testing.assert_allclose(probs[taken == 1], whole[taken == 1], atol=1e-6)
    forced, taken_all = EarlyExitModel(path, thresholds=[-1.0]).predict_with_exits(frames)
    assert (taken_all == 1).all()
    np.testing.assert_allclose(forced, whole, atol=1e-6)


@pytest.mark.parametrize("all_exits", [True, False], ids=["all-exits graph", "stages"])
def test_every_exit_for_every_frame(tmp_path, all_exits):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=0.6, all_exits=all_exits)
    frames = _frames(40, seed=4)
    model = EarlyExitModel(path)
    assert (model._all is not None) == all_exits
    early, final = model.exit_probabilities(frames)
    probs, taken = model.predict_with_exits(frames)
    np.testing.assert_allclose(early[taken == 0], probs[taken == 0], atol=1e-6)
    np.testing.assert_allclose(final, OnnxModel(path).predict(frames), atol=1e-6)


class _BatchSizes:
    """An ONNX Runtime session that records the batch size of each run."""

    def __init__(self, session):
        self.session, self.sizes = session, []

    def run(self, outputs, feed):
        self.sizes.append(len(next(iter(feed.values()))))
        return self.session.run(outputs, feed)


def _window_modes(model, frames, chunk):
    """The mode each chunk ran in (chunks never straddle a window here)."""
    modes, out = [], []
    for start in range(0, len(frames), chunk):
        modes.append(model._mode)
        out.append(model.predict_with_exits(frames[start : start + chunk]))
    return modes, np.concatenate([p for p, _ in out]), np.concatenate([t for _, t in out])


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7, 1.0])
def test_a_probe_answers_as_the_cascade(tmp_path, threshold):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=threshold)
    frames = _frames(120, seed=7)
    adaptive, cascade = EarlyExitModel(path), EarlyExitModel(path, adaptive=False)
    calls = []
    adaptive._cascade = lambda x: calls.append(len(x))  # a probe runs the all-exits graph instead
    assert adaptive._mode == "probe"  # a stream starts by measuring how many frames leave
    probs, taken = adaptive.predict_with_exits(frames)
    assert calls == []
    want, want_exit = cascade.predict_with_exits(frames)
    assert np.array_equal(taken, want_exit)
    np.testing.assert_allclose(probs, want, atol=1e-6)


def test_the_plain_network_runs_while_nobody_leaves(tmp_path, monkeypatch):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=0.5)
    model = EarlyExitModel(path, thresholds=[-1.0])  # no frame is ever certain enough
    assert model.cascade_from == pytest.approx((5 * L * 5 - 4 * L * 5 + 0.05 * 4 * L * 5) / (4 * L * 5))
    frames = _frames((PROBE_EVERY + 2) * WINDOW_FRAMES, seed=8)
    modes, probs, taken = _window_modes(model, frames, WINDOW_FRAMES)
    assert modes == ["probe"] + ["plain"] * (PROBE_EVERY - 1) + ["probe", "plain"]
    assert (taken == 1).all()
    np.testing.assert_allclose(probs, OnnxModel(path).predict(frames), atol=1e-6)
    stage_cost = np.cumsum(model.exit_flops)
    plain_cost = int(model.metadata["flops"])
    assert model.flops_spent == WINDOW_FRAMES * (2 * stage_cost[-1] + PROBE_EVERY * plain_cost)
    # in one call, the plain windows between two probes run as one batch (seen whole: the
    # runtime's slicing of a batch into session calls, onnx_model.RUN_FRAMES, is another matter)
    monkeypatch.setattr(onnx_model, "RUN_FRAMES", 1 << 20)
    one_call = EarlyExitModel(path, thresholds=[-1.0])
    one_call._session = counted = _BatchSizes(one_call._session)
    probs, taken = one_call.predict_with_exits(frames)
    assert counted.sizes == [(PROBE_EVERY - 1) * WINDOW_FRAMES, WINDOW_FRAMES] and (taken == 1).all()


def test_the_cascade_takes_over_once_frames_leave(tmp_path):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=0.5)
    model = EarlyExitModel(path, thresholds=[-1.0])
    frames = _frames(12 * WINDOW_FRAMES, seed=9)
    modes, _, _ = _window_modes(model, frames[: 3 * WINDOW_FRAMES], WINDOW_FRAMES)
    assert modes == ["probe", "plain", "plain"]
    model.thresholds = [2.0]  # the SNR rises: now every frame would leave at exit 0
    modes, probs, taken = _window_modes(model, frames[3 * WINDOW_FRAMES :], WINDOW_FRAMES // 4)
    first_probe = modes.index("probe")  # in chunks of a quarter window
    assert first_probe == 4 * (PROBE_EVERY - 3)  # the next probe comes on schedule
    assert set(modes[first_probe + 4 :]) == {"cascade"}
    switch = first_probe * WINDOW_FRAMES // 4
    assert (taken[switch:] == 0).all() and (taken[:switch] == 1).all()
    assert model.leave_share >= model.cascade_from


def test_a_frames_answer_does_not_depend_on_how_the_stream_is_cut(tmp_path):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=0.5)
    rng = np.random.default_rng(10)
    # low SNR (tiny logits: nobody is certain), then high SNR (most frames leave), then low again
    scale = np.repeat([0.01, 10.0, 0.01], [4 * WINDOW_FRAMES, 5 * WINDOW_FRAMES, 3 * WINDOW_FRAMES])
    frames = (_frames(len(scale), seed=11) * scale[:, None, None]).astype(np.float32)
    whole, whole_taken = EarlyExitModel(path).predict_with_exits(frames)
    assert whole_taken[4 * WINDOW_FRAMES : 9 * WINDOW_FRAMES].mean() < 0.5  # the high part runs the cascade
    model, cuts, start = EarlyExitModel(path), [], 0
    while start < len(frames):
        cuts.append(model.predict_with_exits(frames[start : start + int(rng.integers(1, 700))]))
        start += len(cuts[-1][1])
    assert np.array_equal(np.concatenate([t for _, t in cuts]), whole_taken)
    np.testing.assert_allclose(np.concatenate([p for p, _ in cuts]), whole, atol=1e-6)


def test_a_missing_all_exits_file_is_named(tmp_path):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=1.0)
    os.remove(os.path.join(str(tmp_path), "ee.exits.onnx"))
    with pytest.raises(FileNotFoundError, match="exit_all"):
        EarlyExitModel(path)


def test_batch_order_and_empty_batches(tmp_path):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=0.5)
    model = EarlyExitModel(path)
    frames = _frames(30, seed=5)
    probs, taken = model.predict_with_exits(frames)
    one_by_one = [model.predict_with_exits(f[None]) for f in frames]
    np.testing.assert_allclose(probs, np.concatenate([p for p, _ in one_by_one]), atol=1e-6)
    assert np.array_equal(taken, np.concatenate([t for _, t in one_by_one]))
    p0, t0 = model.predict_with_exits(np.zeros((0, 2, L), np.float32))
    assert p0.shape == (0, len(fx.FIXTURE_CLASSES)) and t0.shape == (0,)


def test_a_gate_models_weights_are_checked(tmp_path):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=0.5)
    proto = onnx.load(path)
    props = {p.key: p.value for p in proto.metadata_props}
    n_classes, hidden = len(fx.FIXTURE_CLASSES), 3
    rng = np.random.default_rng(0)
    gate = {"w1": rng.standard_normal((hidden, 3 + 4 * n_classes)).tolist(), "b1": [0.0] * hidden,
            "w2": rng.standard_normal(hidden).tolist(), "b2": 0.5}

    def save(**changes):
        del proto.metadata_props[:]
        onnx.helper.set_model_props(proto, {**props, "exit_policy": "gate", **changes})
        onnx.save(proto, str(tmp_path / "gated.onnx"))
        return str(tmp_path / "gated.onnx")

    with pytest.raises(contract.ContractError, match="lacks exit_gates"):
        EarlyExitModel(save())
    with pytest.raises(contract.ContractError, match=r"exit_gates\[0\] shapes"):
        EarlyExitModel(save(exit_gates=json.dumps([dict(gate, w1=[[0.0] * 7] * hidden)])))
    with pytest.raises(contract.ContractError, match="1 gate"):
        EarlyExitModel(save(exit_gates=json.dumps([gate, gate])))
    frames = _frames(64, seed=12)
    early, final = EarlyExitModel(save(exit_gates=json.dumps([gate]))).exit_probabilities(frames)
    threshold = float(np.median(uncertainty(early, "gate", gate)))  # half the frames leave
    model = EarlyExitModel(save(exit_gates=json.dumps([gate])), thresholds=[threshold], adaptive=False)
    want, want_exit = exit_decisions([early, final], [threshold], "gate", [gate])
    probs, taken = model.predict_with_exits(frames)
    assert np.array_equal(taken, want_exit) and 0 < taken.sum() < len(taken)
    np.testing.assert_allclose(probs, want, atol=1e-6)


def test_broken_early_exit_models_are_named(tmp_path):
    path = fx.save_early_exit_model(str(tmp_path), L)
    os.remove(tmp_path / "ee.stage1.onnx")
    with pytest.raises(FileNotFoundError, match=r"ee.stage1.onnx.*exit_stages\[1\]"):
        EarlyExitModel(path)
    proto = onnx.load(path)
    props = {p.key: p.value for p in proto.metadata_props}
    props["exit_thresholds"] = json.dumps([0.5, 0.5])
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    with pytest.raises(contract.ContractError, match="thresholds"):
        EarlyExitModel(str(tmp_path / "bad.onnx"))
    plain = fx.save_model(tmp_path / "plain.onnx", frame_len=L)
    assert type(load_model(plain)) is OnnxModel  # exits = 1: the plain runtime


def test_load_model_opens_every_file_once_with_one_set_of_options(tmp_path, monkeypatch):
    import onnxruntime as ort

    path = fx.save_early_exit_model(str(tmp_path), L, threshold=0.5)
    opened, real = [], ort.InferenceSession

    def recording(file, sess_options=None, **kwargs):
        opened.append((os.path.basename(file), sess_options))
        return real(file, sess_options=sess_options, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", recording)
    model = load_model(path)
    assert isinstance(model, EarlyExitModel)
    assert sorted(name for name, _ in opened) == ["ee.exits.onnx", "ee.onnx", "ee.stage0.onnx", "ee.stage1.onnx"]
    for name, opts in opened:  # the entry file and the stage files alike (sequential execution included)
        assert (opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level) == (1, 1, 3), name
        assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL, name
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0", name
    monkeypatch.setattr(ort, "InferenceSession", real)
    frames = _frames(300, seed=13)  # the probe window, then plain windows on the entry's session
    probs, taken = model.predict_with_exits(frames)
    want, want_taken = EarlyExitModel(path).predict_with_exits(frames)
    assert np.array_equal(taken, want_taken)
    np.testing.assert_allclose(probs, want, atol=1e-6)
    with pytest.raises(TypeError, match="OnnxModel"):
        EarlyExitModel.from_entry(model)


def test_malformed_early_exit_fields_are_named(tmp_path):
    path = fx.save_early_exit_model(str(tmp_path), L)
    proto = onnx.load(path)
    props = {p.key: p.value for p in proto.metadata_props}

    def save(**changes):
        del proto.metadata_props[:]
        onnx.helper.set_model_props(proto, {**props, **changes})
        onnx.save(proto, str(tmp_path / "bad.onnx"))
        return str(tmp_path / "bad.onnx")

    cases = [
        ({contract.EXIT_STAGES: "ee.stage0.onnx"}, r"bad.onnx: metadata field 'exit_stages' is not valid JSON"),
        ({contract.EXIT_STAGES: "[1, 2]"}, r"bad.onnx: metadata field 'exit_stages' should be a non-empty JSON list"),
        ({contract.EXIT_THRESHOLDS: '["high"]'}, r"bad.onnx: metadata field 'exit_thresholds' should be a JSON list of numbers"),
        ({contract.EXIT_FLOPS: "[1, 2, 3]"}, r"bad.onnx: metadata field 'exit_flops' lists 3 stage cost\(s\) for 2"),
        ({contract.EXIT_POLICY: "coin"}, r"bad.onnx: exit_policy must be one of entropy, maxprob, gate, got 'coin'"),
        ({contract.EXIT_PLACEMENTS: "[1, 2]"}, r"bad.onnx: metadata field 'exit_placements' should be a JSON list of 1"),
    ]
    for changes, message in cases:
        with pytest.raises(contract.ContractError, match=message):
            load_model(save(**changes))
    del props[contract.EXIT_POLICY]
    with pytest.raises(contract.ContractError, match="bad.onnx: early-exit metadata lacks exit_policy"):
        EarlyExitModel(save())


def test_benchmark_runs_on_a_fixture(tmp_path):
    """apps/bench_early_exit.py (part of `make bench`) prints worst and best case against the plain model."""
    import subprocess
    import sys
    from pathlib import Path

    from conftest import _SHIM

    ee = fx.save_early_exit_model(str(tmp_path), L, threshold=0.5)
    plain = fx.save_model(tmp_path / "plain.onnx", frame_len=L, seed=2)
    bench = Path(__file__).resolve().parents[1] / "apps" / "bench_early_exit.py"
    result = subprocess.run([sys.executable, str(bench), "--model", ee, "--plain", plain, "--rounds", "1", "--calls", "1"],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(_SHIM)})
    assert result.returncode == 0, result.stderr
    assert "all the way" in result.stdout and "first exit" in result.stdout and "speed vs plain" in result.stdout


def test_a_stage_file_of_another_model_is_refused_at_load(tmp_path):
    path = fx.save_early_exit_model(str(tmp_path), L)
    # stage 1 of a model with frames of 2 * L: it cannot take this model's stage-0 features
    other = fx.build_model(2 * L, seed=2)
    other.graph.input[0].name = "features"
    for node in other.graph.node:
        node.input[:] = ["features" if i == contract.INPUT_NAME else i for i in node.input]
    onnx.save(other, str(tmp_path / "ee.stage1.onnx"))
    with pytest.raises(contract.ContractError, match=r"ee.stage1.onnx: stage 1 of .*ee.onnx fails on stage 0's features"):
        EarlyExitModel(path)
    # an early head without its softmax is refused as the plain model's output is
    path = fx.save_early_exit_model(str(tmp_path), L, name="logits")
    head = fx.build_model(L, seed=1, softmax=False)
    head.graph.node.append(onnx.helper.make_node("Identity", [contract.INPUT_NAME], ["next_features"]))
    head.graph.output.append(onnx.helper.make_tensor_value_info(
        "next_features", onnx.TensorProto.FLOAT, [contract.BATCH_AXIS_NAME, contract.IQ_ROWS, L]))
    onnx.save(head, str(tmp_path / "logits.stage0.onnx"))
    with pytest.raises(contract.ContractError, match=r"logits.stage0.onnx: stage 0's exit is not class probabilities"):
        EarlyExitModel(path)
