"""Signal-KD style hybrid: Hinton's soft-target term plus penultimate-feature matching.

    L = alpha * T^2 * KL(p_t^T || p_s^T) + (1 - alpha) * CE(s, y)
        + beta * mean_n || P f_s / |P f_s| - f_t / |f_t| ||^2

``P`` is a learnable Linear(D_s -> D_t) (with bias) owned by the distiller, so student and teacher
widths may differ. Both sides are L2-normalised per sample before the squared distance, which
equals 2 (1 - cos(P f_s, f_t)): the student learns the teacher's feature DIRECTION, not its scale,
which is arbitrary across architectures (BN, pooling) and would otherwise dominate the loss.
The distance is summed over the D_t dims and averaged over the batch. Defaults: T = 4,
alpha = 0.9 (as kd), beta = 1.0 (the feature term is bounded by 4, similar to the soft term).
"""

import torch.nn.functional as F
from torch import nn

from .kd import kd_terms
from .registry import Distiller, check_range, register_distiller


@register_distiller("skd")
class SKD(Distiller):
    needs_features = True

    def __init__(self, temperature=4.0, alpha=0.9, beta=1.0, *, student_dim=None, teacher_dim=None):
        super().__init__()
        if student_dim is None or teacher_dim is None:
            raise ValueError("skd: student_dim and teacher_dim (the models' feature_dim) are required")
        self.temperature, self.alpha, self.beta = temperature, alpha, beta
        self.proj = nn.Linear(int(student_dim), int(teacher_dim))

    @classmethod
    def check(cls, cfg):
        check_range(cfg, "temperature", lambda v: v > 0, "> 0")
        check_range(cfg, "alpha", lambda v: 0 <= v <= 1, "in [0, 1]")
        check_range(cfg, "beta", lambda v: v >= 0, ">= 0")

    def loss(self, student_logits, targets, teacher_logits, student_features=None, teacher_features=None):
        if student_features is None or teacher_features is None:
            raise ValueError("skd needs student_features and teacher_features")
        total, soft, ce = kd_terms(student_logits, targets, teacher_logits.detach(), self.temperature, self.alpha)
        zs = F.normalize(self.proj(student_features), dim=1)
        zt = F.normalize(teacher_features.detach(), dim=1)
        feat = ((zs - zt) ** 2).sum(dim=1).mean()
        return total + self.beta * feat, {"kd": soft.detach(), "ce": ce.detach(), "feat": feat.detach()}
