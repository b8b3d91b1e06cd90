"""Training loop: seeded, resumable, whole dataset in memory, batches by index permutation.

On a 2-core laptop a DataLoader's worker processes cost more than they save for 200 MB of
frames, and on a GPU the whole set fits in device memory, so batches are plain tensor slices.
"""

import csv
import json
import os
import sys
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ..runtime.onnx_model import available_cores
from . import distributed
from .augment import augment, receiver_frames
from .checkpoint import load_checkpoint, save_checkpoint
from .detection import DetectorObjective, JointDetection
from .device import resolve_device
from .distill.session import DistillSession
from .data.fresh import FreshFrames
from .exits import ExitTraining
from .flops import count_flops, count_params
from .models import create_model, default_config
from .models.detecting import DetectingClassifier
from .models.early_exit import EarlyExitNet
from .models.signal_detector import SignalDetector
from .objective import Objective
from .optim import build_optimizer, build_scheduler
from .prune.sparsity import BnSparsity
from .prune.surgery import fit_to_state_dict
from .rng import rng_state, seed_everything, set_rng_state
from .run_data import data_source


def _log(*args):
    # flushed so that logs of batch jobs (stdout to a file) show progress as it happens
    print(*args, flush=True)


def _batches(n, batch_size):
    # a trailing batch of one frame would break BatchNorm in train mode, so it is dropped
    starts = list(range(0, n, batch_size))
    if starts and n - starts[-1] == 1 and len(starts) > 1:
        starts.pop()
    return [(s, min(s + batch_size, n)) for s in starts]


def make_objective(cfg, model, x_tr, y_tr, meta, device, resume=False, log=_log, progress=False, snr=None):
    """The objective (objective.py) that trains ``model`` under ``cfg``: classes and detection
    together for a classifier with detector heads, detection for the signal detector (``snr``:
    the train and validation splits' per-frame SNR tensors), a distillation session when
    ``distill.method`` is set, exit training for an early-exit model, else cross-entropy."""
    if isinstance(model, DetectingClassifier):
        return JointDetection(cfg, model, x_tr, y_tr, meta, device, *snr, resume=resume, log=log, progress=progress)
    if isinstance(model, SignalDetector):
        if cfg.distill.method != "none":
            raise ValueError(f"{cfg.source}: the signal detector is not distilled; set distill.method: none")
        return DetectorObjective(model, cfg.detector, meta["classes"], *snr, cfg.augment, cfg.train.eval_batch_size)
    early_exit = isinstance(model, EarlyExitNet)
    if cfg.distill.method != "none":
        if early_exit:
            raise ValueError(f"{cfg.source}: an early-exit model cannot be distilled from a teacher yet; "
                             f"use exits.self_distill (the final exit teaches the early ones)")
        return DistillSession(cfg, model, x_tr, y_tr, meta, device, log=log, progress=progress)
    if early_exit:
        return ExitTraining.from_config(cfg, model, resume=resume, log=log)
    return Objective(model, cfg.augment, cfg.train.label_smoothing, cfg.train.eval_batch_size)


