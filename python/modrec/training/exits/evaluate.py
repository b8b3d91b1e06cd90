"""Per-SNR evaluation of an early-exit model against the plain student it extends.

For every SNR of the split: the share of frames leaving at each exit, accuracy of the runtime and
of the plain model, mean FLOPs/frame the runtime spent on a stream settled at that SNR (each frame
pays the stages it ran; while few frames leave it runs the plain network, with a probe through
every exit every 8th window: runtime/early_exit.py), the no-loss bound (the mean FLOPs/frame if
every frame left at the first exit that costs it nothing: one that is right, or any exit when the
final exit is wrong; no exit rule can do better without losing accuracy against the final exit),
and *measured* ONNX Runtime time per frame of both, timed side by side (1 thread, batches of 256,
runtime/timing.py: paired rounds, plain-cascade-cascade-plain, the speed-up the median of the
rounds' ratios) so machine noise hits both alike. numpy and onnxruntime only: what a deployment
sees.
"""

import json
import re
from pathlib import Path

import numpy as np

from ... import contract
from ...classes import class_index_map
from ...runtime import EarlyExitModel, OnnxModel
from ...runtime.timing import paired_times, speed_ratio
from ..data.sources import read_split
from ..tables_and_figures import legend_beside, line_styles, pyplot, save_figure, write_markdown


def no_loss_exit(exit_probs, labels):
    """Per frame, the first exit whose answer costs nothing against the final exit's."""
    preds = np.stack([p.argmax(1) for p in exit_probs])  # (exits, N)
    free = (preds == labels) | (preds[-1] != labels)
    return free.argmax(0)  # the final exit is always free, so every frame has one


def evaluate_early_exit(ee_path, plain_path, data_root, split="test", batch=256, repeats=5, threads=1):
    plain = OnnxModel(plain_path, threads=threads)
    data = read_split(data_root, split)
    x, y, snr = np.asarray(data.x, np.float32), np.asarray(data.y), np.asarray(data.snr_db)
    if not np.isfinite(snr).all():
        raise ValueError(f"{data_root}: exits-eval reports per SNR, and these frames have no SNR (a SigMF recording); "
                         f"score it with modrec evaluate")
    # the data's labels as the model's class indices (a file may name or order its classes
    # differently); frames of classes the model does not know cannot be right or wrong: left out
    to_model = np.array(class_index_map(plain.classes, data.classes), np.int64)[y]
    known = to_model >= 0
    x, y, snr = x[known], to_model[known], snr[known]
    if not len(y):
        raise ValueError(f"{data_root}: no frame of a class {plain_path} knows ({', '.join(plain.classes)})")
    plain_flops = int(plain.metadata[contract.FLOPS])
    rows = []
    for s in sorted(set(snr.tolist())):
        sel = snr == s
        xs, ys = x[sel], y[sel]
        # a stream that has been at this SNR for a while: one pass to settle (a probe, then the way
        # the share of frames leaving says), the figures from the second
        ee = EarlyExitModel(ee_path, threads=threads)
        flops = np.cumsum(ee.exit_flops)  # cost of leaving at exit k: stages 0..k
        ee.predict_with_exits(xs)
        spent, run = ee.flops_spent, ee.frames_run
        probs, taken = ee.predict_with_exits(xs)
        mean_flops = (ee.flops_spent - spent) / (ee.frames_run - run)
        plain_probs = plain.predict(xs)
        times = paired_times({"plain": plain.predict, "ee": ee.predict}, xs, batch, rounds=repeats)
        rows.append({
            "snr_db": float(s), "n": int(sel.sum()),
            "exit_rates": (np.bincount(taken, minlength=ee.n_exits) / len(taken)).tolist(),
            "accuracy": float((probs.argmax(1) == ys).mean()),
            "plain_accuracy": float((plain_probs.argmax(1) == ys).mean()),
            "mean_flops": float(mean_flops), "plain_flops": plain_flops,
            "no_loss_bound_flops": float(flops[no_loss_exit(ee.exit_probabilities(xs), ys)].mean()),
            "ms_per_frame": 1e3 * float(np.median(times["ee"])), "plain_ms_per_frame": 1e3 * float(np.median(times["plain"])),
            "speed_up": speed_ratio(times, "plain", "ee"),
        })
    def pooled(pred):
        keep = [r for r in rows if pred(r["snr_db"])]
        n = sum(r["n"] for r in keep)
        avg = lambda k: sum(r[k] * r["n"] for r in keep) / n  # noqa: E731
        return {k: avg(k) for k in ("accuracy", "plain_accuracy", "mean_flops", "no_loss_bound_flops", "ms_per_frame",
                                    "plain_ms_per_frame")}
    return {
        "model": str(ee_path), "plain_model": str(plain_path), "split": split, "data_root": str(data_root),
        "frames_of_classes_unknown_to_model": int((~known).sum()),
        "policy": ee.policy, "thresholds": ee.thresholds, "placements": ee.metadata.get(contract.EXIT_PLACEMENTS),
        "exit_flops": list(ee.exit_flops), "plain_flops": plain_flops, "per_snr": rows,
        "low_snr_runtime": "plain network",  # results before 2026-11-24 ran the all-exits graph there
        "all": pooled(lambda s: True), "snr_ge_10": pooled(lambda s: s >= 10), "snr_min": pooled(lambda s: s == min(snr)),
    }


