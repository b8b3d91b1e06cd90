"""A torch model to a contract ONNX file (python/modrec/contract.py): the export itself, with the
exporter fallback and the opset check, and the torch/ONNX Runtime parity check. export.py exports
training checkpoints with it, exits/export.py the stages of an early-exit model."""

import copy
import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from .. import contract
from ..classes import DEFAULT_SAMPLES_PER_SYMBOL, NOISE_LABEL
from .conv2d_layout import as_conv2d, check_same_outputs
from .flops import count_flops, count_params
from .models.signal_detector import NOISE_COLUMN, SNR_COLUMN
from .nchwc_graph import keep_blocked

PARITY_TOL = 1e-4
SNR_PARITY_TOL_DB = 1e-3


class ParityError(RuntimeError):
    pass


class DetectOutputs(nn.Module):
    """A classifier with detector heads (models/detecting.py) as a module whose forward gives
    both its outputs, (class logits, detector outputs): what ContractOutputs joins with
    ``joint=True``, and what the 2-D layout (conv2d_layout.as_conv2d) wraps."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_detect(x)


class ContractOutputs(nn.Module):
    """What the exported graph computes: (probs, logits) of a classifier (students return logits,
    what the loss wants; the contract wants probabilities first), or, joined to a signal detector
    (models/signal_detector.py), (probs, logits, snr_db) over the classifier's classes and
    ``noise``. With ``joint`` the model gives both itself (DetectOutputs: a classifier with
    detector heads), in one pass.

    The joined logits are [z, d + logsumexp(z)], z the classifier's logits and d the detector's
    noise logit less ``noise_bias``, so that softmax gives p(noise) = sigmoid(d) and p(class c) =
    (1 - sigmoid(d)) softmax(z)_c: the classifier's answer, scaled by the detector's belief that
    there is a signal. ``noise`` wins when d > log max softmax(z); ``noise_bias`` (export.py:
    calibrate_noise_bias) sets how often that happens to frames that hold a signal.
    """

    def __init__(self, model, detector=None, noise_bias=0.0, joint=False):
        super().__init__()
        self.model, self.detector, self.noise_bias, self.joint = model, detector, float(noise_bias), bool(joint)

    def forward(self, iq):
        if self.joint:
            logits, d = self.model(iq)
        else:
            logits = self.model(iq)
            if self.detector is None:
                return torch.softmax(logits, dim=-1), logits
            d = self.detector(iq)
        noise = d[:, NOISE_COLUMN : NOISE_COLUMN + 1] - self.noise_bias + torch.logsumexp(logits, dim=-1, keepdim=True)
        logits = torch.cat([logits, noise], dim=-1)
        return torch.softmax(logits, dim=-1), logits, d[:, SNR_COLUMN]

    @property
    def output_names(self):
        names = [contract.PROBS_OUTPUT_NAME, contract.LOGITS_OUTPUT_NAME]
        return names + ([contract.SNR_OUTPUT_NAME] if self.detector is not None or self.joint else [])


def _default_opset(proto):
    """The version of the default ONNX domain a model imports (its opset)."""
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    return versions[0] if versions else None


def _torch_export(wrapped, dummy, path, opset, dynamo):
    kwargs = dict(
        input_names=[contract.INPUT_NAME],
        output_names=wrapped.output_names,
        opset_version=opset,
    )
    if dynamo:
        # the dynamo exporter logs one warning per missing torchvision op; irrelevant here
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
        batch = torch.export.Dim(contract.BATCH_AXIS_NAME, min=1, max=1 << 20)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(
                wrapped, (dummy,), None, dynamo=True, dynamic_shapes={"iq": {0: batch}},
                external_data=False, verbose=False, **kwargs,
            )
        prog.save(str(path), external_data=False)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # we chose the legacy exporter knowingly
            torch.onnx.export(
                wrapped, (dummy,), str(path), dynamo=False,
                dynamic_axes={name: {0: contract.BATCH_AXIS_NAME} for name in [contract.INPUT_NAME, *wrapped.output_names]},
                do_constant_folding=True, **kwargs,
            )


def parity_inputs(frame_len, seed=0, real_like=None):
    """Random frames at very different gains, an all-zero frame, and real frames if given."""
    rng = np.random.default_rng(seed)
    sets = {}
    base = rng.standard_normal((8, 2, frame_len)).astype(np.float32)
    for gain in (1e-4, 1.0, 1e3):
        sets[f"gaussian_gain_{gain:g}"] = base * np.float32(gain)
    sets["single_frame"] = base[:1]
    sets["zeros"] = np.zeros((2, 2, frame_len), np.float32)
    t = np.arange(frame_len)
    sym = rng.choice([-1.0, 1.0], size=(4, 2, frame_len // 8 + 1)).repeat(8, axis=2)[:, :, :frame_len]
    sets["qpsk_like"] = (sym * np.float32(0.3) + 0.05 * rng.standard_normal(sym.shape)).astype(np.float32)
    sets["tone"] = np.stack([np.cos(0.1 * t), np.sin(0.1 * t)])[None].astype(np.float32).repeat(2, 0)
    if real_like is not None:
        real = np.asarray(real_like[:64], np.float32)
        sets["real"] = real
        sets["real_gain_37"] = real * np.float32(37.0)
    return sets


def check_parity(model, onnx_path, frame_len, tol=PARITY_TOL, real_like=None, detector=None, noise_bias=0.0):
    """Max |p_torch - p_ort| of the probabilities over the parity inputs; raises ParityError above
    ``tol``. With a ``detector`` (joined to the model as ContractOutputs joins them), or detector
    heads of the model's own (models/detecting.py), the SNR estimate must also agree, within
    ``SNR_PARITY_TOL_DB``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    joint = hasattr(model, "forward_detect")
    model = copy.deepcopy(model).eval().cpu()
    wrapped = ContractOutputs(DetectOutputs(model) if joint else model,
                              None if detector is None else copy.deepcopy(detector).eval().cpu(), noise_bias,
                              joint=joint).eval()
    worst, report = 0.0, {}
    for name, x in parity_inputs(frame_len, real_like=real_like).items():
        with torch.no_grad():
            outs_t = [o.numpy() for o in wrapped(torch.from_numpy(x))]
        outs_o = sess.run(wrapped.output_names, {contract.INPUT_NAME: x})
        if not all(np.all(np.isfinite(o)) for o in outs_o):
            raise ParityError(f"{onnx_path}: non-finite outputs from ONNX Runtime on input '{name}'")
        diff = float(np.max(np.abs(outs_t[0] - outs_o[0])))
        report[name] = diff
        worst = max(worst, diff)
        if len(outs_t) > 2 and float(np.max(np.abs(outs_t[2] - outs_o[2]))) >= SNR_PARITY_TOL_DB:
            raise ParityError(f"{onnx_path}: torch vs ONNX Runtime SNR estimates differ by "
                              f"{float(np.max(np.abs(outs_t[2] - outs_o[2]))):.3g} dB on input '{name}'")
    if worst >= tol:
        raise ParityError(f"{onnx_path}: torch vs ONNX Runtime probabilities differ by {worst:.3g} "
                          f"(tolerance {tol:g}); per input: {report}")
    return worst, report


