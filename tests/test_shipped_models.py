"""Every model shipped in models/ loads through the runtime the blocks use, has its model card,
and classifies a frame; an early-exit model's stage files and all-exits file are there and agree
with its entry."""

import json
from pathlib import Path

import numpy as np
import pytest

from gnuradio.modrec.runtime import DEFAULT_MODEL_NAME, EarlyExitModel, OnnxModel, load_model

MODELS = Path(__file__).resolve().parents[1] / "models"
ENTRIES = sorted(p for p in MODELS.glob("*.onnx") if ".stage" not in p.name and not p.name.endswith(".exits.onnx"))


def test_the_default_model_is_shipped():
    assert (MODELS / DEFAULT_MODEL_NAME) in ENTRIES


def test_the_default_model_is_the_most_accurate_shipped_student_under_1_mb_made_version_2():
    """The table (models/results.json, written by `modrec report`) decides the default's classifier:
    accuracy over all SNRs on the shared test split. The default is that student joined to the
    signal detector (contract version 2: noise, unknown, SNR estimate), named <student>-v2."""
    rows = json.loads((MODELS / "results.json").read_text())["models"]
    shipped = [r for r in rows if r["role"] == "student" and (MODELS / f"{r['name']}.onnx").is_file()
               and (MODELS / f"{r['name']}.onnx").stat().st_size < 1024 * 1024]
    best = max(shipped, key=lambda r: r["accuracy"])
    assert DEFAULT_MODEL_NAME == f"{best['name']}-v2.onnx", (
        f"models/results.json: the most accurate shipped student is {best['name']} "
        f"({100 * best['accuracy']:.2f} %), the default is {DEFAULT_MODEL_NAME}")
    training = load_model(MODELS / DEFAULT_MODEL_NAME).metadata["training"]
    assert training["rebuilt_from_onnx"].endswith(f"models/{best['name']}.onnx")  # that student, unchanged
    assert "detector" in training


# teachers ship so that users see what the students learnt from; the table says which they are
TEACHERS = {r["name"] for r in json.loads((MODELS / "results.json").read_text())["models"] if r["role"] == "teacher"}


@pytest.mark.parametrize("path", ENTRIES, ids=[p.stem for p in ENTRIES])
def test_shipped_model_loads_and_has_a_card(path):
    model = load_model(path)
    assert path.with_suffix(".md").is_file(), f"{path.name} has no model card"
    if path.stem not in TEACHERS:
        assert path.stat().st_size < 1024 * 1024, "students ship under 1 MB"
    frames = np.random.default_rng(0).standard_normal((8, 2, model.frame_len)).astype(np.float32)
    probs = model.predict(frames)
    assert probs.shape == (8, len(model.classes)) and np.allclose(probs.sum(1), 1, atol=1e-4)
    if isinstance(model, EarlyExitModel):
        # with no early exit allowed the cascade is the whole network, i.e. the entry file
        whole = EarlyExitModel(path, thresholds=[-1.0] * (model.n_exits - 1)).predict(frames)
        np.testing.assert_allclose(whole, OnnxModel(path).predict(frames), atol=1e-5)
        # a stream's first window is a probe through the all-exits graph: it answers as the cascade
        probs, taken = EarlyExitModel(path).predict_with_exits(frames)
        want, want_taken = EarlyExitModel(path, adaptive=False).predict_with_exits(frames)
        assert np.array_equal(taken, want_taken)
        np.testing.assert_allclose(probs, want, atol=1e-5)
