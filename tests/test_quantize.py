"""int8 models (training/quantize.py, `modrec quantize`): a contract model that says it is
quantised, answers like its fp32 model, and classifies a stream through the block."""

import numpy as np
import onnx
import pytest
import torch

from gnuradio.modrec import contract
from gnuradio.modrec.classes import RADIOML2016_CLASSES
from gnuradio.modrec.runtime import OnnxModel
from gnuradio.modrec.training.models import create_model
from gnuradio.modrec.training.onnx_export import export_onnx
from gnuradio.modrec.training.quantize import QUANTIZATION_INT8, calibration_frames, quantize_int8


@pytest.fixture(scope="module")
def fp32_and_int8(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quantize")
    torch.manual_seed(0)
    fp32 = folder / "cnn3.onnx"
    export_onnx(create_model("cnn3"), fp32, classes=list(RADIOML2016_CLASSES), frame_len=128, training={"seed": 0})
    int8 = folder / "cnn3-int8.onnx"
    info = quantize_int8(fp32, int8, n_frames=256)
    return fp32, int8, info


def test_the_int8_file_is_a_contract_model_that_says_it_is_quantised(fp32_and_int8):
    fp32, int8, info = fp32_and_int8
    assert info["quantization"] == QUANTIZATION_INT8 and info["calibration_frames"] == 256
    assert info["bytes"] < 0.5 * info["fp32_bytes"]  # int8 weights
    model = OnnxModel(str(int8))
    assert model.metadata[contract.QUANTIZATION] == QUANTIZATION_INT8
    assert model.metadata[contract.TRAINING]["quantization"]["calibration_frames"] == 256
    assert model.metadata[contract.TRAINING]["seed"] == 0  # the fp32 model's own record is kept
    assert model.classes == OnnxModel(str(fp32)).classes
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Softmax"} <= ops  # the softmax stays float


def test_int8_answers_like_fp32(fp32_and_int8):
    fp32, int8, _ = fp32_and_int8
    frames = calibration_frames(list(RADIOML2016_CLASSES), 128, 8, n_frames=512, seed=5)
    p32, p8 = OnnxModel(str(fp32)).predict(frames), OnnxModel(str(int8)).predict(frames)
    np.testing.assert_allclose(p8.sum(1), 1, atol=1e-5)  # probabilities, not 1/255 steps
    assert np.abs(p8 - p32).max() < 0.1
    assert (p8.argmax(1) == p32.argmax(1)).mean() > 0.9


def test_calibration_frames_cover_the_classes_at_any_gain_and_refuse_unknown_ones():
    frames = calibration_frames(["BPSK", "noise"], 64, 8, n_frames=100, seed=1)
    assert frames.shape == (100, 2, 64) and frames.dtype == np.float32 and np.isfinite(frames).all()
    rms = np.sqrt((frames**2).sum(1).mean(1))
    assert rms.max() / max(rms.min(), 1e-12) > 10  # random receiver gains
    with pytest.raises(ValueError, match="does not make OFDM"):
        calibration_frames(["BPSK", "OFDM"], 64, 8)


def test_an_int8_model_is_refused_a_second_quantisation(fp32_and_int8, tmp_path):
    _, int8, _ = fp32_and_int8
    with pytest.raises(ValueError, match="already quantised"):
        quantize_int8(int8, tmp_path / "again.onnx", n_frames=64)


def test_an_int8_model_classifies_a_stream_through_the_block(fp32_and_int8):
    import pmt
    from gnuradio import blocks, gr, modrec

    _, int8, _ = fp32_and_int8
    x = calibration_frames(["QPSK"], 128, 8, n_frames=40, seed=2)
    samples = (x[:, 0] + 1j * x[:, 1]).astype(np.complex64).ravel()
    tb = gr.top_block()
    src, snk = blocks.vector_source_c(samples.tolist(), False), blocks.vector_sink_c()
    clf = modrec.classifier(str(int8))
    tb.connect(src, clf, snk)
    tb.run()
    assert np.array_equal(np.array(snk.data(), np.complex64), samples)
    tags = [t for t in snk.tags() if pmt.symbol_to_string(t.key) == "modrec"]
    assert [t.offset for t in tags] == list(range(0, len(samples), 128))
    want = OnnxModel(str(int8)).predict(x).argmax(1)
    got = [pmt.to_long(pmt.dict_ref(t.value, pmt.intern("index"), pmt.PMT_NIL)) for t in tags]
    assert got == list(want)
