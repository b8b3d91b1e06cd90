"""prune(): remove the least important output channels of every conv, for real.

torch-pruning's dependency graph finds everything coupled to a channel (the BN after it,
residual adds, depthwise groups, squeeze-excite, the classifier's inputs) and cuts it all
consistently; this module chooses what to cut and records what happened. The model's own
classifier output layer is never pruned (its outputs are the classes).

A pruned model is saved as an ordinary checkpoint: the architecture's config plus a state_dict
whose tensors have the pruned shapes. fit_to_state_dict() resizes a freshly built model to those
shapes, so loading, export and evaluation need no torch-pruning.
"""

from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from .criteria import create_criterion

STRATEGIES = ("local", "global")
_OUT_CHANNELS = (tp.pruner.function.prune_conv_out_channels, tp.pruner.function.prune_linear_out_channels)


def _producer_segments(group, n):
    """The group's channel indices split by the layers that produce them: channels made by the
    same set of layers form one segment. Branches concatenated into one tensor give a segment
    each; a residual trunk that several projections add into, which later feeds a concatenation,
    gives nested sets and so one segment per branch of every concatenation."""
    producers = {}
    for i, (dep, _) in enumerate(group):
        if dep.pruning_fn in _OUT_CHANNELS and all(r is not None for r in group[i].root_idxs):
            for r in group[i].root_idxs:
                producers.setdefault(int(r), set()).add(dep.target)
    segments = {}
    for r in range(n):  # a channel no layer produces (a pooled pass-through) keys on the empty set
        segments.setdefault(frozenset(producers.get(r, ())), []).append(r)
    return list(segments.values())


class LayerLocal(tp.importance.Importance):
    """Layer-local allocation inside a pruning group: torch-pruning ranks a group as one (the
    branches of a concatenation form one group), so a criterion that scores one branch low could
    empty it, which torch-pruning refuses by skipping the whole group (a 90 % request then cuts
    less than a 70 % one). Here every producing layer's channels are ranked within that layer
    (scores become quantiles, 1/k ... k/k, per layer) and each layer's best channel is kept, so
    the group's lowest share takes the same share of every layer and empties none."""

    def __init__(self, criterion):
        self.criterion = criterion

    def __getattr__(self, name):  # needs_calibration, collect_features of the wrapped criterion
        if name == "criterion":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.criterion, name)

    def __call__(self, group):
        scores = self.criterion(group)
        if scores is None:
            return None
        segments = _producer_segments(group, len(scores))
        if len(segments) < 2:
            return scores
        local = torch.empty(len(scores), dtype=torch.float32)
        for segment in segments:
            idx = torch.as_tensor(segment)
            order = torch.argsort(scores[idx].float(), stable=True)
            quantile = torch.empty(len(idx))
            quantile[order] = torch.arange(1, len(idx) + 1, dtype=torch.float32) / len(idx)
            quantile[order[-1]] = 2.0  # above every quantile: never pruned
            local[idx] = quantile
        return local


@dataclass
class PruneReport:
    criterion: str
    ratio: float
    strategy: str
    iterative_steps: int
    channels_before: dict = field(default_factory=dict)  # prunable layer name -> output channels
    channels_after: dict = field(default_factory=dict)

    def to_dict(self):
        return {"criterion": self.criterion, "ratio": self.ratio, "strategy": self.strategy,
                "iterative_steps": self.iterative_steps, "channels_before": self.channels_before,
                "channels_after": self.channels_after}

    @property
    def metadata(self):
        """The ONNX contract's ``pruning`` field."""
        return f"{self.criterion}:{self.ratio:g}"


def _widths(model, protected):
    """(name, layer, output channels) of every prunable layer: convs, and hidden linear layers
    (not the classifier)."""
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            yield name, m, m.out_channels
        elif isinstance(m, nn.Linear) and m is not protected:
            yield name, m, m.out_features


def _channels(model, protected):
    return {name: n for name, _, n in _widths(model, protected)}


def _output_layer(model, n_classes):
    linears = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == n_classes]
    if not linears:
        raise ValueError(f"{type(model).__name__}: no Linear layer with {n_classes} outputs (the classifier) to protect")
    return linears[-1]


