"""Mini Inception-ResNet: the teacher's blocks at a fraction of its width and depth.

Same layout as the ``inception_resnet`` teacher (and built from its blocks), so a distilled
student sees features organised like the teacher's::

    RMSNormIQ -> Stem (L/2) -> a x A -> Reduction-A (L/4) -> b x B -> Reduction-B (L/8) -> c x C
              -> global avg+max pool -> dropout -> linear

The published mini model (39.69 MB) is far too big for an edge receiver; this one keeps every
block type but at 1/8 of the paper's channel widths and 2 blocks per stage. Branch widths that
scale below 8 are held at 8 (``inception_resnet.scaled``), so narrow widths keep every branch.

Default config (n_classes=11, frame_len=128), measured: 164,443 parameters, 8.87 MFLOPs/frame
(multiply-add = 2, convs and linears only), ~700 KB as ONNX. Other points measured at 128:
width=0.09375 blocks=(2, 3, 2): 98,683 params, 5.4 MFLOPs; width=0.15625 blocks=(1, 2, 1):
204,699 params, 11.5 MFLOPs. Stay below ~250k params to keep the ONNX file under 1 MB.
"""

from torch import nn

from .inception_resnet import (
    InceptionResNetA,
    InceptionResNetB,
    InceptionResNetC,
    ReductionA,
    ReductionB,
    Stem,
    scaled,
)
from .layers import GlobalAvgMaxPool1d, RMSNormIQ
from .registry import register_model


class MiniInceptionResNet1d(nn.Module):
    def __init__(self, n_classes, width, blocks, stem_strides, dropout, eps):
        super().__init__()
        if len(blocks) != 3 or min(blocks) < 0:
            raise ValueError(f"mini_inception_resnet: blocks needs 3 counts >= 0 (A, B, C), got {blocks}")
        if len(stem_strides) != 2:
            raise ValueError(f"mini_inception_resnet: stem_strides needs 2 entries, got {stem_strides}")

        def w(*cs):
            out = tuple(scaled(c, width) for c in cs)
            return out[0] if len(out) == 1 else out

        # the paper's channel counts, times width: only the scale differs from the teacher
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
        """(N, 2, L) -> (pooled embedding (N, feature_dim), logits)."""
        feats = self.pool(self.blocks(self.stem(self.norm(x))))
        return feats, self.head(feats)

    def forward(self, x):
        """(N, 2, L) raw I/Q -> (N, n_classes) logits (softmax is added at export)."""
        return self.forward_features(x)[1]


@register_model
def mini_inception_resnet(
    n_classes=11,
    frame_len=128,
    width=0.125,
    blocks=(2, 2, 2),
    stem_strides=(1, 2),
    dropout=0.2,
    eps=1e-12,
):
    # frame_len is recorded for export and metadata; global pooling makes the net itself length-agnostic.
    del frame_len
    return MiniInceptionResNet1d(n_classes, float(width), tuple(blocks), tuple(stem_strides), dropout, eps)
