"""Normalized KD, Yang et al. ICCV 2023 ("From knowledge distillation to self-knowledge
distillation: a unified approach with normalized loss and customized soft labels"), as in the
authors' reference code (yzd-v/cls_KD, NKDLoss):

    L = ce_weight * CE(s, y)
        - mean_n [ T_y log S_y ]                                        (target term, at T = 1)
        - gamma * lambda^2 * mean_n sum_{i != y} N(T_i^lambda) log N(S_i^lambda)   (non-target)

T = softmax(teacher logits), S = softmax(student logits); ``N(.^lambda)`` is the softmax at
temperature lambda over the NON-target logits only, i.e. the non-target probabilities
renormalised to sum to 1 once the target class is removed. The target term's teacher weight
T_y is a constant (no gradient). The non-target term is a cross-entropy, not a KL: it differs
from KL(N(T) || N(S)) by the teacher's entropy, a constant, so the gradients are the same, and
the paper writes it this way. The CE on labels is kept with weight 1, as in the paper's
training (the NKD loss is added to the original classification loss). Defaults lambda
(``temperature``) = 1.0, gamma = 1.5, ce_weight = 1.0: the paper's suggested values.
"""

import torch
import torch.nn.functional as F

from .registry import Distiller, check_range, hard_ce, register_distiller


@register_distiller("nkd")
class NKD(Distiller):
    def __init__(self, temperature=1.0, gamma=1.5, ce_weight=1.0):
        super().__init__()
        self.temperature, self.gamma, self.ce_weight = temperature, gamma, ce_weight

    @classmethod
    def check(cls, cfg):
        check_range(cfg, "temperature", lambda v: v > 0, "> 0")
        check_range(cfg, "gamma", lambda v: v >= 0, ">= 0")
        check_range(cfg, "ce_weight", lambda v: v >= 0, ">= 0")

    def loss(self, student_logits, targets, teacher_logits, student_features=None, teacher_features=None):
        teacher_logits = teacher_logits.detach()
        n, c = student_logits.shape
        label = targets.view(n, 1)
        log_s = F.log_softmax(student_logits, dim=1).gather(1, label)
        t_y = F.softmax(teacher_logits, dim=1).gather(1, label)
        target = -(t_y * log_s).mean()
        keep = torch.ones_like(student_logits, dtype=torch.bool).scatter_(1, label, False)
        lam = self.temperature
        log_s_non = F.log_softmax(student_logits[keep].view(n, c - 1) / lam, dim=1)
        t_non = F.softmax(teacher_logits[keep].view(n, c - 1) / lam, dim=1)
        non = -(t_non * log_s_non).sum(dim=1).mean()
        ce = hard_ce(student_logits, targets)
        total = self.ce_weight * ce + target + self.gamma * lam**2 * non
        return total, {"ce": ce.detach(), "nkd_target": target.detach(), "nkd_non_target": non.detach()}
