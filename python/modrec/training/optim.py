"""Optimiser and learning-rate schedule factories (config sections optim: and schedule:)."""

import math

import torch


def build_optimizer(model, oc):
    """The optimiser of ``oc`` (OptimConfig) over ``model``'s parameters."""
    # no weight decay on BN and biases: decaying them only fights the normalisation
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": oc.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    name = oc.name.lower()
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=oc.lr, betas=tuple(oc.betas))
    if name == "adam":
        return torch.optim.Adam(groups, lr=oc.lr, betas=tuple(oc.betas))
    return torch.optim.SGD(groups, lr=oc.lr, momentum=oc.betas[0], nesterov=True)


def build_scheduler(opt, sc, lr, total_steps):
    """The per-step learning-rate schedule of ``sc`` (ScheduleConfig) peaking at ``lr``."""
    name = sc.name.lower()
    if name == "onecycle":
        steps = max(total_steps, 4)
        # OneCycleLR divides by the length of each phase in steps: a warm-up of one step (e.g.
        # 10% of 10 steps) or no room left to anneal raises ZeroDivisionError in tiny runs.
        return torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=lr,
            total_steps=steps,
            pct_start=min(max(sc.warmup_frac, 2.0 / steps), 0.5),
            final_div_factor=1.0 / (sc.final_lr_frac * 25.0),  # OneCycle starts at lr/25
        )
    warm = int(sc.warmup_frac * total_steps)

    def factor(step):
        if name == "constant":
            return 1.0
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total_steps - warm))
        return sc.final_lr_frac + (1 - sc.final_lr_frac) * 0.5 * (1 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
