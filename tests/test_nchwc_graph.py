"""Exported 2-D graphs kept in ONNX Runtime's blocked layout (training/nchwc_graph.py) and
`modrec relayout`: the same outputs, the squeeze-excite and pooling rewrites where the shapes
prove them exact, nothing else touched, and files that cannot be rewritten named."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from gnuradio.modrec import contract
from gnuradio.modrec.classes import RADIOML2016_CLASSES
from gnuradio.modrec.training import onnx_export
from gnuradio.modrec.training.cli import main as modrec
from gnuradio.modrec.training.models import create_model
from gnuradio.modrec.training.nchwc_graph import keep_blocked
from gnuradio.modrec.training.onnx_export import export_onnx, relayout_onnx

C, L = 32, 16  # channels a multiple of both NCHWc block sizes (8 with AVX2, 16 with AVX-512)


def _squeeze_excite_graph(keepdims_pool=False):
    """x (batch, C, 1, L) -> conv -> squeeze-excite (ReduceMean over time, two 1x1 convs,
    HardSigmoid, Mul) -> conv, plus a (ReduceMean, ReduceMax) pooled head without keepdims."""
    rng = np.random.default_rng(0)

    def weight(name, *shape):
        return numpy_helper.from_array((0.2 * rng.standard_normal(shape)).astype(np.float32), name)

    axes = numpy_helper.from_array(np.array([-1], dtype=np.int64), "time")
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], kernel_shape=[1, 3], pads=[0, 1, 0, 1]),
             helper.make_node("Relu", ["a"], ["a1"]),
             helper.make_node("ReduceMean", ["a1", "time"], ["m"], keepdims=1),
             helper.make_node("Conv", ["m", "w1", "b1"], ["s1"], kernel_shape=[1, 1]),
             helper.make_node("Relu", ["s1"], ["s2"]),
             helper.make_node("Conv", ["s2", "w2", "b2"], ["s3"], kernel_shape=[1, 1]),
             helper.make_node("HardSigmoid", ["s3"], ["gate"], alpha=1 / 6, beta=0.5),
             helper.make_node("Mul", ["a1", "gate"], ["y"]),
             helper.make_node("Conv", ["y", "w3"], ["z"], kernel_shape=[1, 1]),
             helper.make_node("ReduceMean", ["z", "time"], ["zm"], keepdims=0),
             helper.make_node("ReduceMax", ["z", "time"], ["zx"], keepdims=0),
             helper.make_node("Concat", ["zm", "zx"], ["pooled"], axis=1)]
    graph = helper.make_graph(
        nodes, "se", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", C, 1, L])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", 2 * C, 1])],
        [weight("w0", C, C, 1, 3), weight("w1", 8, C, 1, 1), weight("b1", 8), weight("w2", C, 8, 1, 1),
         weight("b2", C), weight("w3", C, C, 1, 1), axes])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 8
    return proto


def _session(proto, optimized=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _op_types(path):
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def test_squeeze_excite_and_pooling_are_rewritten_to_the_same_outputs(tmp_path):
    before = _squeeze_excite_graph()
    after = _squeeze_excite_graph()
    counts = keep_blocked(after)
    assert counts == {"global_pools": 3, "widened_gates": 1}
    onnx.checker.check_model(after, full_check=True)
    ops = [node.op_type for node in after.graph.node]
    assert "ReduceMean" not in ops and "ReduceMax" not in ops
    assert ops.count("GlobalAveragePool") == 2 and ops.count("GlobalMaxPool") == 1 and ops.count("Resize") == 1
    assert "time" not in {init.name for init in after.graph.initializer}  # the axes nothing reads any more
    x = np.random.default_rng(1).standard_normal((5, C, 1, L)).astype(np.float32)
    want, got = _session(before).run(None, {"x": x})[0], _session(after).run(None, {"x": x})[0]
    assert got.shape == want.shape == (5, 2 * C, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_onnx_runtime_keeps_the_rewritten_gate_in_its_blocked_layout(tmp_path):
    before, after = _squeeze_excite_graph(), _squeeze_excite_graph()
    keep_blocked(after)
    _session(before, tmp_path / "before.onnx")
    _session(after, tmp_path / "after.onnx")
    reorders_before = sum(op.startswith("Reorder") for op in _op_types(tmp_path / "before.onnx"))
    if reorders_before == 0:
        pytest.skip("ONNX Runtime ran this graph without its NCHWc transformer on this CPU")
    reorders_after = sum(op.startswith("Reorder") for op in _op_types(tmp_path / "after.onnx"))
    # as exported: out and back in around ReduceMean and around the broadcast Mul; rewritten: in
    # once, out once per pooled output
    assert reorders_after < reorders_before
    assert "ReduceMean" not in _op_types(tmp_path / "after.onnx")


def test_what_the_shapes_do_not_prove_exact_is_left_alone():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", C, 1, L])
    same = helper.make_tensor_value_info("same", TensorProto.FLOAT, ["batch", C, 1, L])
    channels = numpy_helper.from_array(np.array([1], dtype=np.int64), "channels")
    nodes = [helper.make_node("ReduceMean", ["x", "channels"], ["over_channels"], keepdims=1),  # not time
             helper.make_node("Mul", ["x", "same"], ["product"]),  # no broadcast to undo
             helper.make_node("Mul", ["x", "over_channels"], ["scaled"])]  # (N, 1, 1, L): not a channel gate
    graph = helper.make_graph(nodes, "left", [x, same],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                               for n in ("product", "scaled")], [channels])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    untouched = proto.SerializeToString()
    assert keep_blocked(proto) == {"global_pools": 0, "widened_gates": 0}
    assert proto.SerializeToString() == untouched


def _export(path, layout=contract.CONV_LAYOUT_2D):
    torch.manual_seed(0)
    model = create_model("mobilenet1d", n_classes=len(RADIOML2016_CLASSES)).eval()
    return export_onnx(model, path, classes=list(RADIOML2016_CLASSES), frame_len=128, conv_layout=layout)


def test_the_export_writes_every_squeeze_excite_block_blocked(tmp_path):
    info = _export(tmp_path / "m.onnx")
    n_se = sum(type(m).__name__ == "SqueezeExcite1d" for m in create_model("mobilenet1d").modules())
    assert n_se > 0 and info["blocked"]["widened_gates"] == n_se
    assert "ReduceMean" not in _op_types(tmp_path / "m.onnx")
    assert info["parity_max_abs_diff"] <= onnx_export.PARITY_TOL
    assert _export(tmp_path / "m1d.onnx", contract.CONV_LAYOUT_1D)["blocked"] is None


def test_relayout_rewrites_an_older_export_and_keeps_its_metadata(tmp_path, monkeypatch, capsys):
    old = tmp_path / "old.onnx"
    with monkeypatch.context() as m:  # an export from before the rewrite was part of it
        m.setattr(onnx_export, "keep_blocked", lambda proto: None)
        _export(old)
    assert "ReduceMean" in _op_types(old)
    new = tmp_path / "new.onnx"
    assert modrec(["relayout", "--onnx", str(old), "--out", str(new)]) == 0
    assert "ReduceMean" not in _op_types(new) and "Resize" in _op_types(new)
    props = lambda p: {q.key: q.value for q in onnx.load(str(p)).metadata_props}  # noqa: E731
    assert props(new) == props(old)
    # an existing --out is refused without --force; with it, a file may be rewritten in place
    assert modrec(["relayout", "--onnx", str(old), "--out", str(new)]) == 2
    assert modrec(["relayout", "--onnx", str(old), "--out", str(old), "--force"]) == 0
    assert _op_types(old) == _op_types(new)
    # a file rewritten already: said so, and an unchanged copy written
    capsys.readouterr()
    assert modrec(["relayout", "--onnx", str(new), "--out", str(tmp_path / "again.onnx")]) == 0
    assert "nothing to rewrite" in capsys.readouterr().out
    assert (tmp_path / "again.onnx").read_bytes() == new.read_bytes()


def test_relayout_refuses_what_it_cannot_rewrite_by_name(tmp_path):
    one_d = tmp_path / "m1d.onnx"
    _export(one_d, contract.CONV_LAYOUT_1D)
    with pytest.raises(ValueError, match=r"m1d.onnx: a 1-D graph .*modrec from-onnx, then modrec export"):
        relayout_onnx(one_d, tmp_path / "out.onnx")
    # a quantised or early-exit file says what it is, whatever its layout
    for name, values, message in [("q.onnx", {contract.QUANTIZATION: "int8-qdq-per-channel"}, "a quantised model"),
                                  ("ee.onnx", {contract.EXITS: 2}, "an early-exit model")]:
        _export(tmp_path / name, contract.CONV_LAYOUT_1D)
        onnx_export.add_metadata(tmp_path / name, values)
        with pytest.raises(ValueError, match=rf"{name}: {message}"):
            relayout_onnx(tmp_path / name, tmp_path / "out.onnx")
    (tmp_path / "notes.txt").write_text("not a model\n")
    (tmp_path / "empty.onnx").write_bytes(b"")
    for name in ("notes.txt", "empty.onnx"):
        with pytest.raises(contract.ContractError, match=rf"{name}: not an ONNX model"):
            relayout_onnx(tmp_path / name, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