def add_metadata(path, values):
    """Add ``values`` (contract keys -> python values) to the metadata of the ONNX file ``path``,
    in place, and check the file against the contract again."""
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    props.update({k: v if isinstance(v, str) else str(v) for k, v in values.items()})
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save_model(proto, str(path), save_as_external_data=False)
    decoded = contract.decode_metadata(props, source=str(path))
    contract.decode_open_set_metadata(decoded, source=str(path))


def read_onnx(path):
    """The ONNX ModelProto in ``path``; contract.ContractError naming the file when it is not an
    ONNX model (onnx cannot parse it, or it holds no graph: a text file, a checkpoint)."""
    path = Path(path)
    try:
        proto = onnx.load(str(path))
    except Exception as err:  # noqa: BLE001 (protobuf's DecodeError and friends)
        raise contract.ContractError(f"{path}: not an ONNX model (onnx cannot parse it: {err})") from None
    if not proto.graph.node:
        raise contract.ContractError(f"{path}: not an ONNX model (no graph in it)")
    return proto


def relayout_onnx(src, out):
    """Write ``src`` (a contract model in the 2-D layout, exported before nchwc_graph.keep_blocked
    was part of the export) to ``out`` rewritten by keep_blocked: its metadata kept, its outputs
    checked against ``src``'s in ONNX Runtime on the parity inputs (every output within
    PARITY_TOL, relative to its magnitude above 1) before ``out`` is written. ``out`` may be
    ``src``. Returns keep_blocked's counts. Raises ValueError for a 1-D graph (re-export it:
    ``modrec from-onnx``, then ``modrec export``), an early-exit or quantised model (relayout the
    fp32 plain model, then quantise it), or outputs that differ; contract.ContractError for a file
    that is not a contract model."""
    import onnxruntime as ort

    src, out = Path(src), Path(out)
    proto = read_onnx(src)
    metadata = contract.decode_metadata({p.key: p.value for p in proto.metadata_props}, source=str(src))
    quantization = metadata.get(contract.QUANTIZATION, contract.QUANTIZATION_NONE)
    if quantization != contract.QUANTIZATION_NONE:
        raise ValueError(f"{src}: a quantised model ({quantization!r}); relayout the fp32 model it was made from, "
                         f"then quantise that (modrec quantize)")
    if metadata[contract.EXITS] != 1:
        raise ValueError(f"{src}: an early-exit model ({metadata[contract.EXITS]} exits); its stage files go with it: "
                         f"re-export it from its training run (modrec export)")
    if metadata.get(contract.CONV_LAYOUT) != contract.CONV_LAYOUT_2D:
        layout = metadata.get(contract.CONV_LAYOUT)
        found = (f"metadata {contract.CONV_LAYOUT} is {layout!r}" if layout else
                 f"no {contract.CONV_LAYOUT} in its metadata: exported before the 2-D layout")
        raise ValueError(f"{src}: a 1-D graph ({found}); re-export it in the 2-D layout instead: "
                         f"modrec from-onnx, then modrec export")
    counts = keep_blocked(proto)
    onnx.checker.check_model(proto, full_check=True)
    before = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    after = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    name = before.get_inputs()[0].name
    for label, frames in parity_inputs(metadata[contract.FRAME_LEN]).items():
        for output, want, got in zip(before.get_outputs(), before.run(None, {name: frames}),
                                     after.run(None, {name: frames})):
            worst = float(np.max(np.abs(want - got) / np.maximum(np.abs(want), 1.0))) if want.size else 0.0
            if not worst <= PARITY_TOL:
                raise ValueError(f"{src}: the rewritten graph's output {output.name!r} differs by {worst:.3g} "
                                 f"(relative, tolerance {PARITY_TOL:g}) on the parity frames {label!r}; nothing written")
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(out), save_as_external_data=False)
    return counts


