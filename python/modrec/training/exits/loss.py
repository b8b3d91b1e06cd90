"""How an early-exit student is trained (the ``exits:`` section of a config).

Schemes:

* ``joint``: every parameter, loss = sum_k w_k CE(exit_k).
* ``two_phase`` (the published multi-branch scheme): for the first ``phase1_epochs`` the blocks
  up to the last early exit and the early heads learn from the early exits' CE; then those are
  frozen and the later blocks and the final head learn from the final CE.
* ``heads``: the backbone is frozen (load a trained student with ``init_from``) and only the
  early heads learn: a trained student gains early exits in a few cheap epochs.

``self_distill`` > 0 adds, on each early exit, alpha * T^2 * KL(softmax(final/T) || softmax(exit/T))
with the final exit's output detached: early exits learn the final exit's soft answer too.
Frozen parts stay in eval mode so their batch-norm statistics do not drift.
"""

import torch.nn.functional as F


class ExitTraining:
    def __init__(self, model, cfg, total_epochs, label_smoothing=0.0):
        self.model, self.cfg = model, cfg
        n = model.n_exits
        self.weights = list(cfg.weights) if cfg.weights else [1.0] * n
        if len(self.weights) != n:
            raise ValueError(f"exits.weights has {len(self.weights)} entries, the model has {n} exits")
        if cfg.scheme == "two_phase" and not 0 < cfg.phase1_epochs < total_epochs:
            raise ValueError(f"exits.phase1_epochs must be in 1..{total_epochs - 1} for scheme two_phase, "
                             f"got {cfg.phase1_epochs}")
        self.label_smoothing = label_smoothing
        self.phase = None

    def _front(self):
        """Modules up to the last early exit, and the early heads."""
        mods = list(self.model._segments[:-1]) + list(self.model.exits)
        return mods

    def _back(self):
        return [self.model._segments[-1], self.model._final_head]

    def start_epoch(self, epoch):
        """Set what trains this epoch (requires_grad and train/eval modes)."""
        scheme = self.cfg.scheme
        if scheme == "joint":
            self.phase = "joint"
            frozen = []
        elif scheme == "heads":
            self.phase = "heads"
            frozen = [self.model.backbone]
        else:
            self.phase = "front" if epoch < self.cfg.phase1_epochs else "back"
            frozen = self._back() if self.phase == "front" else self._front()
        self.model.train()
        for p in self.model.parameters():
            p.requires_grad_(True)
        for module in frozen:
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)

    def loss(self, outs, y):
        """outs: logits of every exit (early first). Returns (loss, parts)."""
        early, final = outs[:-1], outs[-1]
        ce = [F.cross_entropy(o, y, label_smoothing=self.label_smoothing) for o in outs]
        if self.phase == "back":
            terms = [self.weights[-1] * ce[-1]]
        elif self.phase in ("front", "heads"):
            terms = [w * c for w, c in zip(self.weights[:-1], ce[:-1])]
        else:
            terms = [w * c for w, c in zip(self.weights, ce)]
        parts = {f"ce_exit{k}": c.detach() for k, c in enumerate(ce)}
        if self.cfg.self_distill > 0 and self.phase != "back":
            t = self.cfg.temperature
            soft = F.softmax(final.detach() / t, dim=1)
            kl = sum(F.kl_div(F.log_softmax(o / t, dim=1), soft, reduction="batchmean") for o in early) * t * t
            terms.append(self.cfg.self_distill * kl)
            parts["self_distill"] = kl.detach()
        return sum(terms), parts
