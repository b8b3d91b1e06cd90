"""Training the signal detector (models/signal_detector.py): the objective and its metrics.

The loss of a batch is ``snr_weight`` x SmoothL1(estimated SNR, true SNR) over frames with a
signal, plus ``noise_weight`` x the binary cross-entropy of the noise logit against "this frame
is of the ``noise`` class", balanced: the mean over noise frames and the mean over signal frames
count alike, however few noise frames a batch holds (1 class in 12). A signal far below the noise is no evidence either way (at -20 dB
per-sample SNR a 128-sample frame is noise to any detector), so signal frames below
``ignore_below_db`` do not teach the noise output: what the detector says there is left to it.
Measured on 84,000 generated frames (8 epochs): with every signal frame teaching it, 63 % of
noise frames were called noise; see models/OPEN_SET.md for the shipped detector.
"""

import torch.nn.functional as F

from ..classes import NOISE_LABEL
from .models.signal_detector import NOISE_COLUMN, SNR_COLUMN
from .objective import Objective
from .predict import predict_logits

SNR_MAE_RANGE_DB = (-10.0, 18.0)  # where the 1.5 dB target on the SNR estimate holds


class DetectorObjective(Objective):
    """Trains a SignalDetector. ``cfg``: the config's ``detector`` section; ``classes``: the
    dataset's (must hold ``noise``); ``snr_train`` / ``snr_val``: float32 (N,) per-frame SNR
    labels (dB) of the train and validation splits, on the model's device. ValueError when the
    data has no noise class."""

    def __init__(self, model, cfg, classes, snr_train, snr_val, augment, eval_batch_size=2048):
        super().__init__(model, augment, eval_batch_size=eval_batch_size)
        if NOISE_LABEL not in classes:
            raise ValueError(f"a signal detector learns from frames of a '{NOISE_LABEL}' class, but the data's classes are "
                             f"{list(classes)}; add it to data.generator.classes")
        self.cfg, self.noise = cfg, list(classes).index(NOISE_LABEL)
        self.snr_train, self.snr_val = snr_train.float(), snr_val.float().cpu()  # validation runs on the CPU side

    def _loss(self, out, y, snr):
        """(mean loss, noise decisions right, frames that teach the noise output)."""
        signal = y != self.noise
        teach = ~signal | (snr >= self.cfg.ignore_below_db)
        loss = out.new_zeros(())
        if signal.any():
            loss = loss + self.cfg.snr_weight * F.smooth_l1_loss(out[signal, SNR_COLUMN], snr[signal])
        bce = F.binary_cross_entropy_with_logits(out[:, NOISE_COLUMN], (~signal).float(), reduction="none")
        noise_part = (bce * ~signal).sum() / (~signal).sum().clamp(min=1)
        signal_part = (bce * (signal & teach)).sum() / (signal & teach).sum().clamp(min=1)
        loss = loss + self.cfg.noise_weight * (noise_part + signal_part) / 2
        right = ((out[:, NOISE_COLUMN] > 0) == ~signal) & teach
        return loss, right.sum(), teach.sum()

    def batch_loss(self, net, xb, yb, idx):
        loss, right, _ = self._loss(net(xb), yb, self.snr_train[idx])
        return loss, right

    def _outputs(self, x):
        return predict_logits(self.model, x, self.eval_batch_size)  # (N, 2) on the CPU, eval mode

    def validate(self, x_val, y_val):
        """``val_loss`` and ``val_acc``: the share of noise decisions right, over the frames that
        teach the noise output."""
        loss, right, taught = self._loss(self._outputs(x_val), y_val.cpu(), self.snr_val)
        return {"val_loss": float(loss), "val_acc": float(right) / max(int(taught), 1)}

    def epoch_row(self, x_val, y_val):
        """The detector's figures on the validation split: SNR bias and mean absolute error (dB)
        over SNR_MAE_RANGE_DB, noise frames called noise, signal frames at >= 0 dB called noise;
        ``val_score`` (what picks best.pt) is minus the validation loss."""
        out, y_val = self._outputs(x_val), y_val.cpu()
        signal = y_val != self.noise
        lo, hi = SNR_MAE_RANGE_DB
        band = signal & (self.snr_val >= lo) & (self.snr_val <= hi)
        err = out[band, SNR_COLUMN] - self.snr_val[band]
        said_noise = out[:, NOISE_COLUMN] > 0
        strong = signal & (self.snr_val >= 0)
        loss, _, _ = self._loss(out, y_val, self.snr_val)
        return {"val_snr_mae_db": float(err.abs().mean()) if len(err) else float("nan"),
                "val_snr_bias_db": float(err.mean()) if len(err) else float("nan"),
                "val_noise_recall": float(said_noise[~signal].float().mean()) if (~signal).any() else float("nan"),
                "val_false_noise": float(said_noise[strong].float().mean()) if strong.any() else float("nan"),
                "val_score": -float(loss)}
