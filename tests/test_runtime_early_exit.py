"""The early-exit runtime: stage-by-stage batched inference against a numpy reference, error
messages for broken early-exit models, and the cascade's equality with the whole network."""

import json
import os

import numpy as np
import onnx
import pytest

import onnx_fixtures as fx
from gnuradio.modrec import contract
from gnuradio.modrec.runtime import EarlyExitModel, OnnxModel, load_model

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


@pytest.mark.parametrize("fallback", [True, False], ids=["all-exits graph", "stages"])
def test_every_exit_for_every_frame(tmp_path, fallback):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=0.6)
    frames = _frames(40, seed=4)
    model = EarlyExitModel(path, fallback=fallback)
    early, final = model.exit_probabilities(frames)
    probs, taken = model.predict_with_exits(frames)
    np.testing.assert_allclose(early[taken == 0], probs[taken == 0], atol=1e-6)
    np.testing.assert_allclose(final, OnnxModel(path).predict(frames), atol=1e-6)


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7, 1.0])
def test_the_all_exits_graph_answers_as_the_cascade(tmp_path, threshold):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=threshold)
    frames = _frames(120, seed=7)
    one_graph, cascade = EarlyExitModel(path), EarlyExitModel(path, fallback=False)
    assert one_graph._all is not None and cascade._all is None
    calls = []
    one_graph._cascade = lambda x: calls.append(len(x))  # must not run while nobody has left yet
    probs, taken = one_graph.predict_with_exits(frames)
    assert calls == []
    want, want_exit = cascade.predict_with_exits(frames)
    assert np.array_equal(taken, want_exit)
    np.testing.assert_allclose(probs, want, atol=1e-6)


def test_the_cascade_takes_over_once_frames_leave(tmp_path):
    path = fx.save_early_exit_model(str(tmp_path), L, threshold=1.0)  # every frame leaves at exit 0
    model = EarlyExitModel(path)
    assert model.fallback_below == pytest.approx(0.05 * 2)  # overhead x whole network / what exit 0 saves
    ran = []
    cascade = model._cascade
    model._cascade = lambda x: (ran.append("cascade"), cascade(x))[1]
    for _ in range(3):
        probs, taken = model.predict_with_exits(_frames(16))
        assert (taken == 0).all()
    assert ran == ["cascade", "cascade"]  # the first batch ran the one graph, then the share rose
    assert model.leave_share > model.fallback_below
    with pytest.raises(FileNotFoundError, match="exit_all"):
        os.remove(os.path.join(str(tmp_path), "ee.exits.onnx"))
        EarlyExitModel(path)
    assert EarlyExitModel(path, fallback=False).n_exits == 2  # the cascade alone needs no such file


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
