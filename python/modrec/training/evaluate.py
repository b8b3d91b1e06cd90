"""Evaluation of a torch checkpoint or an ONNX model: per-SNR accuracy, confusion, plots, summary.

The ONNX path needs only numpy + onnxruntime (+ matplotlib for plots): torch is imported lazily,
so a shipped model can be scored on a machine without PyTorch.
"""

import csv
import json
import os
import time
from pathlib import Path

import numpy as np

from .metrics import classification_metrics


def _log(*args):
    # flushed so that logs of batch jobs (stdout to a file) show progress as it happens
    print(*args, flush=True)


def predict_onnx(model, x, batch_size=1024):
    """Probabilities of a runtime OnnxModel over ``x`` (N, 2, L), in batches."""
    out = [model.predict(x[s : s + batch_size]) for s in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.n_classes), np.float32)


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


def write_report(metrics, out_dir, title="", extra=None):
    """Write summary.json, per_snr.{csv,json}, confusion.png, accuracy_vs_snr.png into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {**metrics, **(extra or {})}
    (out / "per_snr.json").write_text(json.dumps(metrics["per_snr"], indent=1))
    with open(out / "per_snr.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["snr_db", "n", "correct", "accuracy"])
        w.writeheader()
        w.writerows(metrics["per_snr"])
    summary["figures"] = {"accuracy_vs_snr": "accuracy_vs_snr.png", "confusion": "confusion.png"}
    _plot_snr(metrics, out / "accuracy_vs_snr.png", title)
    _plot_confusion(metrics, out / "confusion.png", title)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # headless clusters and CI
    import matplotlib.pyplot as plt

    return plt


def _plot_snr(metrics, path, title):
    plt = _plt()
    snr = [r["snr_db"] for r in metrics["per_snr"]]
    acc = [r["accuracy"] for r in metrics["per_snr"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(snr, acc, "o-")
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{title} accuracy vs SNR (overall {metrics['accuracy']:.3f})".strip())
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_confusion(metrics, path, title):
    plt = _plt()
    cm = np.asarray(metrics["confusion"], np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    classes = metrics["classes"]
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
    ax.set_title(f"{title} confusion (all SNRs)".strip())
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate(out_dir, checkpoint=None, onnx_path=None, data_root=None, split="test", batch_size=1024,
             device="auto", latency=True, log=_log):
    """Evaluate a checkpoint and/or an ONNX model on ``split`` of a dataset; returns the summary.

    With both, the ONNX model is scored (it is what ships) and the checkpoint supplies the data
    location; with only a checkpoint the torch model is scored.
    """
    if checkpoint is None and onnx_path is None:
        raise ValueError("evaluate needs a checkpoint and/or an ONNX model")
    ckpt = None
    if checkpoint is not None:
        from .train import load_checkpoint

        ckpt = load_checkpoint(checkpoint)
    if data_root is None:
        if ckpt is None or "training" not in ckpt:
            raise ValueError("no dataset given: pass --data <dataset root> (an ONNX model does not record where its data lives)")
        data_root = ckpt["training"]["data"]["root"]
    from .config import read_split

    data = read_split(data_root, split)
    classes = list(data.meta["classes"])
    extra = {"split": split, "data_root": str(data_root)}

    if onnx_path is not None:
        from ..runtime import load_model

        # The runtime's loader validates the file against the contract, as the blocks do (and
        # runs an early-exit model as its cascade, as the blocks do).
        onnx_model = load_model(onnx_path, threads=os.cpu_count() or 1)
        md = onnx_model.metadata
        if list(md["classes"]) != classes:
            raise ValueError(f"{onnx_path}: model classes {md['classes']} differ from dataset {data_root} classes {classes}")
        if md["frame_len"] != data.x.shape[-1]:
            raise ValueError(f"{onnx_path}: model frame_len {md['frame_len']} but dataset frames have {data.x.shape[-1]} samples")
        t = time.time()
        probs = predict_onnx(onnx_model, data.x, batch_size)
        inference_s = time.time() - t
        extra.update(model=str(onnx_path), backend="onnxruntime", architecture=md["architecture"],
                     params=md["params"], flops=md["flops"], onnx_bytes=Path(onnx_path).stat().st_size,
                     onnx_kb=round(Path(onnx_path).stat().st_size / 1024, 1), metadata=md)
        if latency:
            extra.update(onnx_latency(onnx_path))
    else:
        import torch

        from .flops import count_flops, count_params
        from .train import model_from_checkpoint, predict_logits, resolve_device

        dev = resolve_device(device)
        model = model_from_checkpoint(ckpt, dev)
        if list(ckpt["classes"]) != classes:
            raise ValueError(f"{checkpoint}: model classes {ckpt['classes']} differ from dataset {data_root} classes {classes}")
        t = time.time()
        probs = torch.softmax(predict_logits(model, data.x, batch_size, dev), -1).numpy()
        inference_s = time.time() - t
        extra.update(model=str(checkpoint), backend="torch", architecture=ckpt["model_name"],
                     params=count_params(model), flops=count_flops(model.to("cpu"), data.x.shape[-1]),
                     epoch=ckpt.get("epoch"))
    extra["inference_s"] = round(inference_s, 3)
    if ckpt is not None:
        extra["training"] = ckpt.get("training")
    metrics = classification_metrics(probs, data.y, data.snr_db, classes)
    summary = write_report(metrics, out_dir, title=extra["architecture"], extra=extra)
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    log(f"{extra['architecture']} on {split}: acc {fmt(metrics['accuracy'])} | SNR>=0 {fmt(metrics['accuracy_snr_ge_0'])} | "
        f"SNR>=10 {fmt(metrics['accuracy_snr_ge_10'])} | peak {fmt(metrics['peak_accuracy'])} | ECE {fmt(metrics.get('ece'))}")
    return summary
