"""Training the signal detector (models/signal_detector.py) and a classifier with detector heads
(models/detecting.py): their objectives and the detector's loss and metrics.

The loss of a batch is ``snr_weight`` x SmoothL1(estimated SNR, true SNR) over frames with a
signal, plus ``noise_weight`` x the binary cross-entropy of the noise logit against "this frame
is of the ``noise`` class", balanced: the mean over noise frames and the mean over signal frames
count alike, however few noise frames a batch holds (1 class in 12). A signal far below the noise is no evidence either way (at -20 dB
per-sample SNR a 128-sample frame is noise to any detector), so signal frames below
``ignore_below_db`` do not teach the noise output: what the detector says there is left to it.
Measured on 84,000 generated frames (8 epochs): with every signal frame teaching it, 63 % of
noise frames were called noise; see models/OPEN_SET.md for the shipped detector.

A classifier with detector heads (JointDetection) adds its class loss on the frames of known
classes to the same detector loss, so one backbone learns both jobs.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..classes import NOISE_LABEL
from .distributed import MethodAsForward
from .models.signal_detector import NOISE_COLUMN, SNR_COLUMN
from .objective import Objective
from .predict import predict_detect, predict_logits

SNR_MAE_RANGE_DB = (-10.0, 18.0)  # where the 1.5 dB target on the SNR estimate holds


def detector_loss(cfg, out, signal, snr):
    """The detector's loss of a batch (module docstring): ``cfg`` the config's ``detector``
    section, ``out`` (N, 2) outputs (SNR dB, noise logit), ``signal`` (N,) bool (the frame holds a
    known class), ``snr`` (N,) float32 labels (dB). Returns (mean loss, noise decisions right,
    frames that teach the noise output)."""
    teach = ~signal | (snr >= cfg.ignore_below_db)
    loss = out.new_zeros(())
    if signal.any():
        loss = loss + cfg.snr_weight * F.smooth_l1_loss(out[signal, SNR_COLUMN], snr[signal])
    bce = F.binary_cross_entropy_with_logits(out[:, NOISE_COLUMN], (~signal).float(), reduction="none")
    noise_part = (bce * ~signal).sum() / (~signal).sum().clamp(min=1)
    signal_part = (bce * (signal & teach)).sum() / (signal & teach).sum().clamp(min=1)
    loss = loss + cfg.noise_weight * (noise_part + signal_part) / 2
    right = ((out[:, NOISE_COLUMN] > 0) == ~signal) & teach
    return loss, right.sum(), teach.sum()


def detector_figures(out, signal, snr):
    """The detector's figures over frames with outputs ``out`` (N, 2), ``signal`` (N,) bool and
    ``snr`` (N,) labels (dB): SNR bias and mean absolute error (dB) over SNR_MAE_RANGE_DB, noise
    frames called noise, signal frames at >= 0 dB called noise (NaN where there are none)."""
    lo, hi = SNR_MAE_RANGE_DB
    band = signal & (snr >= lo) & (snr <= hi)
    err = out[band, SNR_COLUMN] - snr[band]
    said_noise = out[:, NOISE_COLUMN] > 0
    strong = signal & (snr >= 0)
    return {"val_snr_mae_db": float(err.abs().mean()) if len(err) else float("nan"),
            "val_snr_bias_db": float(err.mean()) if len(err) else float("nan"),
            "val_noise_recall": float(said_noise[~signal].float().mean()) if (~signal).any() else float("nan"),
            "val_false_noise": float(said_noise[strong].float().mean()) if strong.any() else float("nan")}


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
        return detector_loss(self.cfg, out, y != self.noise, snr)

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
        """The detector's figures on the validation split (detector_figures); ``val_score`` (what
        picks best.pt) is minus the validation loss."""
        out, y_val = self._outputs(x_val), y_val.cpu()
        loss, _, _ = self._loss(out, y_val, self.snr_val)
        return {**detector_figures(out, y_val != self.noise, self.snr_val), "val_score": -float(loss)}


class JointDetection(Objective):
    """Trains a classifier with detector heads (models/detecting.py): on every batch the class
    loss over the frames of known classes, times ``detector.class_weight``, plus detector_loss
    over every frame.

    The class loss is cross-entropy, or with ``distill.method`` set (an offline method: kd, nkd,
    skd) the distiller's loss against the teacher, which distill/session.py loads and runs (the
    teacher's classes are the data's known ones). The data's classes are the model's known
    classes, in order, then ``noise``. ``detector.init_from`` starts the backbone from a trained
    classifier's checkpoint; its batch norms then keep the statistics they have (eval mode while
    training): a checkpoint rebuilt from a shipped file (modrec from-onnx) has them folded into
    its convolutions, and re-estimating them from batches would change what the backbone computes.
    ``detector.freeze_backbone`` keeps the whole backbone as init_from left it (its weights take
    no gradient, its layers stay in eval mode, no class loss is computed): only the heads learn,
    and the class outputs are that classifier's.

    ``train_acc`` counts known frames classified right and noise frames the heads call noise;
    ``val_acc`` is the closed-set accuracy over the known frames of the validation split.
    ``cfg``: the ExperimentConfig; ``snr_train`` / ``snr_val``: float32 (N,) SNR labels (dB).
    ValueError when noise is not the data's last class, the method trains its teacher online, or
    freeze_backbone is set without init_from or with a distillation method (nothing to teach).
    """

    def __init__(self, cfg, model, x_tr, y_tr, meta, device, snr_train, snr_val, resume=False, log=print,
                 progress=False):
        from .checkpoint import load_backbone
        from .distill.registry import get_distiller
        from .distill.session import DistillSession
        from .distill.teacher_cache import weights_sha256

        super().__init__(model, cfg.augment, cfg.train.label_smoothing, cfg.train.eval_batch_size)
        classes = list(meta["classes"])
        if len(classes) < 2 or classes[-1] != NOISE_LABEL or classes.count(NOISE_LABEL) != 1:
            raise ValueError(f"{cfg.source}: {cfg.model.name} learns its known classes, then '{NOISE_LABEL}' last; the "
                             f"data's classes are {classes}: list them so in data.generator.classes")
        if cfg.detector.freeze_backbone and not cfg.detector.init_from:
            raise ValueError(f"{cfg.source}: detector.freeze_backbone keeps the backbone detector.init_from "
                             f"gives it; set detector.init_from to a trained classifier's checkpoint")
        if cfg.detector.freeze_backbone and cfg.distill.method != "none":
            raise ValueError(f"{cfg.source}: detector.freeze_backbone trains the heads alone, which a teacher's "
                             f"classes cannot teach; set distill.method to none")
        self.cfg, self.noise, self.known = cfg.detector, len(classes) - 1, classes[:-1]
        self.snr_train, self.snr_val = snr_train.float(), snr_val.float().cpu()  # validation runs on the CPU side
        self.init_from = None
        if cfg.detector.init_from and not resume:
            ckpt = load_backbone(model.backbone, cfg.detector.init_from, field="detector.init_from", source=cfg.source,
                                 classes=self.known)
            log(f"detecting: backbone initialised from {cfg.detector.init_from} (val acc "
                f"{ckpt.get('val_acc', float('nan')):.4f}); its batch norms keep their statistics")
            self.init_from = {"checkpoint": str(cfg.detector.init_from), "weights_sha256": weights_sha256(ckpt),
                              "model": ckpt["model_name"], "model_cfg": ckpt["model_cfg"], "val_acc": ckpt.get("val_acc")}
        if cfg.detector.freeze_backbone:  # on resume too: the optimiser then skips these weights
            for p in model.backbone.parameters():
                p.requires_grad_(False)
        self.session = None
        if cfg.distill.method != "none":
            if get_distiller(cfg.distill.method).online:
                raise ValueError(f"{cfg.source}: {cfg.model.name} is distilled from a trained teacher (kd, nkd, skd); "
                                 f"'{cfg.distill.method}' trains its teacher online, on classes without noise")
            self.session = DistillSession(cfg, model, x_tr, y_tr, {**meta, "classes": self.known}, device, log=log,
                                          progress=progress)
            self.augment = self.session.augment  # off when cached augmented copies carry it
        self._val = None

    @property
    def trainable(self):
        return self.session.trainable if self.session is not None else self.model

    @property
    def step_module(self):
        return MethodAsForward(self.model, "forward_joint")

    def start_epoch(self, epoch, x_train):
        frames = self.session.start_epoch(epoch, x_train) if self.session is not None else x_train
        self.model.train()
        if self.cfg.freeze_backbone:
            self.model.backbone.eval()
        elif self.cfg.init_from:
            for m in self.model.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return frames

    def unsynced_parameters(self):
        return self.session.unsynced_parameters() if self.session is not None else []

    def clip_grad_(self, max_norm):
        torch.nn.utils.clip_grad_norm_(self.trainable.parameters(), max_norm)

    def _class_loss(self, features, logits, yb, known, xb, idx):
        """Cross-entropy or the distiller's loss, over the known frames of the batch."""
        if not known.any():
            return logits.new_zeros(())
        if self.session is None:
            return F.cross_entropy(logits[known], yb[known], label_smoothing=self.label_smoothing)
        t_logits, ft = self.session.teacher_outputs(xb, idx)
        return self.session.distill_loss(logits[known], yb[known], t_logits[known],
                                         features[known] if ft is not None else None,
                                         ft[known] if ft is not None else None)

    def batch_loss(self, net, xb, yb, idx):
        features, logits, det = net(xb)
        known = yb != self.noise
        loss, _, _ = detector_loss(self.cfg, det, known, self.snr_train[idx])
        if not self.cfg.freeze_backbone:
            loss = loss + self.cfg.class_weight * self._class_loss(features, logits, yb, known, xb, idx)
        right = ((logits.argmax(1) == yb) & known).sum() + ((det[:, NOISE_COLUMN] > 0) & ~known).sum()
        return loss, right

    def validate(self, x_val, y_val):
        """``val_loss`` (class cross-entropy over the known frames, weighted, plus the detector
        loss) and ``val_acc`` (closed-set accuracy over the known frames)."""
        logits, det = predict_detect(self.model, x_val, self.eval_batch_size)
        y_val = y_val.cpu()
        known = y_val != self.noise
        det_loss, _, _ = detector_loss(self.cfg, det, known, self.snr_val)
        ce = F.cross_entropy(logits[known], y_val[known]) if known.any() else det_loss.new_zeros(())
        val_loss = float(det_loss + self.cfg.class_weight * ce)
        self._val = (det, known, val_loss)
        return {"val_loss": val_loss,
                "val_acc": float((logits.argmax(1) == y_val)[known].float().mean()) if known.any() else float("nan")}

    def epoch_row(self, x_val, y_val):
        """The detector's figures on the validation split (detector_figures), the distiller's
        loss parts, and ``val_score`` (what picks best.pt): minus the validation loss."""
        if self._val is None:
            self.validate(x_val, y_val)
        det, known, val_loss = self._val
        row = self.session.epoch_row(x_val, y_val) if self.session is not None else {}
        return {**row, **detector_figures(det, known, self.snr_val), "val_score": -val_loss}

    def training_info(self):
        info = {"detecting": {"init_from": self.init_from, "freeze_backbone": self.cfg.freeze_backbone,
                              "class_weight": self.cfg.class_weight,
                              "snr_weight": self.cfg.snr_weight, "noise_weight": self.cfg.noise_weight}}
        return {**info, **(self.session.training_info() if self.session is not None else {})}

    def checkpoint_entries(self):
        entries = {"detecting": {"init_from": self.init_from}}
        return {**entries, **(self.session.checkpoint_entries() if self.session is not None else {})}

    def resume_from(self, ckpt, path):
        self.init_from = (ckpt.get("detecting") or {}).get("init_from")  # where the run's backbone started
        if self.session is not None:
            self.session.resume_from(ckpt, path)
        else:
            super().resume_from(ckpt, path)
