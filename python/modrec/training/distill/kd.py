"""Hinton et al. 2015, "Distilling the knowledge in a neural network".

    L = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y)

KL is summed over classes and averaged over the batch. T^2 keeps the soft term's gradient scale
independent of T. Defaults T = 4, alpha = 0.9: the usual CIFAR-style setting; with 11 classes
and a teacher that is far from one-hot at low SNR, most of the signal is in the soft targets.
"""

from .registry import Distiller, check_range, hard_ce, kl_per_sample, register_distiller


def kd_terms(student_logits, targets, teacher_logits, temperature, alpha):
    soft = temperature**2 * kl_per_sample(teacher_logits, student_logits, temperature).mean()
    ce = hard_ce(student_logits, targets)
    return alpha * soft + (1 - alpha) * ce, soft, ce


@register_distiller("kd")
class KD(Distiller):
    def __init__(self, temperature=4.0, alpha=0.9):
        super().__init__()
        self.temperature, self.alpha = temperature, alpha

    @classmethod
    def check(cls, cfg):
        check_range(cfg, "temperature", lambda v: v > 0, "> 0")
        check_range(cfg, "alpha", lambda v: 0 <= v <= 1, "in [0, 1]")

    def loss(self, student_logits, targets, teacher_logits, student_features=None, teacher_features=None):
        total, soft, ce = kd_terms(student_logits, targets, teacher_logits.detach(), self.temperature, self.alpha)
        return total, {"kd": soft.detach(), "ce": ce.detach()}
