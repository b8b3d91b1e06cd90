"""Exported 2-D graphs rewritten so that ONNX Runtime keeps squeeze-excite and global pooling in its
blocked NCHWc layout: the same arithmetic, fewer layout conversions.

ONNX Runtime's CPU provider runs the (1 x k) convolutions of the 2-D export layout
(conv2d_layout.py) in its blocked NCHWc format (its NCHWc transformer). An operator it has no
blocked kernel for sends the tensor back to plain NCHW and the result forward again
(``ReorderOutput`` / ``ReorderInput`` nodes, each a full copy of the activations). As exported,
every squeeze-excite block (MobileNetV3's channel gate, models/mobilenet1d.py SqueezeExcite1d) has
two such operators: the ``ReduceMean`` over time, which the transformer does not block, and the
``Mul`` of the activations (N, C, 1, L) by the gate (N, C, 1, 1), which it blocks only when both
inputs have the same shape. Measured with ONNX Runtime 1.32's profiler on ``mobilenet1d_det-kd``
(one thread, batch 256, Intel Xeon VM with AVX-512, 2026-12-01): the reorders took 18 % of the
time, ReduceMean 5.5 %, the Mul 13 %.

``keep_blocked(proto)`` rewrites, where the shapes prove it the same arithmetic:
* ``ReduceMean`` / ``ReduceMax`` over the last axis of an (N, C, 1, L) tensor (the 2-D layout's
  height is 1, so that is every spatial axis) -> ``GlobalAveragePool`` / ``GlobalMaxPool``
  (blocked), with a ``Squeeze`` of the last axis when the reduction dropped it (keepdims=0);
* ``Mul(x (N, C, 1, L), gate (N, C, 1, 1))`` -> the gate widened to (N, C, 1, L) first by a
  nearest-neighbour ``Resize`` (an exact copy of each gate value along time; blocked as NCHWc
  ``Upsample``), its output declared with ``x``'s shape (the batch's symbolic name included), so
  the transformer can see that both inputs of the ``Mul`` have one shape and block it too.
Paired on that machine (medians of 5-7 rounds, one thread, batch 256, two runs):
``mobilenet1d-skd-v2`` x1.09-1.12, ``mobilenet1d_det-kd`` x1.11-1.15, ``mobilenet1d-skd``'s
classifier alone x1.08; outputs within 6e-6 of the graph before. ``apps/bench_ort_settings.py`` measures it side by side.

onnx and numpy only; the export (onnx_export.export_onnx) applies it to every 2-D graph, and
``modrec relayout`` to a contract file exported before it.
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

# reductions over every spatial axis of an (N, C, 1, L) tensor, and their blocked twins
_GLOBAL_POOL = {"ReduceMean": "GlobalAveragePool", "ReduceMax": "GlobalMaxPool"}


def _constants(proto):
    """{name: numpy array} of the graph's initializers and Constant nodes' values."""
    values = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _inferred_types(proto):
    """{tensor name: its TypeProto} after ONNX shape inference (graph inputs, outputs, every
    intermediate the inference could type)."""
    inferred = shape_inference.infer_shapes(proto)
    graph = inferred.graph
    return {vi.name: vi.type for vi in list(graph.input) + list(graph.value_info) + list(graph.output)}


def _dims(tensor_type):
    """A tensor type's dims: an int where known, the symbolic name (str) where named, None else;
    None for an unranked tensor."""
    if tensor_type is None or not tensor_type.tensor_type.HasField("shape"):
        return None
    out = []
    for d in tensor_type.tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return out


def _is_frames_2d(dims):
    """An (N, C, 1, L) tensor with C and L known: the 2-D layout's feature maps."""
    return (dims is not None and len(dims) == 4 and dims[2] == 1 and isinstance(dims[1], int)
            and isinstance(dims[3], int) and dims[3] > 1)


