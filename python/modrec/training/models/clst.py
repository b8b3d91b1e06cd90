"""ClST teacher: convolution-linked signal transformer (a hierarchy of CvT-like stages for I/Q).

Layout (token counts for the default 128-sample frame)::

    RMSNormIQ -> conv stem (k7, k3; 128) -> for each stage: strided conv token embedding
    (64, 32, 16 tokens; widening 64 -> 128 -> 192 channels) + `depth` ClST blocks
    -> LayerNorm -> global avg+max pool -> dropout -> linear

A ClST block is pre-norm::

    x = x + DropPath(PSCA(LN(x)))          PSCA = CTP projections -> spatial || channel attention
    x = x + DropPath(ConvFFN(LN(x)))       Linear -> depthwise k3 conv -> GELU -> Linear

* CTP (convolution-transformer projection): Q, K and V each come from a depthwise k=3 conv + BN
  followed by a pointwise (1x1) conv. The depthwise conv gives every token its neighbours, which
  is the only positional information the model has: no position embedding, so any frame_len
  works. K/V are not strided: with <= 64 tokens per stage attention is already cheap, and the
  channel branch needs Q and K at the same length.
* PSCA (parallel spatial-channel attention), sharing the CTP's Q/K/V:
  - temporal branch: multi-head softmax(Q K^T / sqrt(d)) V over tokens;
  - channel branch: cross-covariance attention (XCiT style) over the feature dimension, per head
    softmax(tau * Qn^T Kn) (a d x d map, Q/K L2-normalised along time) applied to V. It mixes
    channels with weights computed from the whole frame, which is what channel statistics of a
    modulation (constellation order, envelope) live in;
  - fused by a learned per-channel sigmoid gate (starting at 0.5 / 0.5), then a linear projection.

Measured sizes (defaults: dims=(64, 128, 192), depths=(1, 2, 3), heads=(2, 4, 6), mlp_ratio=4):
1,923,687 params; flops.count_flops (convs + linears only) gives 80.5 MFLOPs/frame at
frame_len=128. It misses the attention matmuls, which are not modules: with T tokens, C
channels and head width d, a block costs 4 * (T^2 * C + T * C * d) FLOPs there (QK^T and AV in
the temporal branch, Qn^T Kn and its product with V in the channel branch), 5.4 MFLOPs over
the six blocks, so 85.9 MFLOPs/frame in all (see
tests/test_teachers.py::test_clst_attention_flops_note).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .interface import ModRecModel
from .layers import GlobalAvgMaxPool1d, RMSNormIQ
from .registry import register_model


class ChannelLayerNorm(nn.Module):
    """A LayerNorm over channels applied to a (N, C, L) map (it normalises (N, L, C) tokens)."""

    def __init__(self, norm):
        super().__init__()
        self.norm = norm

    def forward(self, x):
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample (identity at eval/export)."""

    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class ConvStem(nn.Module):
    """I/Q (N, 2, L) -> (N, C, L) with two convs, so the first tokens already see a few symbols."""

    def __init__(self, c_out, k=7):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(2, c_out, k, padding=k // 2, bias=False), nn.BatchNorm1d(c_out), nn.GELU(),
            nn.Conv1d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm1d(c_out), nn.GELU(),
        )
        self.out_channels = c_out

    def forward(self, x):
        return self.net(x)


class ConvTokenEmbed(nn.Module):
    """CvT's convolutional token embedding: strided conv (downsample + widen), then LayerNorm.

    (N, C_in, L) -> tokens (N, ceil(L / stride), C_out).
    """

    def __init__(self, c_in, c_out, k=3, stride=2):
        super().__init__()
        self.proj = nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2)
        self.norm = nn.LayerNorm(c_out)

    def forward(self, x):
        return self.norm(self.proj(x).transpose(1, 2))


class CTP(nn.Module):
    """Convolution-transformer projection: (N, C, L) -> Q, K, V, each (N, C, L).

    Each is depthwise k-conv + BN (local context) then a pointwise conv (channel mixing, the role
    of the plain linear map in a ViT).
    """

    def __init__(self, dim, k=3):
        super().__init__()

        def proj():
            return nn.Sequential(
                nn.Conv1d(dim, dim, k, padding=k // 2, groups=dim, bias=False),
                nn.BatchNorm1d(dim),
                nn.Conv1d(dim, dim, 1),
            )

        self.q, self.k, self.v = proj(), proj(), proj()

    def forward(self, x):
        return self.q(x), self.k(x), self.v(x)


class TemporalAttention(nn.Module):
    """Multi-head self-attention across tokens. q, k, v: (N, h, d, L) -> (N, h, d, L)."""

    def __init__(self, attn_drop=0.0):
        super().__init__()
        self.attn_drop = attn_drop

    def forward(self, q, k, v):
        # SDPA wants (N, h, L, d); the dynamo exporter decomposes it into MatMul/Softmax nodes
        out = F.scaled_dot_product_attention(
            q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2),
            dropout_p=self.attn_drop if self.training else 0.0,
        )
        return out.transpose(-1, -2)


class ChannelAttention(nn.Module):
    """Cross-covariance attention over channels within each head. q, k, v: (N, h, d, L).

    Normalising Q and K along time bounds the logits whatever the frame length, and a learned
    per-head temperature then sets how peaked the d x d map may be (XCiT).
    """

    def __init__(self, heads):
        super().__init__()
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))

    def forward(self, q, k, v):
        attn = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-1, -2)) * self.temperature
        return attn.softmax(dim=-1) @ v


