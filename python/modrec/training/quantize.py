"""int8 models: static quantisation of a contract ONNX model with onnxruntime.quantization.

QDQ format (QuantizeLinear/DequantizeLinear pairs around each quantised operator, which ONNX
Runtime fuses into integer kernels), signed 8-bit activations and weights, one weight scale per
output channel, activation ranges calibrated (min-max) on generated frames: every class of the
model at SNRs spread over -20..18 dB, through the synthetic generator's channel at random gains
(training/data/generator.py), so each layer sees the range real frames bring. The file keeps the
fp32 model's metadata (classes, open-set threshold, ...) and gains ``quantization``
(contract.QUANTIZATION), so the runtime loads it like any contract model.

Whether int8 is faster depends on the graph and the CPU: measured on the 2-core development
machine (AVX-512 VNNI), int8 ran plain 1-D convolutions (cnn3) about 1.4x faster than fp32, and
2-D-layout depthwise-separable graphs about 3x slower than their fp32 NCHWc kernels
(``apps/quantization_study.py`` measures each shipped student side by side).
"""

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx

from .. import contract
from ..runtime import OnnxModel
from .data.generator import DEFAULT_CONFIG, TRAINING_CLASSES, generate_frames

QUANTIZATION_INT8 = "int8-qdq-static-per-channel"
# Only the convolutions and the dense layers: they hold the weights and the multiply-adds. The
# rest stays float: the softmax (int8 probabilities come in steps of 1/255 and no longer sum to
# 1), the detector's DFT products and log spectrum (a 48 dB range cannot cover a -60 dB floor).
QUANTIZED_OPS = ("Conv", "Gemm")
CALIBRATION_SNRS_DB = np.arange(-20, 20, 2)


def calibration_frames(classes, frame_len, samples_per_symbol, n_frames=2048, seed=0):
    """float32 (N, 2, frame_len) frames for activation ranges: ``n_frames`` spread evenly over
    ``classes`` (generator names, ``noise`` included) and CALIBRATION_SNRS_DB, seeded. Raises
    ValueError for a class the generator does not make."""
    unknown = [c for c in classes if c not in TRAINING_CLASSES]
    if unknown:
        raise ValueError(f"calibration frames come from the synthetic generator, which does not make "
                         f"{', '.join(unknown)} (it makes {', '.join(TRAINING_CLASSES)})")
    import dataclasses

    cfg = dataclasses.replace(DEFAULT_CONFIG, frame_len=int(frame_len), samples_per_symbol=int(samples_per_symbol))
    rng = np.random.default_rng(seed)
    per_class = -(-n_frames // len(classes))
    frames = []
    for name in classes:
        snrs = rng.choice(CALIBRATION_SNRS_DB, size=per_class).astype(np.float64)
        frames.append(generate_frames(name, per_class, snrs, rng, cfg))
    x = np.concatenate(frames)[:n_frames]
    x = x[rng.permutation(len(x))]
    iq = np.empty((len(x), 2, frame_len), np.float32)
    iq[:, 0], iq[:, 1] = x.real, x.imag
    return iq


class _Frames:
    """onnxruntime.quantization.CalibrationDataReader over a frame array, in batches."""

    def __init__(self, frames, batch=256):
        self._batches = [frames[i : i + batch] for i in range(0, len(frames), batch)]

    def get_next(self):
        return {contract.INPUT_NAME: self._batches.pop(0)} if self._batches else None

    def rewind(self):  # newer onnxruntime versions may read the data twice
        pass


def quantize_int8(onnx_path, out_path, n_frames=2048, seed=0):
    """Write an int8 copy of the contract model ``onnx_path`` to ``out_path``; returns info
    {"path", "bytes", "fp32_bytes", "calibration_frames", "quantization"}. Raises
    contract.ContractError for a file that is not a contract model, ValueError for an early-exit
    model (its stage files would need the same calibration) or classes the generator cannot make.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = OnnxModel(str(onnx_path))
    meta = model.metadata
    if int(meta[contract.EXITS]) != 1:
        raise ValueError(f"{onnx_path}: an early-exit model (exits = {meta[contract.EXITS]}); quantise a plain model")
    if meta.get(contract.QUANTIZATION, contract.QUANTIZATION_NONE) != contract.QUANTIZATION_NONE:
        raise ValueError(f"{onnx_path}: already quantised ({meta[contract.QUANTIZATION]})")
    frames = calibration_frames(model.classes, model.frame_len, model.samples_per_symbol, n_frames, seed)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # shape inference and graph clean-up before quantising (onnxruntime's recommended step);
        # the symbolic pass does not follow the contract's named batch axis through every op
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out_path), _Frames(frames), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=list(QUANTIZED_OPS))
    proto = onnx.load(str(out_path))
    props = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    props[contract.QUANTIZATION] = QUANTIZATION_INT8
    training = json.loads(props.get(contract.TRAINING, "{}"))
    training["quantization"] = {"method": "onnxruntime.quantization.quantize_static", "format": "QDQ",
                                "ops": list(QUANTIZED_OPS),
                                "activations": "QInt8", "weights": "QInt8 per channel", "calibration": "minmax",
                                "calibration_frames": len(frames), "calibration_seed": seed,
                                "from": Path(onnx_path).name}
    props[contract.TRAINING] = json.dumps(training, sort_keys=True)
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save_model(proto, str(out_path), save_as_external_data=False)
    OnnxModel(str(out_path))  # the contract checks and probes, as any user's load
    return {"path": str(out_path), "bytes": out_path.stat().st_size, "fp32_bytes": Path(onnx_path).stat().st_size,
            "calibration_frames": len(frames), "quantization": QUANTIZATION_INT8}
