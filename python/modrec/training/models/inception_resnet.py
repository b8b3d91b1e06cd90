"""Inception-ResNet teacher: Inception-ResNet-v2 (Szegedy et al., 2016) adapted to 1-D I/Q frames.

Layout (lengths for the default 128-sample frame)::

    RMSNormIQ -> Stem (L/2: 64) -> a x Inception-ResNet-A -> Reduction-A (32)
              -> b x Inception-ResNet-B -> Reduction-B (16) -> c x Inception-ResNet-C
              -> global avg+max pool -> dropout -> linear

Adaptation to one axis:

* I and Q are the two input channels of 1-D convolutions (as in CNN3), so "3x3" becomes k=3.
* The 2-D factorised pairs (1x7 then 7x1 in B, 1x3 then 3x1 in C, 7x1/1x7 in the stem) exist to
  cover a square window with two cheap convs. A 1-D signal has one axis, so each pair becomes a
  single k=7 (B, stem) or k=3 (C) conv behind its 1x1 reduction.
* All convs are "same"-padded, so every branch of a split has the same length for any frame_len
  and a stride-2 step maps L to ceil(L/2); the network needs frame_len >= 64 only so that the
  last stage still sees a few samples (4 at L=64).
* The v4/v2 stem downsamples 8x; RF frames are short (128 samples = 16 symbols at 8 sps), so the
  first of its two pool/conv splits keeps stride 1 by default (``stem_strides``).

Channel widths are the paper's (stem 384, A 384, B 1152, C 2144 at width=1) times ``width``,
rounded to multiples of 8. The paper's block counts are (5, 10, 5).

Measured sizes (count_params / count_flops at frame_len=128):

* default (width=0.375, blocks=(5, 10, 5)): 3,367,715 params, 178.6 MFLOPs/frame.
  flops.count_flops misses nothing that matters here: all the arithmetic is in convs and the
  linear head; max-pools, BN, ReLU and the residual adds are left out by its convention.
* width=1.0 (the paper's widths): 23.3 M params, 1228 MFLOPs/frame; the published 2-D teacher
  is 311 MB.

The blocks are reusable on their own (the mini Inception-ResNet student builds on them): each
takes explicit channel counts and exposes ``out_channels``.
"""

import torch
from torch import nn

from .interface import ModRecModel
from .layers import GlobalAvgMaxPool1d, RMSNormIQ
from .registry import register_model


