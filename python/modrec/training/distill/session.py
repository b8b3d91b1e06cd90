"""The trainer's side of distillation: builds the teacher and the distiller from the config,
computes each batch's loss, and carries their state through checkpoints.

Offline methods (kd, skd, nkd) load a frozen teacher from a training checkpoint (eval mode, no
gradients). Its outputs come either

* from the teacher cache (``distill.cache_teacher: true``), computed once. With ``cache_views: K``
  (K >= 1) over K augmented copies of the train split, made once with the run's augmentation
  from a fixed seed; epoch e trains on copy e mod K, so the student sees augmented frames and
  the teacher's answer for exactly those frames (a finite pool of augmentations instead of new
  ones each epoch). With ``cache_views: 0`` over the UN-augmented split, and augmentation is
  turned OFF for the run (logged, and recorded in the checkpoint's training info) - cached
  outputs of a clean frame are not the teacher's answer for a phase-rotated, time-shifted one; or
* online (default): the teacher runs on every augmented batch, so augmentation stays on.

Online methods (bdkd) build the teacher from the model registry and train it jointly: its
parameters join the student's optimiser (same optimiser, lr and schedule) and its weights are
saved in every checkpoint, so --resume continues both networks exactly.
"""

import dataclasses
import hashlib
from pathlib import Path

import torch
from torch import nn

from ..augment import augment, receiver_frames
from ..checkpoint import load_checkpoint, model_from_checkpoint
from ..distributed import MethodAsForward
from ..models import create_model
from ..models.ensemble import Ensemble
from ..models.interface import ModRecModel
from ..objective import Objective, distill_method
from ..predict import predict_logits
from .registry import create_distiller, get_distiller
from .teacher_cache import teacher_outputs, weights_sha256


def _augment_off(aug):
    return dataclasses.replace(aug, phase_rotation=False, time_shift=False, freq_offset=0.0, conjugate=False)


def _augment_on(aug):
    return aug.phase_rotation or aug.time_shift or aug.freq_offset > 0 or aug.conjugate


def _check_features(model, role, method):
    # every architecture of the registry has features; an early-exit wrapper does not
    if not isinstance(model, ModRecModel):
        raise ValueError(f"distillation method '{method}' matches features, but the {role} "
                         f"({getattr(model, 'model_name', type(model).__name__)}) has no forward_features/feature_dim "
                         f"(it does not implement models/interface.py)")


def _teacher_batch(eval_batch_size, device):
    # On a CPU large batches overflow the caches: the Inception-ResNet teacher ran at 544 frames/s
    # in batches of 128 and 264 in batches of 2048 (2 threads, measured here).
    return min(eval_batch_size, 256) if torch.device(device).type == "cpu" else eval_batch_size


VIEW_CHUNK = 16384  # frames augmented at once: bounds the temporaries


def augmented_view(x, aug, seed, view, hold_frequency=None):
    """Copy ``view`` of the split under augmentation ``aug``: the same frames for the same
    (seed, view) on every run, rank and resume, so its cached teacher outputs stay valid.
    ``hold_frequency``: None or (N,) bool, as augment's."""
    gen = torch.Generator(device=x.device)
    gen.manual_seed(1_000_003 * (seed + 1) + view)
    return torch.cat([augment(x[s : s + VIEW_CHUNK], aug, gen,
                              None if hold_frequency is None else hold_frequency[s : s + VIEW_CHUNK])
                      for s in range(0, len(x), VIEW_CHUNK)])