def _reduces_time(node, constants):
    """Whether a ReduceMean/ReduceMax node reduces exactly the last axis of a 4-D tensor (or
    the last two)."""
    if len(node.input) > 1 and node.input[1]:
        axes = constants.get(node.input[1])
    else:
        attr = next((a for a in node.attribute if a.name == "axes"), None)
        axes = None if attr is None else np.array(attr.ints)
    if axes is None:
        return False
    return sorted(int(a) % 4 for a in np.ravel(axes)) in ([3], [2, 3])


def keep_blocked(proto):
    """Rewrite ``proto`` (an onnx.ModelProto in the 2-D export layout) in place as the module
    docstring says; returns {"global_pools": n, "widened_gates": n}, what was rewritten (zeros
    for a graph with nothing to rewrite, such as a 1-D export). Raises onnx's own errors for a
    graph shape inference rejects."""
    types = _inferred_types(proto)
    constants = _constants(proto)
    counts = {"global_pools": 0, "widened_gates": 0}
    nodes, added_inits = [], []
    for node in proto.graph.node:
        if node.op_type in _GLOBAL_POOL and _is_frames_2d(_dims(types.get(node.input[0]))) \
                and _reduces_time(node, constants):
            keepdims = next((a.i for a in node.attribute if a.name == "keepdims"), 1)
            pooled = node.output[0] if keepdims else f"{node.output[0]}_pooled"
            nodes.append(helper.make_node(_GLOBAL_POOL[node.op_type], [node.input[0]], [pooled],
                                          name=f"{node.name or node.output[0]}_global"))
            if not keepdims:  # the reduction dropped the time axis: (N, C, 1, 1) -> (N, C, 1)
                axes = f"{node.output[0]}_time_axis"
                added_inits.append(numpy_helper.from_array(np.array([3], dtype=np.int64), axes))
                nodes.append(helper.make_node("Squeeze", [pooled, axes], [node.output[0]],
                                              name=f"{node.name or node.output[0]}_squeeze"))
            counts["global_pools"] += 1
            continue
        if node.op_type == "Mul" and len(node.input) == 2:
            shapes = [_dims(types.get(name)) for name in node.input]
            wide = next((k for k in (0, 1) if _is_frames_2d(shapes[k])), None)
            if wide is not None:
                gate = 1 - wide
                x_dims, g_dims = shapes[wide], shapes[gate]
                if g_dims is not None and len(g_dims) == 4 and g_dims[1:] == [x_dims[1], 1, 1] \
                        and g_dims[0] == x_dims[0]:
                    scales = f"{node.output[0]}_gate_scales"
                    widened = f"{node.input[gate]}_widened_for_{node.output[0]}"
                    added_inits.append(numpy_helper.from_array(
                        np.array([1, 1, 1, x_dims[3]], dtype=np.float32), scales))
                    nodes.append(helper.make_node("Resize", [node.input[gate], "", scales], [widened],
                                                  mode="nearest", coordinate_transformation_mode="asymmetric",
                                                  nearest_mode="floor", name=f"{node.name or node.output[0]}_widen"))
                    # the transformer blocks a Mul only when it can see both inputs have one shape
                    proto.graph.value_info.append(onnx.ValueInfoProto(name=widened, type=types[node.input[wide]]))
                    inputs = list(node.input)
                    inputs[gate] = widened
                    mul = onnx.NodeProto()
                    mul.CopyFrom(node)
                    del mul.input[:]
                    mul.input.extend(inputs)
                    nodes.append(mul)
                    counts["widened_gates"] += 1
                    continue
        nodes.append(node)
    # the reductions' axes, now read by nothing (ONNX Runtime would warn about each)
    orphaned = {name for node in proto.graph.node for name in node.input}
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    proto.graph.initializer.extend(added_inits)
    used = {name for node in proto.graph.node for name in node.input} | {o.name for o in proto.graph.output}
    orphaned -= used
    kept = [init for init in proto.graph.initializer if init.name not in orphaned]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    kept = [node for node in proto.graph.node if not (node.op_type == "Constant" and node.output[0] in orphaned)]
    del proto.graph.node[:]
    proto.graph.node.extend(kept)
    return counts
