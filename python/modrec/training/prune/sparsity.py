"""Sparsity training for the bn-gamma criterion (network slimming, Liu et al. 2017): an L1
penalty lambda * sum|gamma| on every batch-norm scale while the model trains, so the channels the
model can do without drift to gamma ~ 0 and bn-gamma pruning later removes them at little cost.

torch-pruning's BNScalePruner applies the penalty as its subgradient after ``loss.backward()``
(the penalty is not part of the reported loss), as the paper's reference implementation does;
the classifier's output layer is left out, as in pruning."""

import torch
import torch_pruning as tp

from .surgery import _output_layer


class BnSparsity:
    """``BnSparsity(model, strength, frame_len)()`` after each backward pass adds
    ``strength * sign(gamma)`` to the gradient of every batch-norm scale of ``model``."""

    def __init__(self, model, strength, frame_len):
        n_classes = getattr(model, "model_cfg", {}).get("n_classes")
        if n_classes is None:
            raise ValueError("bn_sparsity: the model has no model_cfg['n_classes'] (build it with create_model)")
        was = model.training
        model.eval()  # tracing the dependency graph must not update batch-norm statistics
        device = next(model.parameters()).device
        self.model = model
        self.pruner = tp.pruner.BNScalePruner(model, torch.zeros(1, 2, frame_len, device=device),
                                              importance=tp.importance.BNScaleImportance(), reg=strength,
                                              ignored_layers=[_output_layer(model, n_classes)])
        model.train(was)

    def __call__(self):
        self.pruner.regularize(self.model)