class PSCA(nn.Module):
    """Parallel spatial-channel attention on tokens (N, L, C) -> (N, L, C)."""

    def __init__(self, dim, heads, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"clst: dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.ctp = CTP(dim)
        self.temporal = TemporalAttention(attn_drop)
        self.channel = ChannelAttention(heads)
        self.gate = nn.Parameter(torch.zeros(dim))  # sigmoid(0) = 0.5: both branches start equal
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        n, length, c = x.shape
        q, k, v = (t.reshape(n, self.heads, c // self.heads, length) for t in self.ctp(x.transpose(1, 2)))
        t_out = self.temporal(q, k, v).reshape(n, c, length).transpose(1, 2)
        c_out = self.channel(q, k, v).reshape(n, c, length).transpose(1, 2)
        g = torch.sigmoid(self.gate)
        return self.proj_drop(self.proj(g * t_out + (1.0 - g) * c_out))


class ConvFFN(nn.Module):
    """Linear -> depthwise k3 conv -> GELU -> Linear on tokens (N, L, C).

    The depthwise conv lets the FFN see neighbouring samples too, cheaply (PVTv2/CMT style).
    """

    def __init__(self, dim, ratio=4.0, drop=0.0):
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.dw = nn.Conv1d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        x = self.dw(self.fc1(x).transpose(1, 2)).transpose(1, 2)
        return self.drop(self.fc2(self.drop(self.act(x))))


class ClSTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0, drop=0.0, attn_drop=0.0, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = PSCA(dim, heads, attn_drop, drop)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = ConvFFN(dim, mlp_ratio, drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.ffn(self.norm2(x)))


class ClSTStage(nn.Module):
    """Strided conv token embedding + blocks. (N, C_in, L) -> (N, C_out, ceil(L / stride))."""

    def __init__(self, c_in, dim, depth, heads, stride, mlp_ratio, drop, attn_drop, drop_paths):
        super().__init__()
        self.embed = ConvTokenEmbed(c_in, dim, stride=stride)
        self.blocks = nn.ModuleList(
            ClSTBlock(dim, heads, mlp_ratio, drop, attn_drop, dp) for dp in drop_paths
        )
        assert len(self.blocks) == depth

    def forward(self, x):
        x = self.embed(x)
        for blk in self.blocks:
            x = blk(x)
        return x.transpose(1, 2)


class ClST(ModRecModel):
    def __init__(self, n_classes, stem_dim, dims, depths, heads, strides, mlp_ratio, dropout, attn_drop,
                 drop_path, head_dropout, eps):
        super().__init__()
        if not (len(dims) == len(depths) == len(heads) == len(strides)) or not dims:
            raise ValueError(
                f"clst: dims, depths, heads and strides need one entry per stage, got "
                f"{len(dims)}, {len(depths)}, {len(heads)}, {len(strides)}"
            )
        self.norm = RMSNormIQ(eps)
        self.stem = ConvStem(stem_dim)
        # stochastic depth grows linearly with depth (as in DeiT/CvT): deep blocks are dropped more
        total = sum(depths)
        rates = [drop_path * i / max(total - 1, 1) for i in range(total)]
        stages, c_in, i = [], stem_dim, 0
        for dim, depth, h, s in zip(dims, depths, heads, strides):
            stages.append(ClSTStage(c_in, dim, depth, h, s, mlp_ratio, dropout, attn_drop, rates[i:i + depth]))
            c_in, i = dim, i + depth
        self.stages = nn.Sequential(*stages)
        self.final_norm = nn.LayerNorm(c_in)
        self.pool = GlobalAvgMaxPool1d()
        self.feature_dim = 2 * c_in
        self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(self.feature_dim, n_classes))
        self.apply(self._init)

    @staticmethod
    def _init(m):
        # ViT/CvT init: small truncated-normal linears keep early attention logits near uniform
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        """(N, 2, L) raw I/Q -> (pooled features (N, feature_dim), logits (N, n_classes))."""
        x = self.stages(self.stem(self.norm(x)))
        feats = self.pool(self.final_norm(x.transpose(1, 2)).transpose(1, 2))
        return feats, self.head(feats)

    def backbone_blocks(self):
        """The stem, then each stage (its token embedding and transformer blocks)."""
        return [nn.Sequential(self.norm, self.stem), *self.stages]

    def final_head(self):
        return nn.Sequential(ChannelLayerNorm(self.final_norm), self.pool, self.head)

    def forward(self, x):
        return self.forward_features(x)[1]


@register_model
def clst(
    n_classes=11,
    frame_len=128,
    stem_dim=32,
    dims=(64, 128, 192),
    depths=(1, 2, 3),
    heads=(2, 4, 6),
    strides=(2, 2, 2),
    mlp_ratio=4.0,
    dropout=0.0,
    attn_drop=0.0,
    drop_path=0.1,
    head_dropout=0.2,
    eps=1e-12,
):
    # frame_len is recorded for export and metadata; global pooling makes the net itself length-agnostic.
    del frame_len
    return ClST(n_classes, stem_dim, tuple(dims), tuple(depths), tuple(heads), tuple(strides), float(mlp_ratio),
                dropout, attn_drop, drop_path, head_dropout, eps)
