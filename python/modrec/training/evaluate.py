"""Evaluation of a torch checkpoint or an ONNX model: per-SNR accuracy, confusion, plots, summary.

The ONNX path needs only numpy + onnxruntime (+ matplotlib for plots): torch is imported lazily,
so a shipped model can be scored on a machine without PyTorch.
"""

import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import contract
from ..classes import class_index_map
from .data.source import ALL_SPLIT
from .data.sources import open_source, run_source, split_spec
from .model_card import model_name
from .tables_and_figures import pyplot, save_figure
from .metrics import classification_metrics


def _log(*args):
    # flushed so that logs of batch jobs (stdout to a file) show progress as it happens
    print(*args, flush=True)


def _median_seconds(run, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def onnx_latency(path, repeats=200, batch=256, batch_repeats=10):
    """Single-thread ORT latency through the runtime the blocks use: ms/frame at batch 1 and
    frames/s at ``batch``. An early-exit model runs as its cascade: on these random frames few
    leave early, so this is close to its worst case (exits-eval measures it per SNR)."""
    from ..runtime import load_model

    model = load_model(path, threads=1)
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((1, 2, model.frame_len)).astype(np.float32)
    xb = rng.standard_normal((batch, 2, model.frame_len)).astype(np.float32)
    _median_seconds(lambda: model.predict(x1), 20)  # warm-up: first runs allocate
    single = _median_seconds(lambda: model.predict(x1), repeats)
    model.predict(xb)
    batched = _median_seconds(lambda: model.predict(xb), batch_repeats)
    return {
        "ort_ms_per_frame_batch1": 1e3 * single,
        f"ort_frames_per_s_batch{batch}": batch / batched,
        "ort_threads": 1,
    }


def write_evaluation(metrics, out_dir, title="", extra=None):
    """Write summary.json, per_snr.{csv,json}, confusion.png, confusion_snr_ge_10.png (when
    frames at SNR >= 10 dB were scored) and accuracy_vs_snr.png into ``out_dir``; ``title``
    (the model's name) heads every figure."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {**metrics, **(extra or {})}
    (out / "per_snr.json").write_text(json.dumps(metrics["per_snr"], indent=1))
    with open(out / "per_snr.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["snr_db", "n", "correct", "accuracy"])
        w.writeheader()
        w.writerows(metrics["per_snr"])
    summary["figures"] = {"confusion": "confusion.png"}
    if any(r["snr_db"] is not None for r in metrics["per_snr"]):  # a SigMF recording has no SNR: no curve
        summary["figures"]["accuracy_vs_snr"] = "accuracy_vs_snr.png"
        save_figure(snr_figure(metrics, title), out / "accuracy_vs_snr.png")
    save_figure(confusion_figure(metrics["confusion"], metrics["classes"], f"{title} confusion (all SNRs)".strip()),
                out / "confusion.png")
    if metrics.get("confusion_snr_ge_10") is not None:
        summary["figures"]["confusion_snr_ge_10"] = "confusion_snr_ge_10.png"
        save_figure(confusion_figure(metrics["confusion_snr_ge_10"], metrics["classes"],
                                     f"{title} confusion (SNR ≥ 10 dB)".strip()), out / "confusion_snr_ge_10.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def snr_figure(metrics, title):
    plt = pyplot()
    rated = [r for r in metrics["per_snr"] if r["snr_db"] is not None]  # a SigMF recording has no SNR
    snr = [r["snr_db"] for r in rated]
    acc = [r["accuracy"] for r in rated]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(snr, acc, "o-")
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{title} accuracy vs SNR (overall {metrics['accuracy']:.3f})".strip())
    fig.tight_layout()
    return fig


def confusion_figure(confusion, classes, title):
    """A confusion matrix, each row (true class) normalised to 1, its counts in the title."""
    plt = pyplot()
    cm = np.asarray(confusion, np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=60, ha="right")
    ax.set_yticks(range(n), classes)
    for i in range(n):
        for j in range(n):
            if norm[i, j] >= 0.005:
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}, {int(cm.sum()):,} frames")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def _open_data(data, model_frame_len, source_options):
    """The DataSource to score: a spec or record; a SigMF recording is cut at the model's frame_len."""
    options = dict(source_options or {})
    if not isinstance(data, dict) and split_spec(data)[0] == "sigmf":
        options.setdefault("frame_len", model_frame_len)
    return open_source(data, **options)


def evaluate(out_dir, checkpoint=None, onnx_path=None, data=None, split=None, batch_samples=1 << 17,
             device="auto", latency=True, log=_log, source_options=None, chunk_samples=1 << 21, progress=True):
    """Evaluate a checkpoint and/or an ONNX model on ``split`` of a data source; returns the summary.

    data     a source spec (``rml2016:FILE``, ``rml2018:FILE``, ``sigmf:PATH``, a dataset dir or a
             bare path, format detected: training/data/sources.py) or a record; default the
             checkpoint's own training data
    split    default ``test`` for a dataset dir or the checkpoint's own data, ``all`` (every
             frame) for a file given here
    source_options  open_source() options for a file (split scheme, seed, limit, classes)

    With both, the ONNX model is scored (it is what ships) and the checkpoint supplies the data
    location; with only a checkpoint the torch model is scored. The split is streamed in chunks of
    ``chunk_samples`` complex samples (16 MiB of frames), run through the model
    ``batch_samples`` samples at a time (1024 frames of 128 samples, 128 of 1024), so memory does
    not grow with the file (RadioML 2018 is 21 GB) and the model's activations stay the same size
    whatever the frame length.
    Classes are matched by name between model and data (canonical_class_name); frames of data
    classes the model does not know are not scored but reported in the summary under
    ``frames_of_classes_unknown_to_model`` with what the model called them.
    Raises ValueError naming the model or file when frame lengths differ or no class is shared.
    """
    if checkpoint is None and onnx_path is None:
        raise ValueError("evaluate needs a checkpoint and/or an ONNX model")
    ckpt = None
    if checkpoint is not None:
        from .checkpoint import load_checkpoint

        ckpt = load_checkpoint(checkpoint)
    if data is None:
        if ckpt is None or "training" not in ckpt:
            raise ValueError("no data given: pass --data <file or dataset> (an ONNX model does not record where its data lives)")
        data = run_source(ckpt["training"]["data"])
        if split is None:
            split = "test"  # the run's own held-out frames

    if onnx_path is not None:
        from ..runtime import load_model
        from ..runtime.onnx_model import available_cores

        # The runtime's loader validates the file against the contract, as the blocks do (and
        # runs an early-exit model as its cascade, as the blocks do). Every core this process may
        # run on: under an affinity mask (taskset) that is fewer than the machine has.
        onnx_model = load_model(onnx_path, threads=available_cores())
        md = onnx_model.metadata
        model_file, model_classes, model_frame_len = str(onnx_path), list(md[contract.CLASSES]), int(md[contract.FRAME_LEN])
        predict = onnx_model.predict
        extra = dict(model=str(onnx_path), backend="onnxruntime", architecture=md[contract.ARCHITECTURE],
                     params=md[contract.PARAMS], flops=md[contract.FLOPS], onnx_bytes=Path(onnx_path).stat().st_size,
                     onnx_kb=round(Path(onnx_path).stat().st_size / 1024, 1), metadata=md)
    else:
        import torch

        from .flops import count_flops, count_params
        from .checkpoint import model_from_checkpoint
        from .device import resolve_device
        from .predict import predict_logits

        dev = resolve_device(device)
        model = model_from_checkpoint(ckpt, dev)
        model_file, model_classes = str(checkpoint), list(ckpt["classes"])
        model_frame_len = int(ckpt["model_cfg"]["frame_len"])

        def predict(x):
            return torch.softmax(predict_logits(model, x, len(x), dev), -1).numpy()

        extra = dict(model=str(checkpoint), backend="torch", architecture=ckpt["model_name"],
                     params=count_params(model), flops=count_flops(model.to("cpu"), model_frame_len),
                     epoch=ckpt.get("epoch"))
        model.to(dev)

    source = _open_data(data, model_frame_len, source_options)
    if split is None:
        split = "test" if source.kind == "synthetic" else ALL_SPLIT
    if source.frame_len != model_frame_len:
        raise ValueError(f"{model_file}: the model takes frames of {model_frame_len} samples, but {source.spec} has "
                         f"frames of {source.frame_len}; score a model trained on such frames (modrec train --data "
                         f"{source.path} takes the frame length from the data)")
    to_model = np.array(class_index_map(model_classes, source.classes), np.int64)
    if not (to_model >= 0).any():
        raise ValueError(f"{model_file}: none of the model's classes {model_classes} is among the classes of "
                         f"{source.spec}: {list(source.classes)} (matched by name, spelling-insensitive)")

    batch_size = max(1, batch_samples // model_frame_len)
    chunk_frames = max(batch_size, chunk_samples // model_frame_len)
    y_parts, pred_parts, conf_parts, snr_parts = [], [], [], []
    total = source.splits.get(split)
    bar = tqdm(total=total, desc=f"scoring {Path(str(source.path)).name}", unit="frame", disable=not progress or not total,
               file=sys.stderr, leave=False)
    t = time.time()
    for chunk in source.iter_split(split, chunk_frames):
        probs = np.concatenate([predict(chunk.x[s : s + batch_size]) for s in range(0, len(chunk), batch_size)])
        y_parts.append(chunk.y.astype(np.int64))
        pred_parts.append(probs.argmax(axis=1).astype(np.int64))
        conf_parts.append(probs.max(axis=1).astype(np.float32))
        snr_parts.append(chunk.snr_db.astype(np.float32))
        bar.update(len(chunk))
    bar.close()
    inference_s = time.time() - t
    cat = lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype)  # noqa: E731
    y_data, y_pred, conf, snr = cat(y_parts, np.int64), cat(pred_parts, np.int64), cat(conf_parts, np.float32), cat(snr_parts, np.float32)
    y_model = to_model[y_data]
    known = y_model >= 0
    unknown = {}
    for data_index in np.unique(y_data[~known]):
        rows = y_data == data_index
        names, counts = np.unique(y_pred[rows], return_counts=True)
        unknown[source.classes[data_index]] = {"n": int(rows.sum()), "predicted": {model_classes[k]: int(c) for k, c in zip(names, counts)}}
    if not known.any():
        raise ValueError(f"{model_file}: split {split!r} of {source.spec} holds no frame of a class the model knows "
                         f"(it holds {', '.join(unknown)})")
    extra.update(split=split, data=source.spec, data_root=str(source.path), source=source.record(),
                 inference_s=round(inference_s, 3), frames_of_classes_unknown_to_model=unknown,
                 n_frames_in_split=int(y_data.size))
    if onnx_path is not None and latency:
        extra.update(onnx_latency(onnx_path))
    if ckpt is not None:
        extra["training"] = ckpt.get("training")
    extra["name"] = model_name(extra)  # the model's name (its file's, its run's), what cards and figures are titled
    metrics = classification_metrics(y_pred[known], y_model[known], snr[known], model_classes, confidence=conf[known])
    summary = write_evaluation(metrics, out_dir, title=extra["name"], extra=extra)
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    log(f"{extra['name']} on {split} of {source.spec}: acc {fmt(metrics['accuracy'])} | SNR>=0 "
        f"{fmt(metrics['accuracy_snr_ge_0'])} | SNR>=10 {fmt(metrics['accuracy_snr_ge_10'])} | peak "
        f"{fmt(metrics['peak_accuracy'])} | ECE {fmt(metrics.get('ece'))}")
    for name, info in unknown.items():
        log(f"  {info['n']} frames of {name}, a class the model does not know, were not scored; the model called them "
            + ", ".join(f"{k} {v}" for k, v in sorted(info["predicted"].items(), key=lambda kv: -kv[1])))
    return summary
