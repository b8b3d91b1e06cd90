"""Teacher outputs over a split, computed once and kept on disk.

A student run then needs no teacher forward passes at all (the teachers are the expensive
models). File: ``<cache_dir>/<key>.npz`` with ``logits`` (N, C) float32, optionally ``features``
(N, D) float32, and ``info`` (JSON). ``cache_dir`` defaults to ``$MODREC_CACHE/teacher`` or
``~/.cache/gr-modrec/teacher``.

The key is a SHA-256 over the teacher's weights (``weights_sha256``), the dataset meta, the split name and a
fingerprint of the split's frames and labels (count, labels, a strided sample of frames), so a
retrained teacher, a rebuilt dataset or a different --data-root never reuses stale outputs.
Rows follow the split's on-disk order, which is the order read_split returns.

Cached outputs belong to the UN-augmented frames: the trainer turns augmentation off when it
uses them (see session.py).
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

KEY_VERSION = 2  # 2: the teacher is identified by its weights, not its file


def default_cache_dir():
    base = os.environ.get("MODREC_CACHE") or os.path.join("~", ".cache", "gr-modrec")
    return Path(base).expanduser() / "teacher"


def weights_sha256(ckpt):
    """A teacher's identity: its architecture and weights, not the file's bytes. A checkpoint
    slimmed of its training state (scripts/pack_runs.py) is the same teacher as the full one."""
    h = hashlib.sha256()
    h.update(json.dumps({"model": ckpt.get("model_name"), "cfg": ckpt.get("model_cfg")}, sort_keys=True, default=str).encode())
    for name, tensor in sorted((ckpt.get("state_dict") or {}).items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _as_numpy(a):
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def cache_key(teacher_sha256, meta, split, x, y):
    step = max(1, len(x) // 64)
    shape = list(x.shape)
    x, y = _as_numpy(x[::step]), _as_numpy(y)  # stride first: x may be a whole split on a GPU
    h = hashlib.sha256()
    h.update(json.dumps({"v": KEY_VERSION, "teacher": teacher_sha256, "split": split,
                         "meta": meta, "n": int(len(y)), "shape": shape},
                        sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(y, np.int64).tobytes())
    h.update(np.ascontiguousarray(x, np.float32).tobytes())
    return h.hexdigest()[:32]


def _run_teacher(teacher, x, features, batch_size, device, progress):
    from tqdm.auto import tqdm

    was = teacher.training
    teacher.eval()
    logits, feats = [], []
    starts = range(0, len(x), batch_size)
    with torch.no_grad():
        for s in tqdm(starts, desc="teacher outputs", disable=not progress, leave=False, dynamic_ncols=True):
            xb = torch.as_tensor(x[s : s + batch_size]).to(device)
            if features:
                f, lg = teacher.forward_features(xb)
                feats.append(f.float().cpu())
            else:
                lg = teacher(xb)
            logits.append(lg.float().cpu())
    teacher.train(was)
    return torch.cat(logits).numpy(), (torch.cat(feats).numpy() if features else None)


def teacher_outputs(teacher, x, *, teacher_sha256, meta, y, split="train", features=False, cache_dir=None,
                    batch_size=2048, device="cpu", progress=False, log=print):
    """(logits, features or None, hit) as CPU float32 tensors, from the cache or by running the
    teacher (in eval mode, no grad) and writing the cache. A cached file without features is
    recomputed when features are asked for."""
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    key = cache_key(teacher_sha256, meta, split, x, y)
    path = cache_dir / f"{key}.npz"
    if path.is_file():
        try:
            # never unpickles (allow_pickle=False, numpy's default, said so that no edit turns it
            # on): the cache holds numbers, and an object array would be a pickle that runs code
            with np.load(path, allow_pickle=False) as z:
                if len(z["logits"]) == len(x) and (not features or "features" in z.files):
                    logits = torch.from_numpy(z["logits"].copy())
                    feats = torch.from_numpy(z["features"].copy()) if features else None
                    log(f"teacher outputs: cache hit {path}")
                    return logits, feats, True
        except (OSError, ValueError, KeyError) as err:  # a truncated file from a killed run: rebuild it
            if "allow_pickle" in str(err):  # not ours: refused unread, then replaced by the recomputed outputs
                log(f"teacher outputs: refused cache {path}: it holds pickled objects (an object array), which may "
                    f"run code when loaded, where the cache holds only numbers; recomputing and replacing it")
            else:
                log(f"teacher outputs: unreadable cache {path} ({err}); recomputing")
    logits, feats = _run_teacher(teacher, x, features, batch_size, device, progress)
    cache_dir.mkdir(parents=True, exist_ok=True)
    arrays = {"logits": logits}
    if feats is not None:
        arrays["features"] = feats
    info = {"teacher_weights_sha256": teacher_sha256, "split": split, "n": int(len(x))}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, info=np.array(json.dumps(info)), **arrays)
    os.replace(tmp, path)  # atomic: concurrent student runs never read a half-written file
    log(f"teacher outputs: computed {len(x):,} frames, cached at {path}")
    return torch.from_numpy(logits), (torch.from_numpy(feats) if feats is not None else None), False
