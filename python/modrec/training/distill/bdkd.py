"""Online, entropy-balanced forward/reverse KD, after BD-KD (Amara et al. 2022, "Balancing the
divergences for online knowledge distillation"). Teacher and student are trained together.

Student, per sample n (p = softmax(logits / T); entropies H at the same T, no gradient):

    w_n = sigmoid(k * (H(p_t) - H(p_s)))
    d_n = w_n * KL(p_t || p_s) + (1 - w_n) * KL(p_s || p_t)
    L_s = alpha * T^2 * mean_n d_n + (1 - alpha) * CE(s, y)

Why that direction: forward KL is mass-covering (it punishes the student for missing any class
the teacher gives mass to), reverse KL is mode-seeking (it punishes mass the teacher does not
back). A student that is SHARPER than its teacher (H_s < H_t, w > 1/2) is overconfident and gets
mostly forward KL, which spreads it; a student FLATTER than its teacher gets mostly reverse KL,
which concentrates it on the teacher's modes. This is what balances the student's confidence
(the paper's calibration argument). The weighting function is this module's choice.

Teacher:  L_t = CE(t, y) + teacher_kd * T^2 * mean_n KL(p_t || p_s)   (student detached)

The teacher's distillation term (the paper regularises the teacher with a reverse KL towards the
student) is off by default (teacher_kd = 0), so the teacher learns from the labels alone and the
student is never a bad influence on it early on. The returned loss is L_s + L_t: the student
terms see the teacher detached and vice versa, so one backward pass gives each network exactly
its own gradient. Defaults: T = 4, alpha = 0.5 (both networks start untrained, so the labels
must carry more weight than in offline kd), k = 2 per nat of entropy gap, teacher_kd = 0.
"""

import torch

from .registry import Distiller, check_range, entropy, hard_ce, kl_per_sample, register_distiller


@register_distiller("bdkd")
class BDKD(Distiller):
    online = True

    def __init__(self, temperature=4.0, alpha=0.5, entropy_scale=2.0, teacher_kd=0.0):
        super().__init__()
        self.temperature, self.alpha = temperature, alpha
        self.entropy_scale, self.teacher_kd = entropy_scale, teacher_kd

    @classmethod
    def check(cls, cfg):
        check_range(cfg, "temperature", lambda v: v > 0, "> 0")
        check_range(cfg, "alpha", lambda v: 0 <= v <= 1, "in [0, 1]")
        check_range(cfg, "entropy_scale", lambda v: v >= 0, ">= 0")
        check_range(cfg, "teacher_kd", lambda v: v >= 0, ">= 0")

    def loss(self, student_logits, targets, teacher_logits, student_features=None, teacher_features=None):
        T = self.temperature
        t_det, s_det = teacher_logits.detach(), student_logits.detach()
        with torch.no_grad():
            w = torch.sigmoid(self.entropy_scale * (entropy(t_det, T) - entropy(s_det, T)))
        fwd = kl_per_sample(t_det, student_logits, T)
        rev = kl_per_sample(student_logits, t_det, T)
        soft = T**2 * (w * fwd + (1 - w) * rev).mean()
        ce = hard_ce(student_logits, targets)
        student = self.alpha * soft + (1 - self.alpha) * ce
        teacher_ce = hard_ce(teacher_logits, targets)
        teacher = teacher_ce
        parts = {"kd": soft.detach(), "ce": ce.detach(), "w_forward": w.mean(), "teacher_ce": teacher_ce.detach()}
        if self.teacher_kd > 0:
            t_kd = T**2 * kl_per_sample(teacher_logits, s_det, T).mean()
            teacher = teacher + self.teacher_kd * t_kd
            parts["teacher_kd"] = t_kd.detach()
        return student + teacher, parts
