"""Export of an early-exit student: the entry file plus one ONNX file per stage.

``<name>.onnx`` is the whole network up to its final exit: an ordinary contract model (any
runtime that ignores exits runs it as the plain student) whose metadata (keys and their decoding:
contract.py) adds ``exits`` (K), ``exit_policy``, ``exit_thresholds`` (one per early exit),
``exit_gates`` (policy ``gate``), ``exit_stages`` (the stage files, beside it), ``exit_flops``
(FLOPs of each stage: its blocks and its exit head) and ``exit_placements``.
``<name>.stage<k>.onnx`` maps stage k's input (raw I/Q ``iq`` for k = 0, else ``features``) to
``probs`` and, except for the last stage, ``next_features`` for the next one; the runtime sends only
the frames that did not exit on to the next stage. ``<name>.exits.onnx`` (metadata ``exit_all``)
maps ``iq`` to every exit's probabilities (``probs_exit<k>``) in one graph: the runtime runs it
instead of the cascade while few frames leave early (no split between sessions to pay for).
"""

import copy
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ... import contract
from ..onnx_export import ParityError, clean_exported, export_onnx, parity_inputs
from ..flops import count_flops

FEATURES = "features"  # a later stage's input
NEXT_FEATURES = "next_features"  # what a stage hands on


class _StageWithSoftmax(nn.Module):
    def __init__(self, stage):
        super().__init__()
        self.stage = stage

    def forward(self, x):
        out = self.stage(x)
        if isinstance(out, tuple):
            return torch.softmax(out[0], dim=-1), out[1]
        return torch.softmax(out, dim=-1)


class _AllExitsWithSoftmax(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return tuple(torch.softmax(o, dim=-1) for o in self.model.forward_exits(x))


def _export_stage(stage, example, path, input_name, last, metadata, opset):
    outputs = [contract.PROBS_OUTPUT_NAME] + ([] if last else [NEXT_FEATURES])
    _export_graph(_StageWithSoftmax(stage).eval(), example, path, input_name, outputs, metadata, opset)


def _export_graph(wrapped, example, path, input_name, outputs, metadata, opset):
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    batch = torch.export.Dim(contract.BATCH_AXIS_NAME, min=1, max=1 << 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(wrapped, (example,), None, dynamo=True, dynamic_shapes={"x": {0: batch}},
                                 input_names=[input_name], output_names=outputs, opset_version=opset,
                                 external_data=False, verbose=False)
    prog.save(str(path), external_data=False)
    proto = clean_exported(onnx.load(str(path)))
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=json.dumps(value) if not isinstance(value, str) else value)
    proto.producer_name = "gr-modrec"
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, str(path))


def stage_flops(model, frame_len):
    """FLOPs of each stage (its blocks and its exit head) for one frame."""
    flops, x = [], torch.zeros(1, contract.IQ_ROWS, frame_len)
    with torch.no_grad():
        for stage in model.stages():
            flops.append(count_flops(stage, x.shape[-1], in_rows=x.shape[1]))
            out = stage.eval()(x)
            x = out[1] if isinstance(out, tuple) else x
    return flops


def export_early_exit(model, path, *, thresholds, policy, classes, frame_len, opset=18, gates=None, **common):
    """Export the entry file and the stage files; returns export_onnx's info plus the stages'."""
    path = Path(path)
    model = copy.deepcopy(model).eval().cpu()
    stages = model.stages()
    if len(thresholds) != len(stages) - 1:
        raise ValueError(f"{len(stages) - 1} early exits need as many thresholds, got {thresholds}")
    names = [f"{path.stem}.stage{k}.onnx" for k in range(len(stages))]
    all_exits = f"{path.stem}.exits.onnx"
    flops = stage_flops(model, frame_len)
    extra = {contract.EXIT_POLICY: policy, contract.EXIT_THRESHOLDS: [float(t) for t in thresholds],
             contract.EXIT_STAGES: names, contract.EXIT_ALL: all_exits, contract.EXIT_FLOPS: [int(f) for f in flops],
             contract.EXIT_PLACEMENTS: list(model.placements)}
    if policy == contract.POLICY_GATE:
        extra[contract.EXIT_GATES] = [{k: g[k] for k in ("w1", "b1", "w2", "b2")} for g in gates]
    info = export_onnx(model, path, classes=classes, frame_len=frame_len, exits=len(stages), opset=opset,
                       extra_metadata=extra, **common)
    x = torch.randn(2, contract.IQ_ROWS, frame_len)
    for k, stage in enumerate(stages):
        last = k == len(stages) - 1
        _export_stage(stage, x, path.parent / names[k], contract.INPUT_NAME if k == 0 else FEATURES, last,
                      {contract.STAGE_INDEX: k, contract.STAGE_COUNT: len(stages), contract.STAGE_ENTRY: path.name,
                       contract.CLASSES: list(classes)}, opset)
        if not last:
            with torch.no_grad():
                x = stage(x)[1]
    _export_graph(_AllExitsWithSoftmax(model).eval(), torch.randn(2, contract.IQ_ROWS, frame_len), path.parent / all_exits,
                  contract.INPUT_NAME, [f"{contract.PROBS_OUTPUT_NAME}_exit{k}" for k in range(len(stages))],
                  {contract.STAGE_COUNT: len(stages), contract.STAGE_ENTRY: path.name, contract.CLASSES: list(classes)},
                  opset)
    info.update(stages=[str(path.parent / n) for n in names], all_exits=str(path.parent / all_exits), exit_flops=flops,
                staged_parity_max_abs_diff=check_staged_parity(model, path, frame_len))
    return info


def check_staged_parity(model, path, frame_len, tol=1e-4):
    """Every stage's probabilities, run stage after stage through ONNX Runtime, against torch."""
    import onnxruntime as ort

    path = Path(path)
    props = dict((p.key, p.value) for p in onnx.load(str(path)).metadata_props)
    exits = contract.decode_exit_metadata(contract.decode_metadata(props, source=str(path)), source=str(path))
    names = list(exits.stages)
    sessions = [ort.InferenceSession(str(path.parent / n), providers=["CPUExecutionProvider"]) for n in names]
    all_exits = ort.InferenceSession(str(path.parent / exits.all_exits), providers=["CPUExecutionProvider"])
    worst = 0.0
    for name, frames in parity_inputs(frame_len).items():
        with torch.no_grad():
            expected = [torch.softmax(o, -1).numpy() for o in model.forward_exits(torch.from_numpy(frames))]
        for k, probs in enumerate(all_exits.run(None, {contract.INPUT_NAME: frames})):
            diff = float(np.max(np.abs(probs - expected[k])))
            worst = max(worst, diff)
            if diff >= tol:
                raise ParityError(f"{path.parent / exits.all_exits}: exit {k} differs from torch by {diff:.3g} on '{name}'")
        x = frames
        for k, sess in enumerate(sessions):
            outs = sess.run(None, {sess.get_inputs()[0].name: x})
            diff = float(np.max(np.abs(outs[0] - expected[k])))
            worst = max(worst, diff)
            if diff >= tol:
                raise ParityError(f"{path.parent / names[k]}: stage {k} differs from torch by {diff:.3g} on '{name}'")
            if len(outs) > 1:
                x = outs[1]
    return worst
