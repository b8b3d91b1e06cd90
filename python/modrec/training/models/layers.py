"""Layers shared by the students."""

import torch
from torch import nn


class RMSNormIQ(nn.Module):
    """Divide each frame by its RMS amplitude (sqrt of mean I^2+Q^2 over the frame).

    Living inside the graph makes the exported model gain-invariant, so the runtime never has to
    know how a receiver scaled its samples. ``eps`` keeps all-zero frames at zero instead of NaN;
    it is tiny so that even very weak (1e-5 full scale) frames are still normalised. It is a floor
    (Max) rather than an added term because ONNX exporters fold ``+ 1e-12`` away as "adding zero",
    which brings the NaN back in the exported graph.
    """

    def __init__(self, eps=1e-12):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        # time is the last axis in both layouts the exporter writes, (N, 2, L) and (N, 2, 1, L)
        power = (x * x).sum(dim=1, keepdim=True).mean(dim=-1, keepdim=True)
        return x / torch.sqrt(torch.clamp(power, min=self.eps))


class GlobalAvgMaxPool1d(nn.Module):
    """Concatenate global average and global max over time.

    Global pooling makes the head independent of frame length and of where in the frame a
    feature lands (circular time shifts), and max keeps sparse cues that averaging washes out.
    """

    def forward(self, x):
        # flatten: (N, 2C) from (N, C, L) and from the exporter's (N, C, 1, L) alike (conv2d_layout.py)
        return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1).flatten(1)
