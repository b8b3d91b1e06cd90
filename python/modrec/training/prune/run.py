"""A pruning experiment: load the trained checkpoint named in ``prune.checkpoint``, prune it as
``prune.*`` says, and hand the smaller model to the trainer for fine-tuning (``train.*``, and
``distill.*`` to fine-tune against a teacher). ``modrec train`` calls this for configs with a
``prune`` section; resuming a pruned run needs none of it (its checkpoints load pruned)."""

import dataclasses

import numpy as np
import torch

from ..distill.teacher_cache import weights_sha256
from ..flops import count_flops, count_params
from ..checkpoint import load_checkpoint, model_from_checkpoint
from ..run_data import data_source
from ..train import train
from .surgery import prune


def calibration_frames(source, n, seed):
    """n training frames of a DataSource drawn evenly at random (all classes and SNRs), as a tensor."""
    tr = source.load("train")
    idx = np.sort(np.random.default_rng(seed).choice(len(tr.x), size=min(n, len(tr.x)), replace=False))
    return torch.from_numpy(np.ascontiguousarray(tr.x[idx], dtype=np.float32))


def prune_from_config(cfg, log=print, progress=False):
    """Returns (pruned model, report dict) for cfg.prune; the model is ready for train(model=...)."""
    pc = cfg.prune
    ckpt = load_checkpoint(pc.checkpoint)
    if ckpt["model_name"] != cfg.model.name:
        raise ValueError(f"{cfg.source}: field 'prune.checkpoint': {pc.checkpoint} holds a {ckpt['model_name']}, "
                         f"but model.name is {cfg.model.name}")
    if ckpt.get("pruning"):
        raise ValueError(f"{cfg.source}: field 'prune.checkpoint': {pc.checkpoint} is already pruned "
                         f"({ckpt['pruning']['criterion']}:{ckpt['pruning']['ratio']}); prune the original with a larger ratio")
    model = model_from_checkpoint(ckpt)
    frame_len = int(ckpt["model_cfg"]["frame_len"])
    source = data_source(cfg, log=log, progress=progress)
    calibration = calibration_frames(source, pc.calibration_frames, cfg.seed)
    before = {"params": count_params(model), "flops": count_flops(model, frame_len)}

    def fine_tune_between_steps(net, step):
        step_cfg = dataclasses.replace(cfg, output_dir=str(cfg.run_dir / f"step-{step + 1}"),
                                       train=dataclasses.replace(cfg.train, epochs=pc.step_epochs))
        log(f"prune: step {step + 1}/{pc.steps} done; fine-tuning {pc.step_epochs} epoch(s) before the next")
        train(step_cfg, model=net, pruning={"criterion": pc.criterion, "ratio": pc.ratio, "intermediate_step": step + 1},
              progress=progress, log=log)

    report = prune(model, pc.criterion, pc.ratio, pc.strategy, criterion_cfg=dict(pc.criterion_cfg),
                   calibration=calibration, iterative_steps=pc.steps, between_steps=fine_tune_between_steps,
                   frame_len=frame_len)
    after = {"params": count_params(model), "flops": count_flops(model, frame_len)}
    info = {**report.to_dict(), "criterion_cfg": dict(pc.criterion_cfg), "source_checkpoint": str(pc.checkpoint),
            # the weights' hash, not the file's: a checkpoint's bytes change with its history's timings
            "source_weights_sha256": weights_sha256(ckpt), "source_val_acc": ckpt.get("val_acc"),
            "before": before, "after": after}
    log(f"prune: {report.metadata} ({pc.strategy}, {pc.steps} step(s)): params {before['params']:,} -> "
        f"{after['params']:,}, FLOPs {before['flops'] / 1e6:.2f} -> {after['flops'] / 1e6:.2f} M "
        f"({1 - after['flops'] / before['flops']:.0%} cut)")
    return model, info