class ConvBN(nn.Sequential):
    """Conv1d -> BN -> ReLU, "same" padding. BN supplies the bias, so the conv has none."""

    def __init__(self, c_in, c_out, k=1, stride=1, act=True):
        layers = [nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm1d(c_out)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        self.out_channels = c_out


def _pool(stride):
    # k=3, pad 1 gives the same output length as the k=3 / stride-2 conv it is concatenated with
    return nn.MaxPool1d(3, stride=stride, padding=1)


class Stem(nn.Module):
    """Inception-v4 / Inception-ResNet-v2 stem: three convs, then three concatenating splits.

    split 1: max-pool || k3 conv (c_split), both at ``strides[0]``
    split 2: 1x1 (c_mid) -> k3 (c_mixed)  ||  1x1 (c_mid) -> k7 (c_mid) -> k3 (c_mixed)
    split 3: k3 conv (c_out_conv) || max-pool, both at ``strides[1]``

    out_channels = c_out_conv + 2 * c_mixed (384 at the paper's widths).
    """

    def __init__(self, in_ch=2, c1=32, c2=64, c_split=96, c_mid=64, c_mixed=96, c_out_conv=192, strides=(1, 2)):
        super().__init__()
        s1, s2 = strides
        self.convs = nn.Sequential(ConvBN(in_ch, c1, 3), ConvBN(c1, c1, 3), ConvBN(c1, c2, 3))
        self.split1_pool, self.split1_conv = _pool(s1), ConvBN(c2, c_split, 3, stride=s1)
        c = c2 + c_split
        self.split2_a = nn.Sequential(ConvBN(c, c_mid, 1), ConvBN(c_mid, c_mixed, 3))
        self.split2_b = nn.Sequential(ConvBN(c, c_mid, 1), ConvBN(c_mid, c_mid, 7), ConvBN(c_mid, c_mixed, 3))
        c = 2 * c_mixed
        self.split3_conv, self.split3_pool = ConvBN(c, c_out_conv, 3, stride=s2), _pool(s2)
        self.out_channels = c_out_conv + c

    def forward(self, x):
        x = self.convs(x)
        x = torch.cat([self.split1_pool(x), self.split1_conv(x)], dim=1)
        x = torch.cat([self.split2_a(x), self.split2_b(x)], dim=1)
        return torch.cat([self.split3_conv(x), self.split3_pool(x)], dim=1)


class _ResidualInception(nn.Module):
    """Shared tail: concat branches, linear 1x1 back to the trunk width, scaled residual add.

    The projection has a bias and no BN/ReLU (as in the paper): it must be able to output
    negative corrections, and the paper keeps BN off the summation path. Scaling the residual
    down (0.1-0.3) is what the paper found keeps very deep stacks from dying early in training.
    """

    def __init__(self, channels, branches, concat, scale, activate):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.project = nn.Conv1d(concat, channels, 1, bias=True)
        self.scale = scale
        self.act = nn.ReLU(inplace=True) if activate else nn.Identity()
        self.out_channels = channels

    def forward(self, x):
        up = self.project(torch.cat([b(x) for b in self.branches], dim=1))
        return self.act(x + self.scale * up)


class InceptionResNetA(_ResidualInception):
    """35x35 block of the paper: 1x1 || 1x1 -> k3 || 1x1 -> k3 -> k3; residual scale 0.17."""

    def __init__(self, channels, b1=32, b2=(32, 32), b3=(32, 48, 64), scale=0.17, activate=True):
        branches = [
            ConvBN(channels, b1, 1),
            nn.Sequential(ConvBN(channels, b2[0], 1), ConvBN(b2[0], b2[1], 3)),
            nn.Sequential(ConvBN(channels, b3[0], 1), ConvBN(b3[0], b3[1], 3), ConvBN(b3[1], b3[2], 3)),
        ]
        super().__init__(channels, branches, b1 + b2[1] + b3[2], scale, activate)


class InceptionResNetB(_ResidualInception):
    """17x17 block: 1x1 || 1x1 -> k (the 1x7/7x1 pair in 1-D); residual scale 0.1."""

    def __init__(self, channels, b1=192, b2=(128, 192), k=7, scale=0.1, activate=True):
        branches = [ConvBN(channels, b1, 1), nn.Sequential(ConvBN(channels, b2[0], 1), ConvBN(b2[0], b2[1], k))]
        super().__init__(channels, branches, b1 + b2[1], scale, activate)


class InceptionResNetC(_ResidualInception):
    """8x8 block: 1x1 || 1x1 -> k (the 1x3/3x1 pair in 1-D); residual scale 0.2."""

    def __init__(self, channels, b1=192, b2=(192, 256), k=3, scale=0.2, activate=True):
        branches = [ConvBN(channels, b1, 1), nn.Sequential(ConvBN(channels, b2[0], 1), ConvBN(b2[0], b2[1], k))]
        super().__init__(channels, branches, b1 + b2[1], scale, activate)


class ReductionA(nn.Module):
    """Stride-2 max-pool || k3/2 conv (n) || 1x1 (k) -> k3 (l) -> k3/2 (m). out = c_in + n + m."""

    def __init__(self, c_in, k=256, l=256, m=384, n=384):  # noqa: E741  (the paper's names)
        super().__init__()
        self.pool = _pool(2)
        self.conv = ConvBN(c_in, n, 3, stride=2)
        self.tower = nn.Sequential(ConvBN(c_in, k, 1), ConvBN(k, l, 3), ConvBN(l, m, 3, stride=2))
        self.out_channels = c_in + n + m

    def forward(self, x):
        return torch.cat([self.pool(x), self.conv(x), self.tower(x)], dim=1)


class ReductionB(nn.Module):
    """Stride-2 max-pool || 1x1 -> k3/2 || 1x1 -> k3/2 || 1x1 -> k3 -> k3/2. out = c_in + b1[1] + b2[1] + b3[2]."""

    def __init__(self, c_in, b1=(256, 384), b2=(256, 288), b3=(256, 288, 320)):
        super().__init__()
        self.pool = _pool(2)
        self.tower1 = nn.Sequential(ConvBN(c_in, b1[0], 1), ConvBN(b1[0], b1[1], 3, stride=2))
        self.tower2 = nn.Sequential(ConvBN(c_in, b2[0], 1), ConvBN(b2[0], b2[1], 3, stride=2))
        self.tower3 = nn.Sequential(ConvBN(c_in, b3[0], 1), ConvBN(b3[0], b3[1], 3), ConvBN(b3[1], b3[2], 3, stride=2))
        self.out_channels = c_in + b1[1] + b2[1] + b3[2]

    def forward(self, x):
        return torch.cat([self.pool(x), self.tower1(x), self.tower2(x), self.tower3(x)], dim=1)


def scaled(c, width, multiple=8):
    """Paper channel count ``c`` times ``width``, rounded to a multiple of 8 (at least 8)."""
    return max(multiple, int(c * width / multiple + 0.5) * multiple)


class InceptionResNet1d(ModRecModel):
    def __init__(self, n_classes, width, blocks, stem_strides, dropout, eps):
        if len(blocks) != 3 or min(blocks) < 0:
            raise ValueError(f"inception_resnet: blocks needs 3 counts >= 0 (A, B, C), got {blocks}")
        if len(stem_strides) != 2:
            raise ValueError(f"inception_resnet: stem_strides needs 2 entries, got {stem_strides}")
        super().__init__()

        def w(*cs):
            out = tuple(scaled(c, width) for c in cs)
            return out[0] if len(out) == 1 else out

        self.norm = RMSNormIQ(eps)
        self.stem = Stem(2, *w(32, 64, 96, 64, 96, 192), strides=tuple(stem_strides))
        c = self.stem.out_channels
        stages = [InceptionResNetA(c, w(32), w(32, 32), w(32, 48, 64)) for _ in range(blocks[0])]
        stages.append(ReductionA(c, *w(256, 256, 384, 384)))
        c = stages[-1].out_channels
        stages += [InceptionResNetB(c, w(192), w(128, 192)) for _ in range(blocks[1])]
        stages.append(ReductionB(c, w(256, 384), w(256, 288), w(256, 288, 320)))
        c = stages[-1].out_channels
        stages += [InceptionResNetC(c, w(192), w(192, 256)) for _ in range(blocks[2])]
        self.blocks = nn.Sequential(*stages)
        self.pool = GlobalAvgMaxPool1d()
        self.feature_dim = 2 * c
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feature_dim, n_classes))

    def forward_features(self, x):
        """(N, 2, L) raw I/Q -> (pooled features (N, feature_dim), logits (N, n_classes))."""
        feats = self.pool(self.blocks(self.stem(self.norm(x))))
        return feats, self.head(feats)

    def backbone_blocks(self):
        """The stem, then each Inception-ResNet block."""
        return [nn.Sequential(self.norm, self.stem), *self.blocks]

    def final_head(self):
        return nn.Sequential(self.pool, self.head)

    def forward(self, x):
        return self.forward_features(x)[1]


@register_model
def inception_resnet(
    n_classes=11,
    frame_len=128,
    width=0.375,
    blocks=(5, 10, 5),
    stem_strides=(1, 2),
    dropout=0.2,
    eps=1e-12,
):
    # frame_len is recorded for export and metadata; global pooling makes the net itself length-agnostic.
    del frame_len
    return InceptionResNet1d(n_classes, float(width), tuple(blocks), tuple(stem_strides), dropout, eps)