def clean_exported(proto):
    """What every exported graph needs before it ships, in place; returns ``proto``."""
    # the dynamo exporter annotates every node with stack traces and local source paths: they
    # leak the build machine's layout into a shipped file and add ~10 % to its size
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del proto.graph.value_info[:]
    proto.graph.doc_string = ""
    # both exporters name the batch dim themselves; the contract fixes the name
    for vi in list(proto.graph.input) + list(proto.graph.output):
        vi.type.tensor_type.shape.dim[0].dim_param = contract.BATCH_AXIS_NAME
    return proto


def export_onnx(model, path, *, classes, frame_len, samples_per_symbol=DEFAULT_SAMPLES_PER_SYMBOL,
                architecture=None, training=None, distillation="none", pruning="none", exits=1,
                opset=18, dynamo=True, parity=True, real_like=None, extra_metadata=None, detector=None,
                noise_bias=0.0, conv_layout=contract.CONV_LAYOUT_2D, blocked=True):
    """Export ``model`` (logits) as a contract-conforming single-file ONNX model; returns info.

    Its outputs are ``probs`` and ``logits``; with a ``detector`` (a SignalDetector) joined to it
    (ContractOutputs, its noise logit less ``noise_bias``), or when ``model`` has detector heads of
    its own (models/detecting.py; ``classes`` then name its known classes), also ``snr_db``, and
    ``classes`` gain ``noise`` (contract.NOISE_CLASS), as they are also when ``classes`` already
    hold it (a classifier trained on a noise class).
    ``conv_layout`` CONV_LAYOUT_2D (the default) writes the 1-D convolutions as (1 x k) 2-D ones
    (conv2d_layout.py: the same arithmetic, 1.3-3.5x faster in ONNX Runtime), unless the 2-D copy
    does not give the model's outputs, when it warns and writes the 1-D graph; CONV_LAYOUT_1D
    writes the 1-D graph; a 2-D graph is then rewritten so ONNX Runtime keeps squeeze-excite and
    global pooling in its blocked layout (nchwc_graph.keep_blocked; ``blocked`` in the returned
    info counts the rewrites, None for a 1-D graph or with ``blocked=False``, which writes the
    graph as the exporter wrote it: for benchmarks). The parity check always compares the file
    with the 1-D torch model.
    Returns {"path", "params", "flops", "parity_max_abs_diff", "parity", "bytes", "exporter",
    "opset", "conv_layout", "blocked"}.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).eval().cpu()  # leave the caller's model (maybe on a GPU, in train mode) alone
    n_classes = model(torch.zeros(1, contract.IQ_ROWS, frame_len)).shape[-1]
    if n_classes != len(classes):
        raise ValueError(f"model has {n_classes} outputs but {len(classes)} class names were given")
    params, flops = count_params(model), count_flops(model, frame_len)
    joint = hasattr(model, "forward_detect")
    if joint and detector is not None:
        raise ValueError(f"{path}: {getattr(model, 'model_name', 'the model')} has detector heads of its own; export it "
                         f"without a second detector")
    if detector is not None:
        detector = copy.deepcopy(detector).eval().cpu()
        params, flops = params + count_params(detector), flops + count_flops(detector, frame_len)
    if detector is not None or joint:
        classes = [*classes, NOISE_LABEL]
    if conv_layout not in contract.CONV_LAYOUTS:
        raise ValueError(f"conv_layout must be one of {', '.join(contract.CONV_LAYOUTS)}, got {conv_layout!r}")
    net = DetectOutputs(model) if joint else model
    wrapped = ContractOutputs(net, detector, noise_bias, joint=joint).eval()
    if conv_layout == contract.CONV_LAYOUT_2D:
        try:
            twin = ContractOutputs(as_conv2d(net), None if detector is None else as_conv2d(detector), noise_bias,
                                   joint=joint).eval()
            why = check_same_outputs(wrapped, twin, frame_len)
        except ValueError as err:
            why = str(err)
        if why is None:
            wrapped = twin
        else:
            warnings.warn(f"{path}: exported with 1-D convolutions, not the faster 2-D layout: {why}")
            conv_layout = contract.CONV_LAYOUT_1D
    dummy = torch.randn(2, contract.IQ_ROWS, frame_len)

    # The dynamo exporter is still young, and writes its own opset (it only tries to convert to the
    # one asked for); the TorchScript exporter writes the opset it is given: it is the fallback.
    exporter, written = "torchscript", None
    if dynamo:
        try:
            _torch_export(wrapped, dummy, path, opset, True)
            exporter = "dynamo"
            written = _default_opset(onnx.load(str(path), load_external_data=False))
        except Exception as err:
            warnings.warn(f"dynamo ONNX export failed ({type(err).__name__}: {err}); using dynamo=False")
        if exporter == "dynamo" and written != opset:
            warnings.warn(f"the dynamo exporter wrote opset {written}, not {opset}; exporting with dynamo=False")
            exporter = "torchscript"
    if exporter == "torchscript":
        try:
            _torch_export(wrapped, dummy, path, opset, False)
        except Exception as err:
            path.unlink(missing_ok=True)
            raise ValueError(f"{path}: ONNX export at opset {opset} failed ({type(err).__name__}: {err})") from err
    proto = clean_exported(onnx.load(str(path), load_external_data=True))
    rewrites = keep_blocked(proto) if blocked and conv_layout == contract.CONV_LAYOUT_2D else None
    written = _default_opset(proto)
    if written != opset:
        path.unlink(missing_ok=True)
        raise ValueError(f"{path}: opset {opset} was asked for, but the exporter wrote opset {written}; "
                         f"pick an opset it supports (default 18)")
    metadata = {
        contract.CLASSES: list(classes),
        contract.FRAME_LEN: int(frame_len),
        contract.SAMPLES_PER_SYMBOL: int(samples_per_symbol),
        contract.ARCHITECTURE: architecture or getattr(model, "model_name", type(model).__name__.lower()),
        contract.DISTILLATION: distillation,
        contract.PRUNING: pruning,
        contract.EXITS: int(exits),
        contract.PARAMS: int(params),
        contract.FLOPS: int(flops),
        contract.TRAINING: training if training is not None else {},
        contract.CONV_LAYOUT: conv_layout,
        **({contract.NOISE_CLASS: NOISE_LABEL} if NOISE_LABEL in classes else {}),
        **(extra_metadata or {}),
    }
    del proto.metadata_props[:]
    for key, value in contract.encode_metadata(metadata).items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "gr-modrec"
    onnx.checker.check_model(proto, full_check=True)
    for stale in path.parent.glob(path.name + ".data"):
        stale.unlink()
    onnx.save_model(proto, str(path), save_as_external_data=False)
    contract.decode_metadata({p.key: p.value for p in onnx.load(str(path)).metadata_props}, source=str(path))

    info = {"path": str(path), "params": params, "flops": flops, "bytes": path.stat().st_size,
            "exporter": exporter, "opset": written, "conv_layout": conv_layout, "blocked": rewrites}
    if parity:
        worst, report = check_parity(model, path, frame_len, real_like=real_like, detector=detector,
                                     noise_bias=noise_bias)
        info.update(parity_max_abs_diff=worst, parity=report)
    return info
