"""`modrec from-onnx`: a shipped student's ONNX file rebuilt as a torch checkpoint that computes
what the file computes (batch norms folded into the convolutions by the export)."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from gnuradio.modrec.runtime import OnnxModel
from gnuradio.modrec.training.cli import main as modrec
from gnuradio.modrec.training.from_onnx import model_from_onnx
from gnuradio.modrec.training.checkpoint import load_checkpoint, model_from_checkpoint

MODELS = Path(__file__).resolve().parents[1] / "models"
PLAIN = ["cnn3", "mobilenet1d", "mini_inception_resnet", "mobilenet1d-skd"]


@pytest.mark.parametrize("name", PLAIN)
def test_a_rebuilt_checkpoint_computes_what_the_onnx_file_computes(tmp_path, name):
    out = tmp_path / "best.pt"
    assert modrec(["from-onnx", "--onnx", str(MODELS / f"{name}.onnx"), "--out", str(out)]) == 0
    ckpt = load_checkpoint(out)
    onnx_model = OnnxModel(str(MODELS / f"{name}.onnx"))
    assert ckpt["model_name"] == onnx_model.metadata["architecture"] and ckpt["classes"] == list(onnx_model.classes)
    assert ckpt["training"]["rebuilt_from_onnx"].endswith(f"{name}.onnx")
    frames = np.random.default_rng(1).standard_normal((32, 2, onnx_model.frame_len)).astype(np.float32) * 3
    with torch.no_grad():
        probs = torch.softmax(model_from_checkpoint(ckpt)(torch.from_numpy(frames)), dim=-1).numpy()
    np.testing.assert_allclose(probs, onnx_model.predict(frames), atol=1e-4)
    assert probs.argmax(1).tolist() == onnx_model.predict(frames).argmax(1).tolist()


def test_models_it_cannot_rebuild_are_named(tmp_path, capsys):
    assert modrec(["from-onnx", "--onnx", str(MODELS / "mobilenet1d_ee.onnx"), "--out", str(tmp_path / "a.pt")]) == 2
    assert "early-exit" in capsys.readouterr().err
    pruned = next(MODELS.glob("cnn3-prune-*.onnx"))
    assert modrec(["from-onnx", "--onnx", str(pruned), "--out", str(tmp_path / "b.pt")]) == 2
    assert "pruned" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("not a model")
    for given, message in ((MODELS / "mobilenet1d-skd-v2.onnx", "joined to a signal detector"),
                           (MODELS / "cnn3-int8.onnx", "a quantised model"),
                           (tmp_path / "notes.txt", "notes.txt: not an ONNX model")):
        assert modrec(["from-onnx", "--onnx", str(given), "--out", str(tmp_path / "c.pt")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "c.pt").exists()
    # an ONNX file whose architecture is not what its weights were trained as
    proto = onnx.load(str(MODELS / "cnn3.onnx"))
    for prop in proto.metadata_props:
        if prop.key == "architecture":
            prop.value = "mobilenet1d"
    onnx.save(proto, str(tmp_path / "mislabelled.onnx"))
    with pytest.raises(ValueError, match=r"mislabelled.onnx: .*mobilenet1d"):
        model_from_onnx(tmp_path / "mislabelled.onnx")
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "b.pt").exists()
