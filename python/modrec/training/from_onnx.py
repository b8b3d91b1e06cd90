"""A torch checkpoint rebuilt from a shipped contract ONNX student, exact in evaluation.

The training runs behind the shipped students are not in git (``runs/`` stays on the machine that
trained them), but the ONNX files are. The export folds each batch norm into the convolution
before it (scaled weights and a bias, ``<conv>.weight_bias``), so an ONNX file holds no batch-norm
statistics. The rebuilt model takes the folded convolution weights and identity batch norms
(scale 1, running mean 0, running variance 1 - eps, shift the folded bias): in evaluation it
computes what the ONNX file computes, which is checked on random frames before the checkpoint is
written. That is what recipes with a frozen backbone need (early-exit heads: ``exits.init_from``)
and what evaluation needs. It is not the training run: batch-norm scales (pruning's ranking) and
statistics are gone, so pruning or full fine-tuning should start from the original run.
"""

from pathlib import Path

import numpy as np
import torch
from onnx import numpy_helper
from torch import nn

from .. import contract
from .models import create_model, list_models
from .onnx_export import read_onnx

PREFIX = "model."  # the export wraps the network as ``model`` (softmax on top)
# in the 2-D layout (conv2d_layout.Conv2dLayout) the network is that wrapper's ``model``, and each
# convolution weight has a height axis of 1: (C_out, C_in / groups, 1, k)
PREFIX_2D = "model.model."
FOLDED_BIAS = "_bias"


def _conv_batch_norms(model):
    """{conv module name: the batch norm registered right after it in the same parent}."""
    pairs = {}
    for parent_name, parent in model.named_modules():
        children = list(parent.named_children())
        for (name, child), (next_name, following) in zip(children, children[1:]):
            if isinstance(child, nn.Conv1d) and isinstance(following, nn.BatchNorm1d):
                prefix = f"{parent_name}." if parent_name else ""
                pairs[prefix + name] = prefix + next_name
    return pairs


def model_from_onnx(onnx_path, tol=1e-4):
    """(torch model in eval mode, metadata) rebuilt from a contract ONNX student."""
    onnx_path = Path(onnx_path)
    proto = read_onnx(onnx_path)
    metadata = contract.decode_metadata({p.key: p.value for p in proto.metadata_props}, source=str(onnx_path))
    quantization = metadata.get(contract.QUANTIZATION, contract.QUANTIZATION_NONE)
    if quantization != contract.QUANTIZATION_NONE:
        raise ValueError(f"{onnx_path}: a quantised model ({quantization!r}); rebuild from the fp32 file it was made from")
    if metadata.get(contract.NOISE_CLASS) and metadata[contract.ARCHITECTURE] not in list_models(kind="detecting"):
        raise ValueError(f"{onnx_path}: a classifier joined to a signal detector (class {metadata[contract.NOISE_CLASS]!r}); "
                         f"rebuild the classifier from its own file (its card names it) and the detector from its run")
    if metadata[contract.EXITS] != 1:
        raise ValueError(f"{onnx_path}: an early-exit model (exits = {metadata['exits']}); rebuild the plain student it extends")
    if contract.decode_pruning(metadata[contract.PRUNING], source=str(onnx_path)) is not None:
        raise ValueError(f"{onnx_path}: a pruned model (pruning = {metadata['pruning']!r}): its channel counts are not "
                         f"the registry's; rebuild from its training run instead")
    try:
        model_cfg = dict(metadata[contract.TRAINING]["config"]["model"]["cfg"])
    except (KeyError, TypeError):
        raise ValueError(f"{onnx_path}: metadata 'training' lacks config.model.cfg (the model's build settings)") from None
    model_cfg.update(n_classes=len(metadata[contract.CLASSES]), frame_len=int(metadata[contract.FRAME_LEN]))
    try:
        model = create_model(metadata[contract.ARCHITECTURE], **model_cfg).eval()
    except (KeyError, TypeError) as err:
        raise ValueError(f"{onnx_path}: cannot build architecture {metadata['architecture']!r} with "
                         f"config {model_cfg}: {err}") from None

    prefix = PREFIX_2D if metadata.get(contract.CONV_LAYOUT) == contract.CONV_LAYOUT_2D else PREFIX
    weights = {t.name[len(prefix):]: numpy_helper.to_array(t) for t in proto.graph.initializer if t.name.startswith(prefix)}
    if prefix == PREFIX_2D:
        weights = {name: value[:, :, 0] if value.ndim == 4 and value.shape[2] == 1 else value
                   for name, value in weights.items()}
    state = model.state_dict()
    loaded = set()
    bn_of = _conv_batch_norms(model)
    for name, value in weights.items():
        if name.endswith(".weight" + FOLDED_BIAS):
            conv = name[: -len(".weight" + FOLDED_BIAS)]
            if conv not in bn_of:
                raise ValueError(f"{onnx_path}: folded bias {prefix}{name} but {conv} is no convolution followed by a batch norm")
            bn = bn_of[conv]
            eps = dict(model.named_modules())[bn].eps
            channels = value.shape[0]
            updates = {f"{bn}.weight": np.ones(channels), f"{bn}.bias": value, f"{bn}.running_mean": np.zeros(channels),
                       f"{bn}.running_var": np.full(channels, 1.0 - eps)}
            if f"{conv}.bias" in state:
                updates[f"{conv}.bias"] = np.zeros(channels)
        elif name in state:
            updates = {name: value}
        else:
            raise ValueError(f"{onnx_path}: initializer {prefix}{name} matches no parameter of {metadata['architecture']}")
        for key, array in updates.items():
            if tuple(state[key].shape) != tuple(array.shape):
                raise ValueError(f"{onnx_path}: {key} has shape {tuple(array.shape)}, "
                                 f"{metadata['architecture']} expects {tuple(state[key].shape)}")
            state[key] = torch.tensor(np.array(array), dtype=state[key].dtype)
            loaded.add(key)
    missing = [k for k, v in state.items() if k not in loaded and v.is_floating_point()]
    if missing:
        raise ValueError(f"{onnx_path}: no weights for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    model.load_state_dict(state)
    _check_parity(model, onnx_path, int(metadata[contract.FRAME_LEN]), tol)
    return model, metadata


def _check_parity(model, onnx_path, frame_len, tol):
    import onnxruntime as ort

    frames = np.random.default_rng(0).standard_normal((64, contract.IQ_ROWS, frame_len)).astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: frames})[0]
    with torch.no_grad():
        got = torch.softmax(model(torch.from_numpy(frames)), dim=-1).numpy()
    diff = float(np.abs(got - want).max())
    if diff > tol:
        raise ValueError(f"{onnx_path}: the rebuilt model differs from the ONNX file by {diff:.2e} (> {tol:g}) in probability")
    return diff


def checkpoint_from_onnx(onnx_path, out_path):
    """Write a checkpoint that ``exits.init_from``, evaluate and export accept; returns its path."""
    from .checkpoint import save_checkpoint

    model, metadata = model_from_onnx(onnx_path)
    training = dict(metadata[contract.TRAINING], rebuilt_from_onnx=str(onnx_path))
    source = training.pop("checkpoint", None) or {}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out_path, model_name=model.model_name, model_cfg=model.model_cfg, state_dict=model.state_dict(),
                    classes=list(metadata[contract.CLASSES]), config=training.get("config"), training=training,
                    meta={"frame_len": metadata[contract.FRAME_LEN], "samples_per_symbol": metadata[contract.SAMPLES_PER_SYMBOL]},
                    val_acc=source.get("val_acc"), epoch=source.get("epoch"))
    return out_path
