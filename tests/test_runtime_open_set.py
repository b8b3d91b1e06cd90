"""Contract version 2 in the runtime: the SNR estimate, the noise class and the calibrated
unknown threshold; version-1 models read and decide exactly as before."""

import numpy as np
import onnx
import pytest
from onnx_fixtures import V2_CLASSES, build_model, build_v2_model, save_model, v2_reference

from gnuradio.modrec import contract
from gnuradio.modrec.runtime import load_model
from gnuradio.modrec.runtime.decisions import MODEL_RULE, check_min_confidence, classify_frames, decision_labels
from gnuradio.modrec.runtime.open_set import energy_score, maxprob_score, open_set_score


def _save(tmp_path, proto, name="v2.onnx"):
    path = tmp_path / name
    onnx.save(proto, str(path))
    return str(path)


def _frames(n=400, frame_len=32, seed=1):
    rng = np.random.default_rng(seed)
    gain = 10 ** rng.uniform(-2, 2, size=(n, 1))
    return ((rng.standard_normal((n, frame_len)) + 1j * rng.standard_normal((n, frame_len))) * gain).astype(np.complex64)


def _iq(frames):
    return np.stack([frames.real, frames.imag], axis=1).astype(np.float32)


def test_scores_match_their_definitions():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(maxprob_score(probs), 1 - probs.max(1), rtol=1e-6)
    np.testing.assert_allclose(energy_score(logits), -np.log(np.exp(logits).sum(1)), rtol=1e-6)
    assert energy_score(np.array([[1000.0, 999.0]]))[0] == pytest.approx(-1000 - np.log1p(np.exp(-1.0)))  # no overflow
    with pytest.raises(ValueError, match="needs the model's 'logits' output"):
        open_set_score("energy", probs)


def test_a_version_2_model_gives_its_snr_estimate_and_open_set_score(tmp_path):
    proto = build_v2_model()
    model = load_model(_save(tmp_path, proto))
    assert model.metadata["version"] == "2" and model.has_snr
    assert model.open_set == contract.OpenSetMetadata("noise", "energy", -1.0, 0.05)
    frames = _frames()
    out = model.predict_details(_iq(frames))
    probs, logits, snr = v2_reference(_iq(frames), proto)
    np.testing.assert_allclose(out.probs, probs, atol=1e-5)
    np.testing.assert_allclose(out.snr_db, snr, atol=1e-3)
    np.testing.assert_allclose(out.unknown_score, energy_score(logits), atol=1e-4)
    np.testing.assert_allclose(out.logits, logits, atol=1e-4)
    assert out.exits.tolist() == [0] * len(frames)


def test_the_model_rule_calls_unknown_above_the_threshold_and_never_overrules_noise(tmp_path):
    proto = build_v2_model(threshold=-1.2)
    model = load_model(_save(tmp_path, proto))
    frames = _frames()
    probs, logits, snr = v2_reference(_iq(frames), proto)
    decided = classify_frames(model, frames)  # MODEL_RULE by default
    top = probs.argmax(1)
    noise = V2_CLASSES.index("noise")
    unknown = (energy_score(logits) > -1.2) & (top != noise)
    assert 0 < unknown.sum() < len(frames) and (top == noise).any()  # the fixture exercises every branch
    np.testing.assert_array_equal(decided.index, np.where(unknown, -1, top))
    np.testing.assert_allclose(decided.snr_db, snr, atol=1e-3)
    np.testing.assert_allclose(decided.logits, logits, atol=1e-4)  # what open-set-eval scores, one run
    assert decision_labels(model) == ["BPSK", "QPSK", "noise", "WBFM", "unknown"]
    # a user's min_confidence overrides the model's rule: only the top probability counts
    override = classify_frames(model, frames, min_confidence=0.0)
    np.testing.assert_array_equal(override.index, top)
    # a frame with NaN samples is not run: unknown, SNR NaN
    frames[3, 5] = np.nan
    decided = classify_frames(model, frames)
    assert decided.index[3] == -1 and np.isnan(decided.snr_db[3]) and decided.confidence[3] == 0
    assert np.isnan(decided.logits[3]).all() and np.isfinite(np.delete(decided.logits, 3, 0)).all()


def test_a_noise_class_of_another_name_is_labelled_noise(tmp_path):
    model = load_model(_save(tmp_path, build_v2_model(classes=("BPSK", "empty", "QPSK"), noise_class="empty")))
    assert decision_labels(model) == ["BPSK", "noise", "QPSK", "unknown"]


def test_a_version_1_model_decides_as_before(tmp_path):
    model = load_model(save_model(tmp_path / "v1.onnx", metadata={**build_model_metadata(), "version": "1"}))
    assert model.metadata["version"] == "1" and not model.has_snr and model.open_set == contract.OpenSetMetadata()
    frames = _frames()
    decided = classify_frames(model, frames)
    np.testing.assert_array_equal(decided.index, model.predict(_iq(frames)).argmax(1))
    assert np.isnan(decided.snr_db).all() and decision_labels(model)[-1] == "unknown"


def build_model_metadata():
    return {p.key: p.value for p in build_model().metadata_props}


@pytest.mark.parametrize("change, match", [
    ({contract.NOISE_CLASS: "silence"}, r"'noise_class' is 'silence', which is not one of its classes"),
    ({contract.UNKNOWN_THRESHOLD: None}, "'unknown_score' and 'unknown_threshold' go together"),
    ({contract.UNKNOWN_SCORE: "odin"}, "'unknown_score' must be one of maxprob, energy, got 'odin'"),
    ({contract.UNKNOWN_THRESHOLD: "nan"}, "'unknown_threshold' should be a finite number"),
    ({contract.UNKNOWN_FALSE_RATE: "1.5"}, r"'unknown_false_rate' should be a finite number in \[0, 1\]"),
])
def test_bad_open_set_metadata_is_refused_by_name(tmp_path, change, match):
    base = {p.key: p.value for p in build_v2_model().metadata_props}
    props = {k: v for k, v in {**base, **change}.items() if v is not None}
    proto = build_v2_model()
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    with pytest.raises(contract.ContractError, match=match):
        load_model(_save(tmp_path, proto))


def test_an_energy_threshold_needs_the_logits_output(tmp_path):
    with pytest.raises(contract.ContractError, match="'unknown_score' is 'energy', which needs an output named 'logits'"):
        load_model(_save(tmp_path, build_v2_model(outputs=("snr_db",))))
    model = load_model(_save(tmp_path, build_v2_model(score="maxprob", threshold=0.5, outputs=()), "maxprob.onnx"))
    assert not model.has_snr and model.predict_details(_iq(_frames(8))).snr_db is None


def test_min_confidence_is_the_model_rule_or_a_probability():
    assert check_min_confidence(-1) == MODEL_RULE and check_min_confidence("0.5") == 0.5
    for bad in (-0.5, 1.5, "high", None):
        with pytest.raises(ValueError, match="min_confidence"):
            check_min_confidence(bad)