def markdown(results):
    """One table per model: per-SNR exit rates, accuracy, cost and measured speed."""
    parts = []
    for r in results:
        name = Path(r["model"]).stem
        n_exits = len(r["exit_flops"])
        head = ["SNR (dB)"] + [f"exit {k}" for k in range(n_exits)] + [
            "accuracy", "plain", "MFLOPs/frame", "cost vs plain", "no-loss bound", "ms/frame", "plain ms/frame", "speed-up"]
        timed = "" if r.get("low_snr_runtime") else "; timed when the runtime ran the all-exits graph at low SNR"
        lines = [f"#### {name} (placements {r['placements']}, {r['policy']} <= {r['thresholds'][0]:.3f}{timed})", "",
                 "| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
        rows = list(r["per_snr"]) + [{"snr_db": "≥ 10", **r["snr_ge_10"], "exit_rates": _pooled_rates(r, 10)},
                                     {"snr_db": "all", **r["all"], "exit_rates": _pooled_rates(r, None)}]
        for row in rows:
            cells = [str(row["snr_db"])] + [f"{100 * e:.0f} %" for e in row["exit_rates"]] + [
                f"{100 * row['accuracy']:.1f} %", f"{100 * row['plain_accuracy']:.1f} %", f"{row['mean_flops'] / 1e6:.2f}",
                f"{row['mean_flops'] / r['plain_flops']:.0%}", _share(row.get("no_loss_bound_flops"), r["plain_flops"]),
                f"{row['ms_per_frame']:.4f}", f"{row['plain_ms_per_frame']:.4f}",
                f"{_speed_up(row):.2f}x"]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _speed_up(row):
    """A per-SNR row's paired speed-up; pooled rows (and older results): the ratio of mean times."""
    return row.get("speed_up") or row["plain_ms_per_frame"] / row["ms_per_frame"]


def _share(flops, plain_flops):
    return "" if flops is None else f"{flops / plain_flops:.0%}"  # results measured before the bound existed


def _pooled_rates(r, min_snr):
    keep = [x for x in r["per_snr"] if min_snr is None or x["snr_db"] >= min_snr]
    n = sum(x["n"] for x in keep)
    return [sum(x["exit_rates"][k] * x["n"] for x in keep) / n for k in range(len(r["exit_flops"]))]


_RUN_NAME = re.compile(r"(?P<architecture>.+?)_ee(?:-(?P<scheme>.+?))?-p(?P<placement>\d+)(?:-(?P<rule>.+))?$")


def _line_keys(name, policy):
    """(architecture, training scheme, exit placement, exit rule) read from a run's name
    (``<architecture>_ee[-<scheme>]-p<block>[-<rule>]``, as the study names them); a name
    of another form is its own architecture."""
    m = _RUN_NAME.match(name)
    if not m:
        return name, "", "", policy
    return m["architecture"], m["scheme"] or "heads", m["placement"], policy


def figure(results):
    """One row per architecture, one column per figure (frames leaving early, measured speed-up,
    accuracy change) against SNR: colour by training scheme, line style and marker by exit
    placement, hollow markers for a second exit rule; each row's legend beside it, where it hides no curve."""
    plt = pyplot()

    names = [Path(r["model"]).stem for r in results]
    keys = [_line_keys(name, r["policy"]) for name, r in zip(names, results)]
    # one style per run over the whole figure: a scheme has its colour in every row
    styles = line_styles([(scheme, placement, placement, rule) for _, scheme, placement, rule in keys],
                         panels=[key[0] for key in keys])
    rows = {}
    for name, r, key, style in zip(names, results, keys, styles):
        rows.setdefault(key[0], []).append((name, r, style))
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 3.3 * len(rows)), squeeze=False, sharex=True)
    for row, (arch, runs) in zip(axes, rows.items()):
        for name, r, style in runs:
            snr = [x["snr_db"] for x in r["per_snr"]]
            figures = ([100 * (1 - x["exit_rates"][-1]) for x in r["per_snr"]], [_speed_up(x) for x in r["per_snr"]],
                       [100 * (x["accuracy"] - x["plain_accuracy"]) for x in r["per_snr"]])
            for ax, values in zip(row, figures):
                ax.plot(snr, values, ms=4, lw=1.2, label=f"{name} ({r['policy']})", **style)
        for ax, label in zip(row, ("frames leaving early (%)", "measured speed-up vs plain (x)", "accuracy change (pp)")):
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        row[1].axhline(1.0, color="k", lw=0.8)
        row[2].axhline(0.0, color="k", lw=0.8)
        row[0].set_title(arch, loc="left", fontweight="bold")
    for ax in axes[-1]:
        ax.set_xlabel("SNR (dB)")
    fig.tight_layout()
    for row in axes:
        legend_beside(row[-1], fontsize=7)
    return fig


def plot(results, path):
    save_figure(figure(results), path)


def write_exits_report(result_paths, markdown_path=None, json_path=None, plot_path=None, previous=None):
    """Tables and plots over exits-eval results; with ``previous`` (an earlier report's JSON) its
    models that were not measured again keep their rows, in their places, and new ones follow."""
    results = [json.loads(Path(p).read_text()) for p in result_paths]
    if previous and Path(previous).is_file():
        fresh = {Path(r["model"]).stem: r for r in results}
        kept = [fresh.pop(Path(r["model"]).stem, r) for r in json.loads(Path(previous).read_text())]
        results = kept + list(fresh.values())
    table = markdown(results)
    if markdown_path:
        write_markdown(markdown_path, table)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1) + "\n")
    if plot_path:
        plot(results, plot_path)
    return table
