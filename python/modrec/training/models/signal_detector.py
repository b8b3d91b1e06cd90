"""The signal detector: is there a signal in this frame, and how strong is it?

A small CNN beside the classifier (contract version 2). Its two outputs per frame are the
estimated per-sample SNR in dB (the generator's definition, training/data/generator.py) and a
logit for "no signal" (receiver noise or silence, training/data/receiver_noise.py). Export joins
it to a classifier (``modrec export --detector``): the classifier's classes gain ``noise``, and
the file gains the ``snr_db`` output.

Why a second model and not heads on the classifier's features: measured on the shipped
``mobilenet1d-skd`` (frozen, RMS-normalised features; 19,500 generated frames), heads on its
pooled features called 46 % of noise frames noise and 3-7 % of known frames at SNR >= 0 dB noise,
and estimated SNR with a mean absolute error of 1.74 dB over -10..18 dB. A classifier's features
are trained to ignore what SNR is; this detector learns it directly. The one shipped before
(configs/signal_detector.yaml: the spectral branch, signals in white and coloured noise, trained
to 40 dB) called 92.4 % of noise frames noise and 0.23 % of known frames at 0-40 dB noise, with
an SNR error of 1.02 dB, joined to that student (models/OPEN_SET.md). Without the spectral
branch it caught 87.5 %; trained on signals in white noise only it caught 93.1 % but called
streams resampled up to the model's rate (noise in part of the band) noise. With the DC-removed
spectrum and noise frames kept at 0 Hz in training (configs/signal_detector-dc.yaml) it caught
93.9 % at the same calibration but called signals resampled up from 2 samples per symbol noise;
with their noise filtered closer to their band as well (configs/signal_detector-dc-narrow.yaml,
the shipped one) it catches 95.9 % at -0.29 pp of accuracy and calls 4-5 % of those frames noise.
"""

import math

import torch
from torch import nn

from .layers import GlobalAvgMaxPool1d, RMSNormIQ
from .registry import register_model

SNR_COLUMN, NOISE_COLUMN = 0, 1  # the two outputs, in order


def _conv(c_in, c_out, k, pool):
    layers = [nn.Conv1d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm1d(c_out), nn.ReLU(inplace=True)]
    return layers + ([nn.MaxPool1d(pool)] if pool > 1 else [])


class LogPowerSpectrum(nn.Module):
    """(N, 2, L) I/Q -> (N, 1, L) float32 log10 of the Hann-windowed periodogram, floored at
    ``floor``. The DFT is two fixed (L, L) matrix products (not trained, not saved in checkpoints),
    so the graph exports to any ONNX opset without a DFT operator."""

    def __init__(self, frame_len, floor=1e-6):
        super().__init__()
        n = torch.arange(frame_len, dtype=torch.float64)
        angle = 2 * math.pi * n[:, None] * n[None, :] / frame_len
        window = torch.hann_window(frame_len, periodic=False, dtype=torch.float64)[:, None]
        self.register_buffer("cos", (torch.cos(angle) * window).float(), persistent=False)
        self.register_buffer("sin", (torch.sin(angle) * window).float(), persistent=False)
        self.floor = floor

    def dft(self, x):
        """(N, 2, L) I/Q -> (re, im), each (N, L): the Hann-windowed DFT X[k]."""
        i, q = x[:, 0], x[:, 1]
        # X[k] = sum_n (i + jq)(cos - j sin)
        return i @ self.cos + q @ self.sin, q @ self.cos - i @ self.sin

    def log_power(self, re, im):
        """(re, im) of dft() -> (N, L) log10 of the periodogram, floored at ``floor``."""
        power = (re * re + im * im) / self.cos.shape[0]
        return torch.log10(torch.clamp(power, min=self.floor))

    def forward(self, x):
        return self.log_power(*self.dft(x)).unsqueeze(1)