def _write_history(run_dir, history):
    (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    if history:
        with open(run_dir / "history.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(history[0]))
            w.writeheader()
            w.writerows(history)


def train(cfg, resume=False, progress=True, command=None, stop_after_epochs=None, log=_log, model=None, pruning=None):
    """Train ``cfg`` (an ExperimentConfig); returns the run directory.

    ``stop_after_epochs`` ends this invocation early (as if interrupted) without changing the
    schedule, so a long run can be split into time-limited jobs and continued with ``resume``.
    Under torchrun the same call trains data-parallel (see distributed.py).
    ``model`` starts from a given network (trained in place) instead of a fresh one built from
    cfg.model, e.g. a pruned one to fine-tune; ``pruning`` (a PruneReport dict) is then recorded
    in its checkpoints, which makes them load at the pruned shapes.
    """
    ctx = distributed.from_environment()
    device = distributed.setup(ctx, resolve_device(cfg.train.device))
    if device.type == "cuda":
        # TF32 tensor cores for the matmuls (attention, heads), as cuDNN already does for convolutions;
        # every batch has the same shape, so cuDNN's autotuned algorithm choice pays off
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    try:
        run = _train(cfg, ctx, device, resume, progress, command, stop_after_epochs, log, model, pruning)
    except BaseException:
        distributed.teardown(ctx, clean=False)  # no final barrier: the other ranks may never get there
        raise
    distributed.teardown(ctx)  # every rank finished: meet in a last barrier, then free the group
    return run


def _train(cfg, ctx, device, resume, progress, command, stop_after_epochs, log, init_model, pruning):
    if not ctx.is_main:  # one voice and one writer per job: rank 0
        log, progress = (lambda *a: None), False
    # ranks share the cores this process may run on (its affinity mask: taskset); more threads
    # than cores per rank only contend
    torch.set_num_threads(cfg.train.threads or max(1, available_cores() // ctx.world_size))
    seed_everything(cfg.seed)
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if resume and not last_path.is_file():
        raise FileNotFoundError(f"{last_path}: nothing to resume from")
    if not resume and last_path.is_file():
        log(f"note: {run_dir} already holds a run; starting over (use --resume to continue it)")

    source, meta, (x_tr, y_tr, snr_tr), (x_va, y_va, snr_va) = _load_splits(cfg, ctx, device, log, progress)
    classes = list(meta["classes"])
    frame_len = int(x_tr.shape[-1])
    model_cfg = _model_cfg(cfg, classes, frame_len)
    # CPU: RNG states must stay CPU byte tensors; the optimiser moves its own state to the params
    resumed = load_checkpoint(last_path, map_location="cpu") if resume else None
    model = _build_model(cfg, model_cfg, init_model, resumed, device)
    if resumed is not None:
        pruning = resumed.get("pruning")
    params, flops = count_params(model), count_flops(model, frame_len)
    log(f"{cfg.model.name}: {params:,} params, {flops / 1e6:.2f} MFLOPs/frame; "
        f"{len(x_tr):,} train / {len(x_va):,} val frames, {len(classes)} classes, device {device}")

    objective = make_objective(cfg, model, x_tr, y_tr, meta, device, resume, log, progress, snr=(snr_tr, snr_va))
    net = distributed.wrap(objective.step_module, ctx, device)
    # every rank needs at least one frame of a global batch (BatchNorm, DDP's gradient all-reduce)
    batches = [(s, e) for s, e in _batches(len(x_tr), cfg.train.batch_size) if e - s >= ctx.world_size]
    opt = build_optimizer(objective.trainable, cfg.optim)
    sched = build_scheduler(opt, cfg.schedule, cfg.optim.lr, cfg.train.epochs * len(batches))
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    # Ranks must draw identical permutations from `gen`, but augment different frames: give
    # augmentation its own per-rank stream (a single process keeps the one generator).
    aug_gen = gen
    if ctx.enabled:
        aug_gen = torch.Generator(device=device)
        aug_gen.manual_seed(cfg.seed * 1009 + ctx.rank + 1)
    start_epoch, best_acc, history = 0, float("-inf"), []  # a score may be negative (the detector: minus its loss)
    if resumed is not None:
        _check_resumable(cfg, resumed, model_cfg, last_path)
        objective.resume_from(resumed, last_path)
        model.load_state_dict(resumed["state_dict"])
        opt.load_state_dict(resumed["optimizer"])
        sched.load_state_dict(resumed["scheduler"])
        start_epoch, best_acc, history = resumed["epoch"], resumed["best_val_acc"], resumed["history"]
        if not set_rng_state(resumed["rng"], gen):
            gen.manual_seed(cfg.seed * 1000 + start_epoch)
            log(f"note: {last_path} was written on another kind of device ({'CUDA' if device.type == 'cpu' else 'CPU'}); "
                f"batch order continues from a fresh stream seeded with {cfg.seed * 1000 + start_epoch}")
        log(f"resuming {run_dir} after epoch {start_epoch} (best val acc {best_acc:.4f})")

    end_epoch = cfg.train.epochs
    if stop_after_epochs is not None:
        end_epoch = min(end_epoch, start_epoch + stop_after_epochs)
    training_info = _training_info(cfg, ctx, device, command, source, meta, len(x_tr), len(x_va), resumed,
                                   (start_epoch + 1, end_epoch))
    training_info.update(objective.training_info())
    if pruning:
        training_info["pruning"] = pruning
    # BN-gamma sparsity (network slimming) adds its subgradient to whatever the objective's loss is
    bn_sparsity = BnSparsity(model, cfg.train.bn_sparsity, frame_len) if cfg.train.bn_sparsity > 0 else None

    # data.fresh_frames: each epoch after the first draws new frames for the same labels
    fresh = _fresh_frames(cfg, source, meta, y_tr, snr_tr, log) if cfg.data.fresh_frames else None
    for epoch in range(start_epoch, end_epoch):
        t0 = time.time()
        x_frames = x_tr if fresh is None or epoch == 0 else torch.as_tensor(fresh.frames(epoch), device=device)
        x_epoch = objective.start_epoch(epoch, x_frames)
        perm = torch.randperm(len(x_tr), generator=gen, device=device)
        tot_loss = tot_correct = tot_n = 0.0
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", disable=not progress,
                   leave=False, dynamic_ncols=True, file=sys.stderr)
        for bi, (s, e) in enumerate(bar):
            idx = distributed.shard(perm[s:e], ctx)
            yb = y_tr[idx]
            hold = receiver_frames(yb, classes) if objective.augment.hold_noise_frequency else None
            xb = augment(x_epoch[idx], objective.augment, aug_gen, hold_frequency=hold)
            loss, correct = objective.batch_loss(net, xb, yb, idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if bn_sparsity is not None:
                bn_sparsity()
            distributed.average_gradients(objective.unsynced_parameters(), ctx)
            if cfg.train.grad_clip > 0:
                objective.clip_grad_(cfg.train.grad_clip)
            opt.step()
            sched.step()
            n = len(idx)
            # running sums stay on the device: a .item() per batch would stall a GPU every step
            tot_loss = tot_loss + loss.detach() * n
            tot_correct = tot_correct + correct
            tot_n += n
            if progress and (bi % 20 == 0 or bi == len(batches) - 1):
                bar.set_postfix(loss=f"{float(tot_loss) / tot_n:.4f}", acc=f"{float(tot_correct) / tot_n:.3f}")
        bar.close()
        totals = distributed.sum_across(torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device)
                                                     for v in (tot_loss, tot_correct, tot_n)]), ctx)
        tot_loss, tot_correct, tot_n = (float(v) for v in totals)
        distributed.sync_buffers(objective.trainable, ctx)

        row = {
            "epoch": epoch + 1,
            "lr": opt.param_groups[0]["lr"],
            "train_loss": tot_loss / max(tot_n, 1),
            "train_acc": tot_correct / max(tot_n, 1),
            **objective.validate(x_va, y_va),
            "time_s": round(time.time() - t0, 2),
            # train frames drawn so far (distinct ones: the split's size, or that each epoch when fresh)
            "frames_seen": (epoch + 1) * len(x_tr),
        }
        val_loss, val_acc = row["val_loss"], row["val_acc"]
        row.update(objective.epoch_row(x_va, y_va))
        history.append(row)
        score = row.get("val_score", val_acc)
        improved = score > best_acc
        best_acc = max(best_acc, score)
        if ctx.is_main:
            payload = dict(
                model_name=cfg.model.name, model_cfg=model_cfg, state_dict=model.state_dict(),
                optimizer=opt.state_dict(), scheduler=sched.state_dict(), epoch=epoch + 1,
                best_val_acc=best_acc, val_acc=val_acc, history=history, rng=rng_state(gen),
                config=cfg.to_dict(), classes=classes, meta=meta, params=params, flops=flops,
                training=training_info, pruning=pruning, **objective.checkpoint_entries(),
            )
            save_checkpoint(last_path, **payload)
            if improved:
                save_checkpoint(best_path, **payload)
            _write_history(run_dir, history)
        distributed.barrier(ctx)  # a resumed or later rank reads what rank 0 just wrote
        log(f"epoch {epoch + 1}/{cfg.train.epochs}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | "
            f"val loss {val_loss:.4f} acc {val_acc:.4f}{' *' if improved else ''} | {row['time_s']:.1f}s")
    if fresh is not None:
        fresh.close()
    if ctx.enabled:
        # every rank leaves its final weights and buffers, so a job can be audited for drift
        torch.save(objective.trainable.state_dict(), run_dir / f"rank{ctx.rank}.final.pt")
    return run_dir


# ----------------------------------------------------------------------------- set-up steps of a run


def _fresh_frames(cfg, source, meta, y_tr, snr_tr, log):
    """FreshFrames (data/fresh.py) for a synthetic train split: its generator config and seed come
    from the dataset's meta. ValueError for a source that was not generated."""
    generator, seed = meta.get("config"), meta.get("seed")
    if not isinstance(generator, dict) or seed is None:
        raise ValueError(f"{cfg.source}: data.fresh_frames needs a dataset made by the generator; {source.path} "
                         f"has no generator config in its meta (a file source?)")
    log(f"fresh frames: each epoch after the first trains on {len(y_tr):,} new frames "
        f"({cfg.data.fresh_workers} worker(s) generating ahead)")
    return FreshFrames(generator, y_tr.cpu().numpy(), snr_tr.cpu().numpy(), seed, workers=cfg.data.fresh_workers)



def _load_splits(cfg, ctx, device, log, progress):
    """(source, dataset meta, (x, y, snr_db) train, (x, y, snr_db) val) with the frames on ``device``."""
    if ctx.is_main:  # rank 0 builds a missing dataset; the others wait, then find it complete
        source = data_source(cfg, log=log, progress=progress)
    distributed.barrier(ctx)
    if not ctx.is_main:
        source = data_source(cfg, log=log, progress=False)
    tr, va = source.load("train"), source.load("val")
    meta = dict(tr.meta)
    splits = [(torch.as_tensor(np.ascontiguousarray(split.x), device=device),
               torch.as_tensor(np.asarray(split.y, np.int64), device=device),
               torch.as_tensor(np.asarray(split.snr_db, np.float32), device=device)) for split in (tr, va)]
    y_tr, n_classes = splits[0][1], len(meta["classes"])
    if int(y_tr.max()) >= n_classes or int(y_tr.min()) < 0:
        raise ValueError(f"{source.path}: train labels out of range 0..{n_classes - 1}")
    return source, meta, splits[0], splits[1]


def _model_cfg(cfg, classes, frame_len):
    model_cfg = dict(cfg.model.cfg)
    for key, value in (("n_classes", len(classes)), ("frame_len", frame_len)):
        if key in model_cfg and model_cfg[key] != value:
            raise ValueError(
                f"{cfg.source}: field 'model.cfg.{key}' is {model_cfg[key]} but the dataset has {value}; "
                f"leave it out, it is taken from the data"
            )
        model_cfg[key] = value
    return model_cfg


def _build_model(cfg, model_cfg, init_model, resumed, device):
    """The network to train: ``init_model`` (checked against the config), else a fresh one from
    the registry, at a resumed pruned checkpoint's shapes when there is one."""
    if init_model is not None:
        if init_model.model_name != cfg.model.name or init_model.model_cfg != {**default_config(cfg.model.name), **model_cfg}:
            raise ValueError(f"{cfg.source}: the given model is {init_model.model_name} {init_model.model_cfg}, "
                             f"the config asks for {cfg.model.name} {model_cfg}")
        return init_model.to(device)
    model = create_model(cfg.model.name, **model_cfg)
    if resumed is not None and resumed.get("pruning"):
        fit_to_state_dict(model, resumed["state_dict"])
    return model.to(device)


def _check_resumable(cfg, ckpt, model_cfg, path):
    if ckpt["model_name"] != cfg.model.name or ckpt["model_cfg"] != model_cfg:
        raise ValueError(f"{path}: was trained with model {ckpt['model_name']} {ckpt['model_cfg']}, "
                         f"config asks for {cfg.model.name} {model_cfg}")
    was_epochs = ckpt["config"]["train"]["epochs"]
    if was_epochs != cfg.train.epochs:
        raise ValueError(f"{path}: run was planned for {was_epochs} epochs but the config now says "
                         f"{cfg.train.epochs}; the lr schedule spans the whole run, so resume with --epochs {was_epochs}")


def _training_info(cfg, ctx, device, command, source, meta, n_train, n_val, resumed, epochs):
    """The checkpoint's ``training`` record: how the run was made, every invocation included."""
    info = {
        "command": command,
        "seed": cfg.seed,
        # the dataset's own meta wins over the config: --data-root may point at a different build
        # source: what open_source() needs to read exactly these frames again (export, evaluate)
        "data": {"name": cfg.data.name, "root": str(source.path), "source": source.record(),
                 "seed": meta.get("seed", cfg.data.seed),
                 "frames_per_class_snr": meta.get("frames_per_class_snr", dict(cfg.data.frames_per_class_snr)),
                 "train_frames": n_train, "val_frames": n_val, "meta": meta},
        "config": cfg.to_dict(),
        "distillation": cfg.distill.method,  # export writes it to the ONNX metadata
        "world_size": ctx.world_size,
    }
    # every invocation that wrote this run (a run resumed elsewhere, e.g. GPU then CPU, keeps all)
    earlier = []
    if resumed is not None:
        was = resumed.get("training") or {}
        earlier = list(was.get("invocations") or [{"command": was.get("command"), "epochs": [1, resumed["epoch"]]}])
    info["invocations"] = earlier + [{
        "command": command, "epochs": list(epochs), "world_size": ctx.world_size, "torch": str(torch.__version__),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)",
    }]
    return info
