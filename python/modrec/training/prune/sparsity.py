"""Sparsity training for the bn-gamma criterion (network slimming, Liu et al. 2017): an L1
penalty lambda * sum|gamma| on every batch-norm scale while the model trains, so the channels the
model can do without drift to gamma ~ 0 and bn-gamma pruning later removes them at little cost.

Applied as the penalty's subgradient, added to the gradients after ``loss.backward()`` (the
penalty is not part of the reported loss), as the paper's reference implementation does."""

import torch
from torch import nn

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@torch.no_grad()
def add_bn_l1_subgradient_(model, strength):
    """Add ``strength * sign(gamma)`` to the gradient of every batch-norm scale of ``model``."""
    for module in model.modules():
        if isinstance(module, BATCH_NORMS) and module.weight is not None and module.weight.grad is not None:
            module.weight.grad.add_(torch.sign(module.weight), alpha=strength)
