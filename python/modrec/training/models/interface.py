"""The interface every architecture in the registry implements (students and teachers alike).

Early exits (``early_exit.py``) and feature distillation (``distill/``) use only this interface,
so any architecture gets both the same way, with no per-model code outside its own file:

* ``forward(x)``: (N, 2, L) float32 raw I/Q -> (N, n_classes) logits;
* ``forward_features(x)``: -> (pooled features (N, feature_dim), logits (N, n_classes)), the
  features being what the classifier head reads (SKD matches them; Yang et al., ICLR 2021);
* ``feature_dim``: the width of those pooled features;
* ``backbone_blocks()``: the backbone as a list of blocks, chained (N, 2, L) -> (N, C, L') feature map;
* ``final_head()``: that feature map -> logits (pooling included), so
  ``final_head()(blocks[-1](...blocks[0](x)))`` equals ``forward(x)``; an ``nn.Sequential`` whose
  last module is the classifier head proper, so that what comes before it gives the pooled
  features ``forward_features`` returns (detector heads read them: detecting.py);
* ``block_widths(frame_len)``: each block's output channel count (what an exit head after it reads).

The blocks and the head reuse the model's own modules: they hold no parameters of their own.
"""

import torch
from torch import nn


class ModRecModel(nn.Module):
    """Base class of the registry's architectures; subclasses define ``forward``,
    ``forward_features``, ``feature_dim``, ``backbone_blocks`` and ``final_head``."""

    feature_dim: int

    def forward_features(self, x):
        raise NotImplementedError

    def backbone_blocks(self):
        """The backbone as a list of ``nn.Module`` blocks (see the module docstring)."""
        raise NotImplementedError

    def final_head(self):
        """``nn.Module``: the last block's feature map -> logits."""
        raise NotImplementedError

    @torch.no_grad()
    def block_widths(self, frame_len=128):
        """Output channels of each backbone block, found by passing one frame of ``frame_len``
        samples through them in eval mode (the train/eval mode is restored)."""
        was = self.training
        self.eval()
        x, widths = torch.zeros(1, 2, frame_len, device=next(self.parameters()).device), []
        for block in self.backbone_blocks():
            x = block(x)
            widths.append(int(x.shape[1]))
        self.train(was)
        return widths
