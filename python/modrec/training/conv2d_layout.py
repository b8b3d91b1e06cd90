"""Export layout: a network's 1-D layers as (1 x k) 2-D ones, the same arithmetic, faster in ONNX Runtime.

ONNX Runtime's CPU provider runs 2-D convolutions (4-D tensors) in its blocked NCHWc layout, with
kernels written for AVX2/AVX-512 (its NCHWc transformer, part of the default optimisation level
ORT_ENABLE_ALL); 1-D convolutions (3-D tensors) fall back to a per-frame im2col and a small
matrix product. Measured on the 2-core development machine (ONNX Runtime 1.32, one thread, batch
256, the same weights both ways): mobilenet1d 8.1k -> 24.5k frames/s, cnn3 20.0k -> 25.5k, a
depthwise-separable stack 10.7k -> 37k (``apps/bench_ort_settings.py`` measures it side by side).

``as_conv2d(model)`` returns a copy computing on (N, C, 1, L) instead of (N, C, L): Conv1d,
BatchNorm1d, MaxPool1d and AvgPool1d become their 2-D twins over a height of 1 (weights
unsqueezed, nothing re-trained); the input gains its height axis first. Every other layer of the
registry's models reduces over the last axis (``dim=-1``) or after global pooling, so it reads
either layout; ``check_same_outputs`` proves it for a given model, and the exporter keeps the 1-D
graph for a model where it does not hold.
"""

import copy

import torch
from torch import nn

# the largest difference allowed between the 1-D model and its 2-D copy on random frames: the
# same weights in another convolution kernel (float32 rounding only)
SAME_OUTPUTS_TOL = 1e-4


def _conv2d(conv):
    if not isinstance(conv.padding, tuple) or isinstance(conv.padding, str):
        raise ValueError(f"a Conv1d with padding {conv.padding!r} has no fixed (1 x k) twin")
    twin = nn.Conv2d(conv.in_channels, conv.out_channels, (1, conv.kernel_size[0]), stride=(1, conv.stride[0]),
                     padding=(0, conv.padding[0]), dilation=(1, conv.dilation[0]), groups=conv.groups,
                     bias=conv.bias is not None, padding_mode=conv.padding_mode)
    with torch.no_grad():
        twin.weight.copy_(conv.weight.unsqueeze(2))
        if conv.bias is not None:
            twin.bias.copy_(conv.bias)
    return twin


def _batch_norm2d(bn):
    twin = nn.BatchNorm2d(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                          track_running_stats=bn.track_running_stats)
    twin.load_state_dict(bn.state_dict())
    return twin


def _pool2d(pool):
    def pair(v, fill):
        v = v[0] if isinstance(v, tuple) else v
        return (fill, v)

    if isinstance(pool, nn.MaxPool1d):
        return nn.MaxPool2d(pair(pool.kernel_size, 1), stride=pair(pool.stride, 1), padding=pair(pool.padding, 0),
                            dilation=pair(pool.dilation, 1), ceil_mode=pool.ceil_mode)
    return nn.AvgPool2d(pair(pool.kernel_size, 1), stride=pair(pool.stride, 1), padding=pair(pool.padding, 0),
                        ceil_mode=pool.ceil_mode, count_include_pad=pool.count_include_pad)


def _twin(layer):
    """The 2-D twin of a 1-D layer, or None for any other module."""
    if isinstance(layer, nn.Conv1d):
        return _conv2d(layer)
    if isinstance(layer, nn.BatchNorm1d):
        return _batch_norm2d(layer)
    if isinstance(layer, (nn.MaxPool1d, nn.AvgPool1d)):
        return _pool2d(layer)
    return None


def _swap_layers(module, twins, seen):
    """Replace every 1-D layer under ``module`` by its twin, in place. A layer reached twice (a
    model's blocks may reuse its modules, some from plain lists such as an early-exit model's
    segments) gets one twin (``twins``: id -> twin), so shared layers stay shared."""
    if id(module) in seen:
        return
    seen.add(id(module))
    for name, child in list(module.named_children()):
        if id(child) not in twins and _twin(child) is not None:
            twins[id(child)] = _twin(child)
        if id(child) in twins:
            setattr(module, name, twins[id(child)])
        else:
            _swap_layers(child, twins, seen)
    for value in vars(module).values():  # modules kept in plain lists, outside the module tree
        if isinstance(value, list):
            for k, item in enumerate(value):
                if isinstance(item, nn.Module):
                    if id(item) not in twins and _twin(item) is not None:
                        twins[id(item)] = _twin(item)
                    if id(item) in twins:
                        value[k] = twins[id(item)]
                    else:
                        _swap_layers(item, twins, seen)


class Conv2dLayout(nn.Module):
    """(N, 2, L) -> what ``model`` returns, computed by its (1 x k) 2-D copy on (N, 2, 1, L)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.unsqueeze(2))


def as_conv2d(model):
    """A copy of ``model`` (an nn.Module on (N, 2, L) frames) in the 2-D layout (module docstring);
    ``model`` itself is left alone. Raises ValueError for a layer with no fixed 2-D twin (string
    padding such as 'same')."""
    twin = Conv2dLayout(copy.deepcopy(model))
    _swap_layers(twin, {}, set())  # from the wrapper down, so a model that is a single layer is swapped too
    return twin


@torch.no_grad()
def check_same_outputs(model, twin, frame_len, tol=SAME_OUTPUTS_TOL, seed=0):
    """None when ``twin`` gives ``model``'s outputs (a tensor or a tuple of them) within ``tol`` on
    seeded random frames (N=3, float32 (3, 2, frame_len)), else a sentence saying how they differ
    (shape, or the largest difference), for the export log."""
    x = torch.randn(3, 2, frame_len, generator=torch.Generator().manual_seed(seed))
    try:
        want, got = model(x), twin(x)
    except Exception as err:  # noqa: BLE001 -- any failure means the layout does not fit this model
        return f"the 2-D copy fails ({type(err).__name__}: {err})"
    want = want if isinstance(want, (tuple, list)) else (want,)
    got = got if isinstance(got, (tuple, list)) else (got,)
    for k, (a, b) in enumerate(zip(want, got)):
        if a.shape != b.shape:
            return f"output {k} has shape {tuple(b.shape)} in the 2-D copy, {tuple(a.shape)} in the model"
        diff = float((a - b).abs().max())
        if not diff <= tol:
            return f"output {k} differs by {diff:.3g} (tolerance {tol:g})"
    if len(want) != len(got):
        return f"the 2-D copy returns {len(got)} outputs, the model {len(want)}"
    return None