class DcRemovedSpectra(nn.Module):
    """(N, 2, L) I/Q -> (N, 2, L): LogPowerSpectrum of the frame and of the frame minus its mean.

    A receiver's DC offset sits at exactly 0 Hz, so subtracting the frame's mean removes it and
    leaves flat noise; a carrier (an AM-DSB carrier in an audio pause, a spur) sits off 0 Hz by
    its carrier offset and survives: at 0.005 cycles/sample 81 % of its power stays in a
    128-sample frame (1 - sinc^2 of the 0.64 cycles it turns through). The 128-point spectrum
    alone cannot tell the two apart (both fill bin 0).

    The DFT is linear, so the frame less its mean m has the transform X[k] - m W[k], W the
    window's own transform: one DFT serves both spectra (the same values within float32
    rounding; a second DFT cost 6 % of a detecting student's time in ONNX Runtime, measured)."""

    def __init__(self, frame_len):
        super().__init__()
        self.spectrum = LogPowerSpectrum(frame_len)
        # W[k] = sum_n window[n] (cos - j sin): the DFT matrices' column sums (not saved either)
        self.register_buffer("w_re", self.spectrum.cos.double().sum(dim=0).float(), persistent=False)
        self.register_buffer("w_im", -self.spectrum.sin.double().sum(dim=0).float(), persistent=False)

    def forward(self, x):
        spectrum = self.spectrum
        re, im = spectrum.dft(x)
        m_i, m_q = x[:, 0].mean(dim=-1, keepdim=True), x[:, 1].mean(dim=-1, keepdim=True)
        # m W = (m_i + j m_q)(W_re + j W_im)
        re_dc = re - (m_i * self.w_re - m_q * self.w_im)
        im_dc = im - (m_i * self.w_im + m_q * self.w_re)
        return torch.stack([spectrum.log_power(re, im), spectrum.log_power(re_dc, im_dc)], dim=1)


class SignalDetector(nn.Module):
    """(N, 2, L) raw I/Q at any gain -> (N, 2) float32: column SNR_COLUMN the SNR estimate (dB),
    column NOISE_COLUMN the logit of "this frame holds no signal". With ``spectral_channels`` > 0
    a second branch reads the frame's log power spectrum (LogPowerSpectrum, frame_len samples),
    with ``dc_removed_spectrum`` also that of the frame less its mean (DcRemovedSpectra)."""

    def __init__(self, channels, hidden, eps, spectral_channels=0, frame_len=128, dc_removed_spectrum=False):
        super().__init__()
        self.norm = RMSNormIQ(eps)  # SNR does not depend on gain; silence stays all-zero
        c1, c2 = channels
        self.features = nn.Sequential(*_conv(2, c1, 7, 1), *_conv(c1, c1, 5, 2), *_conv(c1, c2, 5, 2),
                                      *_conv(c2, c2, 3, 1))
        self.pool = GlobalAvgMaxPool1d()
        width = 2 * c2
        self.spectrum = None
        if spectral_channels:
            cs = spectral_channels
            spectra = DcRemovedSpectra(frame_len) if dc_removed_spectrum else LogPowerSpectrum(frame_len)
            self.spectrum = nn.Sequential(spectra, *_conv(2 if dc_removed_spectrum else 1, cs, 5, 1),
                                          *_conv(cs, cs, 5, 2), GlobalAvgMaxPool1d())
            width += 2 * cs
        self.head = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2))

    def forward(self, x):
        x = self.norm(x)
        features = self.pool(self.features(x))
        if self.spectrum is not None:
            features = torch.cat([features, self.spectrum(x)], dim=1)
        return self.head(features)


@register_model(kind="detector")
def signal_detector(n_classes=2, frame_len=128, channels=(32, 64), hidden=64, eps=1e-12, spectral_channels=0,
                    dc_removed_spectrum=False):
    """The signal detector (module docstring). ``n_classes`` is taken as every model's is (from
    the data) and not used: the outputs are always SNR and the noise logit. Without the spectral
    branch (``spectral_channels`` 0) global pooling makes the network length-agnostic; with it,
    frames must be ``frame_len`` samples long. ``dc_removed_spectrum`` (needs the spectral branch)
    adds the spectrum of the frame less its mean (DcRemovedSpectra)."""
    del n_classes
    if len(channels) != 2:
        raise ValueError(f"signal_detector: channels needs 2 entries, got {channels}")
    if dc_removed_spectrum and not spectral_channels:
        raise ValueError("signal_detector: dc_removed_spectrum needs the spectral branch (spectral_channels > 0)")
    return SignalDetector(tuple(int(c) for c in channels), int(hidden), float(eps), int(spectral_channels),
                          int(frame_len), bool(dc_removed_spectrum))
