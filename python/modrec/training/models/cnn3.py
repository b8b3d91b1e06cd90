"""CNN3: the first student, three 1-D conv blocks over the I/Q rows and a small dense head.

1-D convolutions treat I and Q as two input channels, which is what the 2-D (2 x k) kernels of
the RadioML papers amount to, at a fraction of the cost.
"""

from torch import nn

from .interface import ModRecModel
from .layers import GlobalAvgMaxPool1d, RMSNormIQ
from .registry import register_model


def _block(c_in, c_out, k, pool):
    layers = [
        nn.Conv1d(c_in, c_out, k, padding=k // 2, bias=False),  # BN supplies the bias
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool > 1:
        layers.append(nn.MaxPool1d(pool))
    return layers


class CNN3(ModRecModel):
    def __init__(self, n_classes, channels, kernels, pools, hidden, dropout, eps):
        super().__init__()
        if not (len(channels) == len(kernels) == len(pools) == 3):
            raise ValueError(
                f"cnn3: channels, kernels and pools need 3 entries each, got {len(channels)}, {len(kernels)}, {len(pools)}"
            )
        self.norm = RMSNormIQ(eps)
        layers, c_in = [], 2
        for c, k, p in zip(channels, kernels, pools):
            layers += _block(c_in, c, k, p)
            c_in = c
        self.features = nn.Sequential(*layers)
        self.pool = GlobalAvgMaxPool1d()
        self.feature_dim = 2 * c_in
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(2 * c_in, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def backbone_blocks(self):
        """A block ends after each ReLU or pool that a convolution follows (three blocks)."""
        f = list(self.features)
        cuts = [i + 1 for i, m in enumerate(f) if isinstance(m, (nn.ReLU, nn.MaxPool1d))
                and (i + 1 == len(f) or isinstance(f[i + 1], nn.Conv1d))]
        starts = [0] + cuts[:-1]
        blocks = [nn.Sequential(*f[a:b]) for a, b in zip(starts, cuts)]
        blocks[0] = nn.Sequential(self.norm, *blocks[0])
        return blocks

    def final_head(self):
        return nn.Sequential(self.pool, self.head)

    def forward(self, x):
        """(N, 2, L) raw I/Q -> (N, n_classes) logits (softmax is added at export)."""
        return self.head(self.pool(self.features(self.norm(x))))

    def forward_features(self, x):
        """(N, 2, L) -> (pooled embedding (N, feature_dim), logits); the embedding is what the head reads."""
        feats = self.pool(self.features(self.norm(x)))
        return feats, self.head(feats)


@register_model
def cnn3(
    n_classes=11,
    frame_len=128,
    channels=(48, 64, 128),
    kernels=(7, 5, 3),
    pools=(2, 2, 1),
    hidden=64,
    dropout=0.1,
    eps=1e-12,
):
    # frame_len is recorded for export and metadata; global pooling makes the net itself length-agnostic.
    del frame_len
    return CNN3(n_classes, tuple(channels), tuple(kernels), tuple(pools), hidden, dropout, eps)