class DistillSession(Objective):
    """The training objective of a student distilled from a teacher (``distill:`` in the config).

    ``cfg``: the ExperimentConfig; ``student``: the model being trained; ``x_tr`` (N, 2, L)
    float32 and ``y_tr`` (N,) int64: the train split on ``device``; ``meta``: the dataset's meta
    (its ``classes`` must equal the teacher checkpoint's). Raises FileNotFoundError for a missing
    teacher checkpoint and ValueError for a teacher of other classes or without features where
    the method needs them.
    """

    def __init__(self, cfg, student, x_tr, y_tr, meta, device, log=print, progress=False):
        super().__init__(student, cfg.augment, cfg.train.label_smoothing, cfg.train.eval_batch_size)
        dc, source = cfg.distill, cfg.source
        self.method = dc.method
        cls = get_distiller(self.method)
        self.online, self.needs_features = cls.online, cls.needs_features
        self.student = student
        self.cached_logits = self.cached_features = None
        classes = list(meta["classes"])

        if self.online:
            tcfg = dict(dc.teacher.get("cfg") or {})
            for key in ("n_classes", "frame_len"):
                tcfg[key] = student.model_cfg[key]
            self.teacher = create_model(dc.teacher["model"], **tcfg).to(device)
            self.teacher_desc = {"model": dc.teacher["model"], "model_cfg": self.teacher.model_cfg, "online": True}
        else:
            # one checkpoint, or several: an ensemble teacher (models/ensemble.py)
            paths = [dc.teacher["checkpoint"]] if "checkpoint" in dc.teacher else list(dc.teacher["checkpoints"])
            field = "distill.teacher.checkpoint" if "checkpoint" in dc.teacher else "distill.teacher.checkpoints"
            members, descs = [], []
            for path in map(lambda p: Path(p).expanduser(), paths):
                if not path.is_file():
                    raise FileNotFoundError(f"{source}: field '{field}': {path} not found (train the teacher first)")
                ckpt = load_checkpoint(path)
                if list(ckpt.get("classes", [])) != classes:
                    raise ValueError(f"{source}: field '{field}': {path} was trained on classes "
                                     f"{ckpt.get('classes')}, the dataset has {classes}")
                members.append(model_from_checkpoint(ckpt, device).requires_grad_(False).eval())
                descs.append({"checkpoint": str(path), "weights_sha256": weights_sha256(ckpt), "model": ckpt["model_name"],
                              "model_cfg": ckpt["model_cfg"], "val_acc": ckpt.get("val_acc"), "online": False})
            if len(members) == 1:
                self.teacher, self.teacher_desc = members[0], descs[0]
            else:
                self.teacher = Ensemble(members).to(device).requires_grad_(False).eval()
                joined = hashlib.sha256("".join(d["weights_sha256"] for d in descs).encode()).hexdigest()
                self.teacher_desc = {"checkpoint": ", ".join(d["checkpoint"] for d in descs), "weights_sha256": joined,
                                     "model": self.teacher.description, "model_cfg": [d["model_cfg"] for d in descs],
                                     "members": descs, "online": False}

        dims = {}
        if self.needs_features:
            _check_features(student, "student", self.method)
            _check_features(self.teacher, "teacher", self.method)
            dims = {"student_dim": student.feature_dim, "teacher_dim": self.teacher.feature_dim}
        self.distiller = create_distiller(self.method, **dims, **dict(dc.cfg)).to(device)

        self.augmentation_disabled = False
        self.views = []  # (frames, teacher logits, teacher features) per cached augmented copy
        if dc.cache_teacher:
            def cached(x, split):
                logits, feats, _ = teacher_outputs(
                    self.teacher, x, teacher_sha256=self.teacher_desc["weights_sha256"], meta=meta, y=y_tr, split=split,
                    features=self.needs_features, cache_dir=dc.cache_dir, batch_size=_teacher_batch(self.eval_batch_size, device),
                    device=device, progress=progress, log=log)
                return logits.to(device), (feats.to(device) if feats is not None else None)

            if dc.cache_views and _augment_on(cfg.augment):
                for view in range(dc.cache_views):
                    frames = augmented_view(x_tr, cfg.augment, seed=cfg.seed, view=view,
                                            hold_frequency=receiver_frames(y_tr, classes)
                                            if cfg.augment.hold_noise_frequency else None)
                    self.views.append((frames, *cached(frames, f"train/view{view}")))
                self.augment = _augment_off(cfg.augment)  # the views carry it
                log(f"distill: {dc.cache_views} augmented copies of the train split, teacher outputs cached for each; "
                    f"epoch e trains on copy e mod {dc.cache_views}")
            else:
                self.cached_logits, self.cached_features = cached(x_tr, "train")
            if not self.views and _augment_on(cfg.augment):
                self.augment = _augment_off(cfg.augment)
                self.augmentation_disabled = True
                log("distill: cache_teacher is on, so augmentation is OFF for this run (cached teacher outputs "
                    "belong to un-augmented frames); set distill.cache_teacher: false to keep augmentation")

        modules = {"student": student, "distiller": self.distiller}
        if self.online:
            modules["teacher"] = self.teacher
        # what the optimiser sees; a frozen teacher is left out
        self._trainable = nn.ModuleDict(modules)
        self._sums, self._n = {}, 0
        log(f"distill: {self.method} {self.distiller.distill_cfg}, teacher "
            f"{self.teacher_desc.get('checkpoint') or self.teacher_desc['model']}"
            f"{' (trained jointly)' if self.online else ''}")

    @property
    def trainable(self):
        return self._trainable

    @property
    def step_module(self):
        # a loss on features calls forward_features, and that is the forward DDP must see
        return MethodAsForward(self.student, "forward_features") if self.needs_features else self.student

    def start_epoch(self, epoch, x_train):
        """Train modes; returns the train split as epoch ``epoch`` sees it: one of the cached
        augmented copies, or ``x_train``."""
        self.student.train()
        self.distiller.train()
        if self.online:
            self.teacher.train()
        if not self.views:
            return x_train
        frames, self.cached_logits, self.cached_features = self.views[epoch % len(self.views)]
        return frames

    def unsynced_parameters(self):
        """Parameters trained beside the student: the distiller's and an online teacher's."""
        extra = list(self.distiller.parameters())
        if self.online:
            extra += list(self.teacher.parameters())
        return extra

    def training_info(self):
        return {"distill": self.info}

    @property
    def info(self):
        """JSON-able description for the checkpoint's training info and the ONNX metadata."""
        return {"method": self.method, "cfg": dict(self.distiller.distill_cfg), "teacher": self.teacher_desc,
                "cache_teacher": self.cached_logits is not None or bool(self.views), "cache_views": len(self.views),
                "augmentation_disabled": self.augmentation_disabled}

    def batch_loss(self, student, xb, yb, idx):
        """The loss for one batch and the student's right answers (``idx``: the batch's rows of the
        train split).

        For methods that need features, ``student`` (``step_module``, possibly DDP-wrapped) returns
        (features, logits).
        """
        fs = None
        if self.needs_features:
            fs, logits = student(xb)
        else:
            logits = student(xb)
        t_logits, ft = self.teacher_outputs(xb, idx)
        loss = self.distill_loss(logits, yb, t_logits, fs, ft)
        return loss, (logits.argmax(1) == yb).sum()

    def teacher_outputs(self, xb, idx):
        """(teacher logits, teacher features or None) for the batch ``xb`` (rows ``idx`` of the
        train split): from the cache, or by running the teacher."""
        if self.cached_logits is not None:
            return self.cached_logits[idx], (self.cached_features[idx] if self.needs_features else None)
        with torch.set_grad_enabled(self.online):
            if self.needs_features:
                ft, t_logits = self.teacher.forward_features(xb)
                return t_logits, ft
            return self.teacher(xb), None

    def distill_loss(self, logits, yb, t_logits, fs=None, ft=None):
        """The distiller's loss of a batch; its parts are summed for the epoch's history row."""
        loss, parts = self.distiller.loss(logits, yb, t_logits, fs, ft)
        n = len(yb)
        for k, v in parts.items():
            self._sums[k] = self._sums.get(k, 0.0) + v.detach() * n
        self._n += n
        return loss

    def clip_grad_(self, max_norm):
        # separately: a large teacher gradient must not shrink the student's step
        student_params = list(self.student.parameters()) + list(self.distiller.parameters())
        torch.nn.utils.clip_grad_norm_(student_params, max_norm)
        if self.online:
            torch.nn.utils.clip_grad_norm_(self.teacher.parameters(), max_norm)

    def epoch_row(self, x_va, y_va):
        """Per-epoch means of the loss parts (and the jointly trained teacher's val accuracy)."""
        row = {f"distill_{k}": float(v) / max(self._n, 1) for k, v in self._sums.items()}
        self._sums, self._n = {}, 0
        if self.online:
            t_logits = predict_logits(self.teacher, x_va, self.eval_batch_size)
            row["teacher_val_acc"] = (t_logits.argmax(1) == y_va.cpu()).float().mean().item()
        return row

    def checkpoint_entries(self):
        state = {"method": self.method, "cfg": dict(self.distiller.distill_cfg), "distiller": self.distiller.state_dict(),
                 "teacher": dict(self.teacher_desc), "info": self.info}
        if self.online:
            state["teacher_state_dict"] = self.teacher.state_dict()
        return {"distill": state}

    def resume_from(self, ckpt, path):
        was = distill_method(ckpt)
        if was != self.method:
            raise ValueError(f"{path}: run used distillation '{was}', config asks for '{self.method}'")
        state = ckpt["distill"]
        if state["cfg"] != dict(self.distiller.distill_cfg):
            raise ValueError(f"{path}: was distilled with {state['method']} {state['cfg']}, "
                             f"config asks for {self.method} {self.distiller.distill_cfg}")
        if self.online:
            if state["teacher"]["model"] != self.teacher_desc["model"] or \
                    state["teacher"]["model_cfg"] != self.teacher_desc["model_cfg"]:
                raise ValueError(f"{path}: online teacher was {state['teacher']['model']} "
                                 f"{state['teacher']['model_cfg']}, config asks for {self.teacher_desc['model']} "
                                 f"{self.teacher_desc['model_cfg']}")
            self.teacher.load_state_dict(state["teacher_state_dict"])
        elif state["teacher"].get("weights_sha256") != self.teacher_desc["weights_sha256"]:
            was = state["teacher"].get("weights_sha256") or "(a file hash, from before weights were compared)"
            raise ValueError(f"{path}: was distilled from teacher {state['teacher'].get('checkpoint')} "
                             f"(weights sha256 {was[:12]}), but the weights in {self.teacher_desc['checkpoint']} "
                             f"differ; resuming would mix teachers")
        self.distiller.load_state_dict(state["distiller"])
