"""What the training loop optimises: the objective interface, and plain cross-entropy.

``train.py`` runs one loop for every kind of training; what differs between plain training, a
distillation session (``distill/session.py``) and early-exit training (``exits/loss.py``) is an
:class:`Objective`:

* what is trained (``model``, the network that is evaluated and checkpointed, and ``trainable``,
  what the optimiser steps: the model, or the model with a distiller and an online teacher);
* what the training step calls (``step_module``; DDP wraps it) and the loss of a batch
  (``batch_loss``, with the batch's count of right answers);
* the frames and modes of an epoch (``start_epoch``), the validation loss and accuracy
  (``validate``), the extra columns of its history row and the score that picks ``best.pt``
  (``epoch_row``);
* its state in a checkpoint, for ``--resume`` (``checkpoint_entries`` / ``resume_from``) and its
  description for the checkpoint's training info (``training_info``).

To add a kind of training, subclass :class:`Objective` and choose it in ``train.make_objective``.
"""

import torch
import torch.nn.functional as F

from .predict import predict_logits


def distill_method(ckpt):
    """The distillation method a checkpoint (dict) was trained with; ``"none"`` for plain training."""
    return (ckpt.get("distill") or {}).get("method", "none")


class Objective:
    """Base objective: trains ``model`` on cross-entropy of its logits (no distillation).

    ``model``: the network (``nn.Module``, input (N, 2, L) float32 I/Q, output (N, C) logits);
    ``augment``: the ``AugmentConfig`` the loop applies to every batch; ``label_smoothing``: the
    cross-entropy's (0 = none); ``eval_batch_size``: frames per batch when validating.
    """

    def __init__(self, model, augment, label_smoothing=0.0, eval_batch_size=2048):
        self.model = model
        self.augment = augment
        self.label_smoothing = label_smoothing
        self.eval_batch_size = eval_batch_size

    @property
    def trainable(self):
        """The module whose parameters the optimiser steps and whose buffers ranks share."""
        return self.model

    @property
    def step_module(self):
        """What the training step calls with a batch; DDP wraps this (it synchronises the
        gradients of what goes through its own forward)."""
        return self.model

    def start_epoch(self, epoch, x_train):
        """Set train/eval modes for epoch ``epoch`` (0-based); returns the (N, 2, L) train frames
        the epoch draws its batches from."""
        self.model.train()
        return x_train

    def batch_loss(self, net, xb, yb, idx):
        """(scalar loss, right answers: a 0-d tensor) of one batch; ``net`` is ``step_module``
        (maybe DDP-wrapped), ``idx`` the batch's rows of the train split (int64, (B,))."""
        logits = net(xb)
        return F.cross_entropy(logits, yb, label_smoothing=self.label_smoothing), (logits.argmax(1) == yb).sum()

    def unsynced_parameters(self):
        """Parameters trained outside ``step_module``; their gradients are averaged over ranks."""
        return []

    def clip_grad_(self, max_norm):
        torch.nn.utils.clip_grad_norm_(self.trainable.parameters(), max_norm)

    def validate(self, x_val, y_val):
        """``{"val_loss", "val_acc"}`` of the model on the validation split (eval mode)."""
        logits = predict_logits(self.model, x_val, self.eval_batch_size)
        return {"val_loss": F.cross_entropy(logits, y_val.cpu()).item(),
                "val_acc": (logits.argmax(1) == y_val.cpu()).float().mean().item()}

    def epoch_row(self, x_val, y_val):
        """Extra columns of the epoch's history row (the loop adds loss, accuracy, lr, time).
        A ``val_score`` column, when given, replaces ``val_acc`` as the score of ``best.pt``."""
        return {}

    def training_info(self):
        """Entries added to the checkpoint's ``training`` record (JSON-able)."""
        return {}

    def checkpoint_entries(self):
        """Entries added to every checkpoint, read back by ``resume_from``."""
        return {}

    def resume_from(self, ckpt, path):
        """Restore the objective's state from checkpoint ``ckpt`` (a dict read from ``path``);
        raises ValueError when it was written by another objective."""
        was = distill_method(ckpt)
        if was != "none":
            raise ValueError(f"{path}: run used distillation '{was}', config asks for 'none'")
