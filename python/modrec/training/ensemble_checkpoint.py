"""Several trained checkpoints joined into one checkpoint of the ``ensemble`` model
(models/ensemble.py: averaged logits), which ``modrec evaluate``, ``modrec export`` and a
distillation config's ``distill.teacher.checkpoint`` take like any trained model.

    modrec ensemble --checkpoints runs/a/best.pt runs/b/best.pt ... --out runs/<name>/best.pt
"""

import copy
from pathlib import Path


def ensemble_checkpoint(checkpoints, out):
    """Write the ensemble of ``checkpoints`` (at least 2 paths, each a classifier's checkpoint:
    runs/<run>/best.pt or one rebuilt by ``modrec from-onnx``) to ``out``; returns ``out``.

    The members must agree on their classes (same names, same order), frame length, samples per
    symbol and training data (the dataset ``modrec evaluate`` then reads by default); the new
    checkpoint records each member's path, architecture, distillation, validation accuracy and
    weights' SHA-256 (``training.ensemble_of``). Raises ValueError naming the file and the field
    where they differ (the data by every recorded field but its folder), where a file is not a
    plain classifier (a signal detector, a classifier with detector heads, an early-exit model, an
    ensemble) or is pruned, where fewer than 2 files are given, one twice or two with the same weights, and
    where ``out`` is a directory or a member; FileNotFoundError for a missing file;
    UnsafeCheckpointError (a ValueError) for a file that holds more than tensors and plain values.
    """
    # torch only here, as in online_teacher.py
    from .checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
    from .distill.teacher_cache import weights_sha256
    from .flops import count_flops, count_params
    from .models import create_model
    from .models.ensemble import plain_classifiers

    paths, out = [Path(p).expanduser() for p in checkpoints], Path(out).expanduser()
    if len(paths) < 2:
        raise ValueError(f"an ensemble needs at least 2 checkpoints, got {len(paths)}")
    seen = {}
    for path in paths:
        if path.resolve() in seen:
            raise ValueError(f"{path}: given twice (as {seen[path.resolve()]} too): each member is averaged once")
        seen[path.resolve()] = path
    # where the result goes, checked before any member is read
    if out.is_dir():
        raise ValueError(f"{out} (--out) is a directory; give the checkpoint file to write, e.g. {out}/best.pt")
    if out.resolve() in seen:
        raise ValueError(f"{out} (--out) is one of the members; write the ensemble to another file")
    if any(parent.exists() and not parent.is_dir() for parent in out.parents):
        raise ValueError(f"{out} (--out): a folder above it is a file")
    ckpts = []
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: checkpoint not found (train it, or rebuild it from a shipped file: "
                                    f"modrec from-onnx)")
        ckpt = load_checkpoint(path)
        name = ckpt["model_name"]
        if name == "ensemble":
            raise ValueError(f"{path}: holds an ensemble; give its members' checkpoints instead (an ensemble inside "
                             f"an ensemble would weigh its members unequally)")
        if name not in plain_classifiers():
            raise ValueError(f"{path}: holds a {name}; an ensemble's members are plain classifiers (not a signal "
                             f"detector, a classifier with detector heads or an early-exit model)")
        if ckpt.get("pruning"):
            raise ValueError(f"{path}: a pruned {name}: its channel counts are not those its config builds, which "
                             f"an ensemble's config records; join unpruned members")
        ckpts.append(ckpt)

    first, first_path = ckpts[0], paths[0]

    def same(value_of, field):
        for path, ckpt in zip(paths[1:], ckpts[1:]):
            if value_of(ckpt) != value_of(first):
                raise ValueError(f"{path}: {field} {value_of(ckpt)!r} differs from {first_path}'s "
                                 f"{value_of(first)!r}: an ensemble's members must agree on it")

    same(lambda c: list(c.get("classes") or []), "classes")
    same(lambda c: int(c["model_cfg"].get("frame_len", (c.get("meta") or {}).get("frame_len", 0))), "frame_len")
    same(lambda c: (c.get("meta") or {}).get("samples_per_symbol"), "meta.samples_per_symbol")
    # the same data wherever it was stored: every recorded field but the dataset's folder
    data = [{k: v for k, v in ((c.get("training") or {}).get("data") or {}).items() if k != "root"} for c in ckpts]
    for path, d in zip(paths[1:], data[1:]):
        differ = sorted(k for k in set(d) | set(data[0]) if d.get(k) != data[0].get(k))
        if differ:
            raise ValueError(f"{path}: trained on other data than {first_path} (training.data fields "
                             f"{', '.join(differ)} differ): an ensemble's members must share their training data")

    digests = [weights_sha256(c) for c in ckpts]
    for k, digest in enumerate(digests):
        if digest in digests[:k]:
            raise ValueError(f"{paths[k]}: the same weights as {paths[digests.index(digest)]}: each member is "
                             f"averaged once")

    classes = list(first["classes"])
    frame_len = int(first["model_cfg"].get("frame_len", (first.get("meta") or {}).get("frame_len", 128)))
    members = [{"name": c["model_name"], "cfg": {k: v for k, v in c["model_cfg"].items()
                                                 if k not in ("n_classes", "frame_len")}} for c in ckpts]
    model = create_model("ensemble", n_classes=len(classes), frame_len=frame_len, members=members)
    for module, ckpt in zip(model.members, ckpts):
        module.load_state_dict(model_from_checkpoint(ckpt).state_dict())
    model.eval()

    descs = [{"checkpoint": str(path), "model": c["model_name"], "weights_sha256": digest,
              "experiment": ((c.get("training") or {}).get("config") or {}).get("experiment"),
              "rebuilt_from_onnx": (c.get("training") or {}).get("rebuilt_from_onnx"),
              "distillation": (c.get("training") or {}).get("distillation", "none"), "val_acc": c.get("val_acc"),
              "epoch": c.get("epoch")} for path, c, digest in zip(paths, ckpts, digests)]
    # the ensemble's own recipe is its members and their data: their optimiser, schedule and
    # distillation are each member's (training.ensemble_of names their checkpoints). Its name:
    # runs/<name>/best.pt names it after its folder, any other file after itself.
    config = {"experiment": out.parent.name if out.name == "best.pt" else out.stem,
              "data": copy.deepcopy((first.get("config") or {}).get("data")),
              "model": {"name": "ensemble", "cfg": {"members": members}}}
    training = {"command": "modrec ensemble --checkpoints " + " ".join(str(p) for p in paths) + f" --out {out}",
                "config": config, "data": copy.deepcopy((first.get("training") or {}).get("data")),
                "distillation": "none", "ensemble_of": descs}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, model_name="ensemble", model_cfg=dict(model.model_cfg), state_dict=model.state_dict(),
                    classes=classes, meta=copy.deepcopy(first.get("meta")), config=config, training=training,
                    epoch=None, val_acc=None, params=count_params(model), flops=count_flops(model, frame_len),
                    pruning=None)
    return out
