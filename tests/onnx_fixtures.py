"""Tiny contract-honouring ONNX models built with ``onnx.helper`` (no torch), plus broken variants.

The good model normalises each frame to unit RMS in-graph (with an epsilon, so all-zero frames
stay finite), flattens, applies a fixed random MatMul + bias to n_classes and a Softmax: enough to
give frame-dependent, deterministic probabilities for runtime and block tests.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gnuradio.modrec import contract

FIXTURE_CLASSES = ("BPSK", "QPSK", "8PSK", "QAM16", "WBFM")
OPSET = 13
IR_VERSION = 8


def fixture_metadata(classes=FIXTURE_CLASSES, frame_len=32, **overrides):
    values = {
        "classes": list(classes),
        "frame_len": frame_len,
        "samples_per_symbol": 8,
        "architecture": "fixture-linear",
        "distillation": "none",
        "pruning": "none",
        "exits": 1,
        "params": 2 * frame_len * len(classes) + len(classes),
        "flops": 2 * 2 * frame_len * len(classes),
        "training": {"command": "tests/onnx_fixtures.py", "seed": 0, "data": "none"},
    }
    values.update(overrides)
    return contract.encode_metadata(values)


def build_model(
    frame_len=32,
    classes=FIXTURE_CLASSES,
    seed=0,
    input_shape=None,
    input_dtype=TensorProto.FLOAT,
    n_outputs=None,
    metadata=None,
    drop_metadata=(),
    scale=4.0,
    softmax=True,
    batch_one=False,
):
    """Return an ``onnx.ModelProto``; the keyword arguments make contract-breaking variants:
    ``softmax=False`` outputs logits, ``batch_one=True`` reshapes to batch 1 inside the graph while
    the input still declares a dynamic batch (runs one frame, fails on more)."""
    n_classes = len(classes)
    n_out = n_classes if n_outputs is None else n_outputs
    shape = input_shape if input_shape is not None else [contract.BATCH_AXIS_NAME, contract.IQ_ROWS, frame_len]
    # Size the weights from the declared input so wrong-shape variants are still valid graphs
    # that ORT loads: the runtime, not ORT, must be the one that rejects them.
    n_in = int(np.prod(shape[1:]))
    rng = np.random.default_rng(seed)
    w = (scale * rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
    b = (0.1 * rng.standard_normal(n_out)).astype(np.float32)

    nodes = []
    x = contract.INPUT_NAME
    if input_dtype != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [x], ["x32"], to=TensorProto.FLOAT))
        x = "x32"
    nodes += [
        helper.make_node("Mul", [x, x], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["ms"], axes=list(range(1, len(shape))), keepdims=1),
        helper.make_node("Add", ["ms", "eps"], ["ms_eps"]),
        helper.make_node("Sqrt", ["ms_eps"], ["rms"]),
        helper.make_node("Div", [x, "rms"], ["xn"]),
        helper.make_node("Flatten", ["xn"], ["flat0"], axis=1),
        helper.make_node("Reshape", ["flat0", "batch_one_shape"], ["flat"]) if batch_one
        else helper.make_node("Identity", ["flat0"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["logits0"]),
        helper.make_node("Add", ["logits0", "B"], ["logits"]),
        helper.make_node("Softmax" if softmax else "Identity", ["logits"], [contract.PROBS_OUTPUT_NAME],
                         **({"axis": -1} if softmax else {})),
    ]
    graph = helper.make_graph(
        nodes,
        "fixture",
        [helper.make_tensor_value_info(contract.INPUT_NAME, input_dtype, shape)],
        [
            helper.make_tensor_value_info(
                contract.PROBS_OUTPUT_NAME, TensorProto.FLOAT, [contract.BATCH_AXIS_NAME, n_out]
            )
        ],
        initializer=[
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(b, "B"),
            numpy_helper.from_array(np.array(1e-6, dtype=np.float32), "eps"),
            numpy_helper.from_array(np.array([1, n_in], dtype=np.int64), "batch_one_shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    props = dict(metadata) if metadata is not None else fixture_metadata(classes, frame_len)
    for key in drop_metadata:
        props.pop(key, None)
    helper.set_model_props(model, props)
    return model


def save_model(path, **kwargs):
    """Write ``build_model(**kwargs)`` to ``path`` and return it as str."""
    onnx.save(build_model(**kwargs), str(path))
    return str(path)


def reference_probs(frames_iq, model_proto):
    """numpy re-implementation of the fixture graph (checks ORT wiring, not just itself)."""
    inits = {t.name: numpy_helper.to_array(t) for t in model_proto.graph.initializer}
    x = np.asarray(frames_iq, dtype=np.float64)
    rms = np.sqrt((x * x).mean(axis=(1, 2), keepdims=True) + float(inits["eps"]))
    logits = (x / rms).reshape(x.shape[0], -1) @ inits["W"].astype(np.float64) + inits["B"]
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def _all_exits_model(frame_len, seeds):
    """Both linear fixtures in one graph: ``iq`` -> ``probs_exit0``, ``probs_exit1``."""
    parts = [onnx.compose.add_prefix(build_model(frame_len, seed=seed), f"e{k}_") for k, seed in enumerate(seeds)]
    nodes, inits, outputs = [], [], []
    for k, part in enumerate(parts):
        nodes.append(helper.make_node("Identity", [contract.INPUT_NAME], [f"e{k}_{contract.INPUT_NAME}"]))
        nodes += list(part.graph.node)
        nodes.append(helper.make_node("Identity", [part.graph.output[0].name], [f"{contract.PROBS_OUTPUT_NAME}_exit{k}"]))
        inits += list(part.graph.initializer)
        outputs.append(helper.make_tensor_value_info(f"{contract.PROBS_OUTPUT_NAME}_exit{k}", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "all_exits", [helper.make_tensor_value_info(
        contract.INPUT_NAME, TensorProto.FLOAT, [contract.BATCH_AXIS_NAME, contract.IQ_ROWS, frame_len])], outputs, inits)
    base = build_model(frame_len)
    return helper.make_model(graph, opset_imports=base.opset_import, ir_version=base.ir_version)


def save_early_exit_model(directory, frame_len=32, threshold=0.5, policy="maxprob", seeds=(1, 2), name="ee",
                          all_exits=True):
    """A two-exit model: stage 0 = the linear fixture (seed 1) plus the raw frames handed on as
    ``next_features``; stage 1 (and the entry file, the whole network) = another linear fixture
    (seed 2); with ``all_exits`` also the file computing both exits in one graph. Its exit_flops
    say the early head costs a quarter of the network, so leaving early pays from a 30 % share
    (runtime/early_exit.py: heads + 5 % of the network over what a leaving frame skips). Returns the
    entry path. ``early_exit_reference`` below gives the expected answers for tests."""
    import json
    import os

    stage_names = [f"{name}.stage0.onnx", f"{name}.stage1.onnx"]
    extra = {"exits": "2", "exit_policy": policy, "exit_thresholds": json.dumps([threshold]),
             "exit_stages": json.dumps(stage_names), "exit_flops": json.dumps([frame_len * 5, 4 * frame_len * 5])}
    if all_exits:
        extra["exit_all"] = f"{name}.exits.onnx"
        onnx.save(_all_exits_model(frame_len, seeds), os.path.join(directory, extra["exit_all"]))
    entry = build_model(frame_len, seed=seeds[1], metadata={**fixture_metadata(frame_len=frame_len), **extra})
    onnx.save(entry, os.path.join(directory, f"{name}.onnx"))
    stage0 = build_model(frame_len, seed=seeds[0])
    stage0.graph.node.append(helper.make_node("Identity", [contract.INPUT_NAME], ["next_features"]))
    stage0.graph.output.append(helper.make_tensor_value_info(
        "next_features", TensorProto.FLOAT, [contract.BATCH_AXIS_NAME, contract.IQ_ROWS, frame_len]))
    onnx.save(stage0, os.path.join(directory, stage_names[0]))
    stage1 = build_model(frame_len, seed=seeds[1])
    stage1.graph.input[0].name = "features"
    for node in stage1.graph.node:
        node.input[:] = ["features" if i == contract.INPUT_NAME else i for i in node.input]
    onnx.save(stage1, os.path.join(directory, stage_names[1]))
    return os.path.join(directory, f"{name}.onnx")


def early_exit_reference(frames_iq, frame_len=32, threshold=0.5, seeds=(1, 2)):
    """(probs, exit) the maxprob rule gives for save_early_exit_model's model."""
    early = reference_probs(frames_iq, build_model(frame_len, seed=seeds[0]))
    final = reference_probs(frames_iq, build_model(frame_len, seed=seeds[1]))
    leave = (1.0 - early.max(axis=1)) <= threshold
    return np.where(leave[:, None], early, final), np.where(leave, 0, 1)