def prune(model, criterion="gamma-redundancy", ratio=0.5, strategy="local", *, criterion_cfg=None, calibration=None,
          iterative_steps=1, between_steps=None, frame_len=None, max_layer_ratio=0.95):
    """Prune ``model`` in place and return a PruneReport.

    ratio: fraction of each conv's output channels to remove (local: every layer ranked within
    itself, see LayerLocal), or of all prunable
    channels (global: ranked across layers, each layer keeping >= 1 - max_layer_ratio of its
    channels so none is emptied). iterative_steps > 1 reaches the ratio in equal steps, calling
    ``between_steps(model, step)`` (e.g. a short fine-tune) after each step but the last.
    calibration: (N, 2, L) frames, needed by criteria that compare feature maps.
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"prune: ratio must be in (0, 1), got {ratio}")
    if strategy not in STRATEGIES:
        raise ValueError(f"prune: strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if iterative_steps < 1:
        raise ValueError(f"prune: iterative_steps must be >= 1, got {iterative_steps}")
    name = criterion if isinstance(criterion, str) else type(criterion).__name__
    importance = create_criterion(criterion, **(criterion_cfg or {})) if isinstance(criterion, str) else criterion
    if strategy == "local":
        importance = LayerLocal(importance)
    needs_calibration = getattr(importance, "needs_calibration", False)
    if needs_calibration and calibration is None:
        raise ValueError(f"prune: criterion {name} compares feature maps and needs calibration frames")
    frame_len = frame_len or getattr(model, "model_cfg", {}).get("frame_len", 128)
    device = next(model.parameters()).device
    n_classes = getattr(model, "model_cfg", {}).get("n_classes")
    if n_classes is None:
        raise ValueError("prune: the model has no model_cfg['n_classes'] (build it with create_model)")

    protected = _output_layer(model, n_classes)
    report = PruneReport(name, float(ratio), strategy, int(iterative_steps), channels_before=_channels(model, protected))
    was = model.training
    model.eval()
    pruner = tp.pruner.MetaPruner(
        model,
        torch.zeros(1, 2, frame_len, device=device),
        importance=importance,
        pruning_ratio=ratio,
        global_pruning=strategy == "global",
        max_pruning_ratio=max_layer_ratio,
        # local: a layer too narrow for the ratio to leave one channel (8 channels at 90 %) keeps
        # one; torch-pruning would otherwise skip it whole
        pruning_ratio_dict={m: 1 - 1.5 / n for _, m, n in _widths(model, protected) if int(n * (1 - ratio)) < 1}
        if strategy == "local" else None,
        iterative_steps=iterative_steps,
        ignored_layers=[protected],
    )
    for step in range(iterative_steps):
        if needs_calibration:
            importance.collect_features(model, calibration.to(device))
        pruner.step()
        if between_steps is not None and step < iterative_steps - 1:
            between_steps(model, step)
            model.to(device).eval()  # a fine-tune may have moved it; the pruner traces on `device`
    model.train(was)
    report.channels_after = _channels(model, protected)
    return report


def fit_to_state_dict(model, state_dict):
    """Resize ``model``'s layers to the (pruned) tensor shapes in ``state_dict``, in place."""
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        weight = state_dict.get(prefix + "weight")
        if weight is None:
            continue
        if isinstance(module, nn.modules.conv._ConvNd):
            depthwise = module.groups > 1 and module.groups == module.in_channels == module.out_channels
            module.out_channels = weight.shape[0]
            module.groups = weight.shape[0] if depthwise else module.groups
            module.in_channels = weight.shape[1] * module.groups
        elif isinstance(module, nn.Linear):
            module.out_features, module.in_features = weight.shape
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.num_features = weight.shape[0]
        elif isinstance(module, nn.LayerNorm):
            module.normalized_shape = tuple(weight.shape)
        else:
            continue
        for key, tensor in module.named_parameters(recurse=False):
            if prefix + key in state_dict:
                setattr(module, key, nn.Parameter(torch.empty_like(state_dict[prefix + key], device=tensor.device)))
        for key, tensor in module.named_buffers(recurse=False):
            if prefix + key in state_dict and tensor is not None:
                setattr(module, key, torch.empty_like(state_dict[prefix + key], device=tensor.device))
    return model
