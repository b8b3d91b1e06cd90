"""A classifier that is its own signal detector: detector heads on the classifier's backbone.

Contract version 2 asks every frame for class probabilities, a "no signal" decision and an SNR
estimate. The shipped ``mobilenet1d-skd-v2`` answers with two networks side by side, the
classifier and the signal detector (models/signal_detector.py), and the detector costs about as
much time as the classifier (3.9 against 2.1 MFLOPs a frame; 46 against 67 us a frame in ONNX
Runtime on one core of the Intel Xeon development VM). Here the detector's two outputs come from
heads on the classifier's own feature maps instead, trained together with the classes (training/
detection.py, JointDetection), so a frame pays for one backbone:

* the backbone's pooled features, what its classifier head reads;
* the pooled output of an early backbone block (``tap``): SNR is the level of the noise floor
  against the signal, which the first blocks still see and a classifier's last features are
  trained to ignore;
* the frame's log power spectrum and that of the frame less its mean (DcRemovedSpectra, as the
  signal detector reads them): a receiver's DC offset against a carrier near 0 Hz.

Measured before this was built (heads on the frozen ``mobilenet1d-skd``'s pooled features): 46 %
of noise frames caught; heads alone cannot do it, the backbone has to learn the detector's job
too. Outputs: ``forward`` gives the class logits (every classifier tool reads the model as a
classifier), ``forward_detect`` the logits and the detector's (SNR dB, noise logit) pair, the
columns of models/signal_detector.py.
"""

import torch
from torch import nn

from .interface import ModRecModel
from .layers import GlobalAvgMaxPool1d, RMSNormIQ
from .registry import create_model, register_model
from .signal_detector import DcRemovedSpectra, _conv


class DetectorHeads(nn.Module):
    """(pooled backbone features (N, F), pooled tap (N, T), raw I/Q (N, 2, L)) -> (N, 2) float32:
    the SNR estimate in dB and the logit of "this frame holds no signal" (signal_detector's
    SNR_COLUMN and NOISE_COLUMN). ``spectral_channels`` 0 leaves the spectral branch out."""

    def __init__(self, feature_dim, tap_dim, hidden, spectral_channels, frame_len, eps):
        super().__init__()
        width = feature_dim + tap_dim
        self.spectrum = None
        if spectral_channels:
            cs = spectral_channels
            self.norm = RMSNormIQ(eps)  # the spectra's level must not depend on the receiver's gain
            self.spectrum = nn.Sequential(DcRemovedSpectra(frame_len), *_conv(2, cs, 5, 1), *_conv(cs, cs, 5, 2),
                                          GlobalAvgMaxPool1d())
            width += 2 * cs
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2))

    def forward(self, features, tap, x):
        parts = [features, tap]
        if self.spectrum is not None:
            parts.append(self.spectrum(self.norm(x)))
        return self.mlp(torch.cat(parts, dim=1))


class DetectingClassifier(ModRecModel):
    """A registry classifier (``backbone``, over the known classes) with DetectorHeads reading
    its feature maps (module docstring). ``tap``: the index of the backbone block
    (``backbone_blocks()``) whose pooled output the heads also read."""

    def __init__(self, backbone, tap, hidden, spectral_channels, frame_len, eps):
        super().__init__()
        self.backbone = backbone
        blocks = backbone.backbone_blocks()
        if not 0 <= tap < len(blocks) - 1:
            raise ValueError(f"{backbone.model_name}_det: tap must be a block index in 0..{len(blocks) - 2} "
                             f"(an early block; the last one is what the classifier head reads), got {tap}")
        self.tap = tap
        self.tap_pool = GlobalAvgMaxPool1d()
        tap_dim = 2 * backbone.block_widths(frame_len)[tap]
        self.heads = DetectorHeads(backbone.feature_dim, tap_dim, hidden, spectral_channels, frame_len, eps)
        self.feature_dim = backbone.feature_dim

    def _run(self, x):
        """(pooled features, class logits, pooled tap)."""
        h, tap = x, None
        for k, block in enumerate(self.backbone.backbone_blocks()):
            h = block(h)
            if k == self.tap:
                tap = self.tap_pool(h)
        final = self.backbone.final_head()  # pooling..., then the classifier head proper (interface.py)
        features = final[:-1](h)
        return features, final[-1](features), tap

    def forward_joint(self, x):
        """(N, 2, L) raw I/Q -> (pooled features (N, feature_dim), class logits (N, n_known),
        detector outputs (N, 2): SNR dB, noise logit), in one pass over the backbone."""
        features, logits, tap = self._run(x)
        return features, logits, self.heads(features, tap, x)

    def forward_detect(self, x):
        """(N, 2, L) -> (class logits (N, n_known), detector outputs (N, 2))."""
        _, logits, det = self.forward_joint(x)
        return logits, det

    def forward_features(self, x):
        features, logits, _ = self._run(x)
        return features, logits

    def forward(self, x):
        """(N, 2, L) raw I/Q -> (N, n_known) class logits (the known classes, without noise)."""
        return self._run(x)[1]

    def backbone_blocks(self):
        return self.backbone.backbone_blocks()

    def final_head(self):
        return self.backbone.final_head()


def _detecting(backbone_name, n_classes, frame_len, tap, hidden, spectral_channels, eps, backbone_cfg):
    if n_classes < 2:
        raise ValueError(f"{backbone_name}_det: n_classes counts the known classes and noise, so at least 2; "
                         f"got {n_classes}")
    cfg = dict(backbone_cfg or {})
    for key in ("n_classes", "frame_len"):
        if key in cfg:
            raise ValueError(f"{backbone_name}_det: backbone_cfg.{key} is set by the model ({key} of the data)")
    backbone = create_model(backbone_name, n_classes=n_classes - 1, frame_len=frame_len, **cfg)
    return DetectingClassifier(backbone, int(tap), int(hidden), int(spectral_channels), int(frame_len), float(eps))


@register_model(kind="detecting")
def mobilenet1d_det(n_classes=12, frame_len=128, tap=2, hidden=64, spectral_channels=16, eps=1e-12,
                    backbone_cfg=None):
    """mobilenet1d with the signal detector's outputs as heads on its backbone (module docstring).
    ``n_classes`` counts the known classes and ``noise`` (the data's classes); the backbone
    classifies the known ones. ``backbone_cfg`` is mobilenet1d's own config; ``tap`` the block
    (0 = stem and first inverted residual) whose pooled output the heads read besides the final
    features; ``hidden`` the heads' hidden width; ``spectral_channels`` the width of the
    spectral branch (0: none). With the spectral branch frames must be ``frame_len`` samples."""
    return _detecting("mobilenet1d", n_classes, frame_len, tap, hidden, spectral_channels, eps, backbone_cfg)
