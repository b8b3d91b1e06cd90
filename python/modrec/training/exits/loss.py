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

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import load_backbone
from ..distributed import MethodAsForward
from ..objective import Objective


class ExitTraining(Objective):
    """The training objective of an early-exit student (``models/early_exit.EarlyExitNet``).

    ``cfg``: the config's ``exits`` section; ``total_epochs``: the run's (phases are counted in
    epochs); ``augment``: the run's AugmentConfig; ``eval_batch_size``: frames per batch when the
    exits are scored on the validation split. Raises ValueError for weights or phases that do not
    fit the model or the run.
    """

    def __init__(self, model, cfg, total_epochs, label_smoothing=0.0, augment=None, eval_batch_size=2048):
        super().__init__(model, augment, label_smoothing, eval_batch_size)
        self.cfg = cfg
        n = model.n_exits
        self.weights = list(cfg.weights) if cfg.weights else [1.0] * n
        if len(self.weights) != n:
            raise ValueError(f"exits.weights has {len(self.weights)} entries, the model has {n} exits")
        if cfg.scheme == "two_phase" and not 0 < cfg.phase1_epochs < total_epochs:
            raise ValueError(f"exits.phase1_epochs must be in 1..{total_epochs - 1} for scheme two_phase, "
                             f"got {cfg.phase1_epochs}")
        self.phase = None

    @classmethod
    def from_config(cls, cfg, model, resume=False, log=print):
        """The objective for ExperimentConfig ``cfg``; unless resuming, the backbone starts from the
        plain student in ``exits.init_from`` when one is named (FileNotFoundError / ValueError when
        it is missing or holds another architecture)."""
        if cfg.exits.init_from and not resume:
            plain = load_backbone(model.backbone, cfg.exits.init_from, field="exits.init_from", source=cfg.source)
            log(f"exits: backbone initialised from {cfg.exits.init_from} (val acc {plain.get('val_acc', float('nan')):.4f})")
        return cls(model, cfg.exits, cfg.train.epochs, cfg.train.label_smoothing, augment=cfg.augment,
                   eval_batch_size=cfg.train.eval_batch_size)

    @property
    def step_module(self):
        return MethodAsForward(self.model, "forward_exits")  # the loss needs every exit's logits

    def _front(self):
        """Modules up to the last early exit, and the early heads."""
        mods = list(self.model._segments[:-1]) + list(self.model.exits)
        return mods

    def _back(self):
        return [self.model._segments[-1], self.model._final_head]

    def start_epoch(self, epoch, x_train=None):
        """Set what trains this epoch (requires_grad and train/eval modes); returns ``x_train``."""
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
        return x_train

    def batch_loss(self, net, xb, yb, idx):
        outs = net(xb)
        loss, _ = self.exit_loss(outs, yb)
        return loss, (outs[-1].argmax(1) == yb).sum()

    def exit_loss(self, outs, y):
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

    @torch.no_grad()
    def epoch_row(self, x_val, y_val):
        """Validation accuracy of every exit (``val_acc_exit{k}``, early first) and their mean as
        ``val_score``: an early-exit model is as good as all its exits (a frozen backbone leaves
        the final exit's accuracy unchanged while the early heads improve)."""
        was = self.model.training
        self.model.eval()
        bs = self.eval_batch_size
        outs = [self.model.forward_exits(x_val[s : s + bs]) for s in range(0, len(x_val), bs)]
        self.model.train(was)
        y = y_val.cpu()
        row = {f"val_acc_exit{k}": (torch.cat([o[k] for o in outs]).argmax(1).cpu() == y).float().mean().item()
               for k in range(len(outs[0]))}
        row["val_score"] = float(np.mean(list(row.values())))
        return row
