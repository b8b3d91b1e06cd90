"""MobileNet-1D: a MobileNetV3-Small style student for raw I/Q frames.

Inverted-residual bottlenecks (1x1 expand -> depthwise -> optional squeeze-excite -> linear 1x1
project) keep most of the compute in cheap depthwise and pointwise convolutions, which is what
makes the family the usual choice for edge AMR. Differences from the 2-D original, and why:

* total stride is 8 (stem + two stride-2 blocks), not 32: a 128-sample frame would otherwise
  shrink to 4 positions and the depthwise kernels would mostly see padding;
* the stem kernel is 7 taps: with only 2 input channels it costs almost nothing and gives the
  first layer a receptive field of about one symbol at 8 samples per symbol;
* the head reads global average + max pooling (``GlobalAvgMaxPool1d``) like the other students.

Default config (n_classes=11, frame_len=128), measured: 95,811 parameters, 2.12 MFLOPs/frame
(multiply-add = 2, convs and linears only), ~400 KB as ONNX (opset 18; hard-swish and hard-sigmoid
export as the native HardSwish / HardSigmoid ops).
"""

from torch import nn

from .interface import ModRecModel
from .layers import GlobalAvgMaxPool1d, RMSNormIQ
from .registry import register_model

# (kernel, expand channels, out channels, squeeze-excite, activation, stride), before width_mult.
# The first block has expand == in, so like MobileNetV3-Small it skips the 1x1 expansion.
DEFAULT_BLOCKS = (
    (3, 16, 16, True, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 120, 40, True, "hswish", 1),
    (5, 120, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
)

_ACTS = {"relu": nn.ReLU, "hswish": nn.Hardswish}


def make_divisible(v, divisor=8, min_value=None):
    """Round channels to a multiple of ``divisor`` without dropping more than 10 % (as MobileNet does)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _act(name):
    if name not in _ACTS:
        raise ValueError(f"mobilenet1d: unknown activation '{name}'; expected one of {', '.join(_ACTS)}")
    return _ACTS[name](inplace=True)


def _conv_bn(c_in, c_out, k, stride=1, groups=1, act=None):
    layers = [
        nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, groups=groups, bias=False),  # BN supplies the bias
        nn.BatchNorm1d(c_out),
    ]
    if act is not None:
        layers.append(_act(act))
    return nn.Sequential(*layers)


class SqueezeExcite1d(nn.Module):
    """Channel gate from globally pooled features; hard-sigmoid keeps it cheap and quantisation-friendly."""

    def __init__(self, channels, squeeze):
        super().__init__()
        self.reduce = nn.Conv1d(channels, squeeze, 1)
        self.relu = nn.ReLU(inplace=True)
        self.expand = nn.Conv1d(squeeze, channels, 1)
        self.gate_act = nn.Hardsigmoid()

    def gate(self, x):
        """(N, C, L) -> (N, C, 1) gate in [0, 1]."""
        return self.gate_act(self.expand(self.relu(self.reduce(x.mean(dim=-1, keepdim=True)))))

    def forward(self, x):
        return x * self.gate(x)


class InvertedResidual1d(nn.Module):
    """MBConv: 1x1 expand (when c_exp != c_in) -> depthwise k -> squeeze-excite -> linear 1x1 project.
    ``fused``: Fused-MBConv (M. Tan, Q. V. Le, "EfficientNetV2", ICML 2021), one regular k-tap
    convolution c_in -> c_exp in place of the expansion and the depthwise convolution."""

    def __init__(self, c_in, c_exp, c_out, k, stride, use_se, act, fused=False):
        super().__init__()
        if k % 2 == 0:
            raise ValueError(f"mobilenet1d: depthwise kernels must be odd (got {k}) so padding keeps alignment")
        self.use_residual = stride == 1 and c_in == c_out
        layers = []
        if fused:
            layers.append(_conv_bn(c_in, c_exp, k, stride=stride, act=act))
        else:
            if c_exp != c_in:
                layers.append(_conv_bn(c_in, c_exp, 1, act=act))
            layers.append(_conv_bn(c_exp, c_exp, k, stride=stride, groups=c_exp, act=act))
        if use_se:
            layers.append(SqueezeExcite1d(c_exp, make_divisible(c_exp // 4)))
        # linear bottleneck: a nonlinearity on the narrow projection would destroy information
        layers.append(_conv_bn(c_exp, c_out, 1))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_residual else y


class MobileNet1d(ModRecModel):
    def __init__(self, n_classes, blocks, width_mult, stem_channels, stem_kernel, last_channels, hidden,
                 dropout, eps, outer_act="hswish", fused_blocks=0):
        super().__init__()
        if not blocks:
            raise ValueError("mobilenet1d: at least one block spec is needed")
        if not 0 <= fused_blocks <= len(blocks):
            raise ValueError(f"mobilenet1d: fused_blocks must be 0..{len(blocks)} (the number of blocks), "
                             f"got {fused_blocks}")
        self.norm = RMSNormIQ(eps)
        c_in = make_divisible(stem_channels * width_mult)
        self.stem = _conv_bn(2, c_in, stem_kernel, stride=2, act=outer_act)
        layers = []
        for i, spec in enumerate(blocks):
            if len(spec) != 6:
                raise ValueError(f"mobilenet1d: block spec {spec!r} must be (kernel, expand, out, se, act, stride)")
            k, exp, out, se, act, stride = spec
            c_exp, c_out = make_divisible(exp * width_mult), make_divisible(out * width_mult)
            layers.append(InvertedResidual1d(c_in, c_exp, c_out, int(k), int(stride), bool(se), act,
                                             fused=i < fused_blocks))
            c_in = c_out
        self.blocks = nn.Sequential(*layers)
        c_last = make_divisible(last_channels * width_mult)
        self.last = _conv_bn(c_in, c_last, 1, act=outer_act)
        self.pool = GlobalAvgMaxPool1d()
        self.feature_dim = 2 * c_last
        self.head = nn.Sequential(
            nn.Linear(self.feature_dim, hidden),
            _act(outer_act),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward_features(self, x):
        """(N, 2, L) -> (pooled embedding (N, feature_dim), logits)."""
        feats = self.pool(self.last(self.blocks(self.stem(self.norm(x)))))
        return feats, self.head(feats)

    def backbone_blocks(self):
        """The stem with the first inverted residual, then one block each, the last with the final
        1x1 convolution."""
        b = list(self.blocks)
        blocks = [nn.Sequential(self.norm, self.stem, b[0])] + [nn.Sequential(m) for m in b[1:-1]]
        blocks.append(nn.Sequential(b[-1], self.last) if len(b) > 1 else nn.Sequential(self.last))
        if len(b) == 1:
            blocks[0] = nn.Sequential(self.norm, self.stem, b[0], self.last)
            blocks.pop()
        return blocks

    def final_head(self):
        return nn.Sequential(self.pool, self.head)

    def forward(self, x):
        """(N, 2, L) raw I/Q -> (N, n_classes) logits (softmax is added at export)."""
        return self.forward_features(x)[1]


@register_model
def mobilenet1d(
    n_classes=11,
    frame_len=128,
    blocks=DEFAULT_BLOCKS,
    width_mult=1.0,
    stem_channels=16,
    stem_kernel=7,
    last_channels=128,
    hidden=48,
    dropout=0.2,
    eps=1e-12,
    outer_act="hswish",
    fused_blocks=0,
):
    """MobileNet-1D (module docstring). Each block names its own activation (``blocks``);
    ``outer_act`` is that of the stem, the last 1x1 convolution and the head's hidden layer
    ("hswish" as in MobileNetV3, or "relu": ONNX Runtime fuses ReLU into the convolution before
    it, hard-swish runs as operators of its own; models/LATENCY.md). ``fused_blocks``: how many
    of the first blocks are Fused-MBConv (``InvertedResidual1d``), as EfficientNetV2 does in its
    early stages, where a depthwise convolution over few channels does little work per memory
    access. Raises ValueError for an unknown activation, an even kernel or fused_blocks outside
    0..len(blocks)."""
    # frame_len is recorded for export and metadata; global pooling makes the net itself length-agnostic.
    del frame_len
    return MobileNet1d(n_classes, [tuple(b) for b in blocks], float(width_mult), stem_channels, stem_kernel,
                       last_channels, hidden, dropout, eps, str(outer_act), int(fused_blocks))