V2_CLASSES = ("BPSK", "QPSK", "noise", "WBFM")


def build_v2_model(frame_len=32, classes=V2_CLASSES, seed=0, score="energy", threshold=-1.0, noise_class="noise",
                   outputs=("logits", "snr_db"), **metadata):
    """A contract version-2 fixture: the linear fixture plus a ``logits`` output and an ``snr_db``
    output equal to 10 log10 of the frame's mean square I/Q value (so tests know the answer), and
    the open-set metadata (noise class, score, threshold). ``outputs`` picks the extra outputs."""
    extra = {contract.NOISE_CLASS: noise_class, contract.UNKNOWN_SCORE: score,
             contract.UNKNOWN_THRESHOLD: str(threshold), contract.UNKNOWN_FALSE_RATE: "0.05", **metadata}
    extra = {k: v for k, v in extra.items() if v is not None}
    model = build_model(frame_len, classes=classes, seed=seed, metadata={**fixture_metadata(classes, frame_len), **extra})
    graph = model.graph
    if "logits" in outputs:
        # the graph's internal tensor "logits" becomes "scores", exposed as the output "logits"
        for node in graph.node:
            node.input[:] = ["scores" if i == "logits" else i for i in node.input]
            node.output[:] = ["scores" if o == "logits" else o for o in node.output]
        graph.node.append(helper.make_node("Identity", ["scores"], [contract.LOGITS_OUTPUT_NAME]))
        graph.output.append(helper.make_tensor_value_info(contract.LOGITS_OUTPUT_NAME, TensorProto.FLOAT,
                                                          [contract.BATCH_AXIS_NAME, len(classes)]))
    if "snr_db" in outputs:
        graph.initializer.extend([numpy_helper.from_array(np.array(10.0, dtype=np.float32), "ten"),
                                  numpy_helper.from_array(np.array(np.log(10.0), dtype=np.float32), "ln10"),
                                  numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat_shape")])
        graph.node.extend([
            helper.make_node("Log", ["ms_eps"], ["ln_ms"]),
            helper.make_node("Div", ["ln_ms", "ln10"], ["log10_ms"]),
            helper.make_node("Mul", ["log10_ms", "ten"], ["snr_3d"]),
            helper.make_node("Reshape", ["snr_3d", "flat_shape"], [contract.SNR_OUTPUT_NAME]),
        ])
        graph.output.append(helper.make_tensor_value_info(contract.SNR_OUTPUT_NAME, TensorProto.FLOAT,
                                                          [contract.BATCH_AXIS_NAME]))
    return model


def v2_reference(frames_iq, model_proto):
    """(probs, logits, snr_db) the v2 fixture gives, in numpy."""
    inits = {t.name: numpy_helper.to_array(t) for t in model_proto.graph.initializer}
    x = np.asarray(frames_iq, dtype=np.float64)
    ms = (x * x).mean(axis=(1, 2)) + float(inits["eps"])
    logits = (x / np.sqrt(ms)[:, None, None]).reshape(x.shape[0], -1) @ inits["W"].astype(np.float64) + inits["B"]
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return probs, logits, 10 * np.log10(ms)
