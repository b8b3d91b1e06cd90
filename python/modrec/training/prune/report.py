"""The pruning sweep's report: per architecture, a table of every (criterion, strategy, ratio)
run against the unpruned model, and an accuracy-vs-FLOPs plot with one line per criterion.

Input is ``modrec evaluate`` summaries (with --onnx, for size and measured ORT speed) of the
pruned runs plus each architecture's unpruned baseline, all on one test split. The speed column
is re-measured for all models side by side in one process (report.remeasure_speeds). Runs of one
sweep point with different seeds make one row: their mean, and the spread of the accuracy.
"""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..report import check_same_split, load_entry, remeasure_speeds
from ..tables_and_figures import cell, legend_beside, line_styles, pyplot, save_figure, write_markdown

COLUMNS = (
    ("accuracy", "all SNRs", "pct"),
    ("accuracy_snr_ge_10", "SNR ≥ 10", "pct"),
    ("peak_accuracy", "peak", "pct"),
    ("params", "params", "int"),
    ("flops", "FLOPs/frame", "mega"),
    ("onnx_kb", "ONNX KB", "float1"),
    ("ort_frames_per_s_batch256", "ORT frames/s (1 thread, b=256)", "int"),
)


def load_pruned(path):
    """A report row plus its pruning (criterion, strategy, ratio), read from the summary."""
    entry = load_entry(path)
    summary = json.loads(Path(path).read_text())
    training = summary.get("training") or {}
    pruning = training.get("pruning")
    if pruning:
        entry.update(criterion=pruning["criterion"], strategy=pruning["strategy"], ratio=float(pruning["ratio"]),
                     fine_tune=_fine_tune(training))
    else:
        entry.update(criterion="none", strategy="-", ratio=0.0, fine_tune="")
    entry["seed"] = training.get("seed", 0)
    return entry


ACCURACIES = ("accuracy", "accuracy_snr_ge_10", "peak_accuracy")


def aggregate(entries):
    """One row per sweep point (architecture, criterion, strategy, fine-tuning, ratio): the mean
    of its runs (one per seed) for every figure, ``runs`` (how many) and ``<accuracy>_std`` (the
    sample standard deviation over the runs; 0 for one run). The row keeps the first run's name."""
    points = defaultdict(list)
    for e in entries:
        points[(e["architecture"], e["criterion"], e["strategy"], e["fine_tune"], e["ratio"])].append(e)
    rows = []
    for runs in points.values():
        row = {k: v for k, v in runs[0].items() if k != "per_snr"}
        for key in ACCURACIES + tuple(k for k, _, _ in COLUMNS if k not in ACCURACIES):
            row[key] = float(np.mean([e[key] for e in runs]))
        for key in ACCURACIES:
            row[f"{key}_std"] = float(np.std([e[key] for e in runs], ddof=1)) if len(runs) > 1 else 0.0
        row["runs"] = len(runs)
        row["seeds"] = sorted(e["seed"] for e in runs)
        rows.append(row)
    return rows


def _fine_tune(training):
    """How a pruned model was fine-tuned: '2 ep', '10 ep + kd' (taught by the net it was pruned
    from) or '10 ep + nkd from inception_resnet' (taught by another net)."""
    config = training.get("config") or {}
    epochs = (config.get("train") or {}).get("epochs")
    method = training.get("distillation", "none")
    if method == "none":
        return f"{epochs} ep"
    teacher = ((training.get("distill") or {}).get("teacher") or {}).get("model")
    own = teacher is None or teacher == (config.get("model") or {}).get("name")
    return f"{epochs} ep + {method}" + ("" if own else f" from {teacher}")


def _line_name(e, rows):
    """criterion, (strategy) when not local, [fine-tuning] when the table holds more than one."""
    name = e["criterion"] if e["strategy"] == "local" else f"{e['criterion']} ({e['strategy']})"
    if len({r["fine_tune"] for r in rows if r["criterion"] != "none"}) > 1:
        name += f" [{e['fine_tune']}]"
    return name


def summarise(entries, budget_pp=0.5):
    """Per architecture: the baseline, and the largest FLOPs cut within ``budget_pp`` accuracy loss
    (of a point's mean over its seeds, when given aggregated rows)."""
    out = {}
    for arch, rows in _by_architecture(entries).items():
        base = next((e for e in rows if e["criterion"] == "none"), None)
        if base is None:
            continue
        within = [e for e in rows if e["criterion"] != "none" and 100 * (base["accuracy"] - e["accuracy"]) <= budget_pp]
        # the largest cut; among equal cuts (same pruned shapes) the more accurate point
        best = max(within, key=lambda e: (1 - e["flops"] / base["flops"], e["accuracy"]), default=None)
        out[arch] = {
            "baseline": base["name"],
            "baseline_accuracy": base["accuracy"],
            "budget_pp": budget_pp,
            "best_within_budget": best and {"name": best["name"], "flops_cut": 1 - best["flops"] / base["flops"],
                                             "accuracy_loss_pp": 100 * (base["accuracy"] - best["accuracy"]),
                                             "ort_speedup": best["ort_frames_per_s_batch256"] / base["ort_frames_per_s_batch256"],
                                             "runs": best.get("runs", 1)},
        }
    return out


def _by_architecture(entries):
    groups = defaultdict(list)
    for e in entries:
        groups[e["architecture"]].append(e)
    return groups


def markdown(entries):
    parts = []
    for arch, rows in _by_architecture(entries).items():
        base = next((e for e in rows if e["criterion"] == "none"), None)
        rows = sorted(rows, key=lambda e: (e["criterion"] != "none", _line_name(e, rows), e["ratio"]))
        header = ["criterion", "ratio"] + [label for _, label, _ in COLUMNS] + ["FLOPs cut", "Δ acc (pp)", "ORT speed-up"]
        lines = [f"#### {arch}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for e in rows:
            extra = ["", "", ""]
            if base is not None and e is not base:
                delta = f"{100 * (e['accuracy'] - base['accuracy']):+.2f}"
                if e.get("runs", 1) > 1:
                    delta += f" ± {100 * e['accuracy_std']:.2f} (n={e['runs']})"
                extra = [f"{100 * (1 - e['flops'] / base['flops']):.1f} %", delta,
                         f"{e['ort_frames_per_s_batch256'] / base['ort_frames_per_s_batch256']:.2f}x"]
            cells = [_line_name(e, rows) if e["criterion"] != "none" else "unpruned", f"{e['ratio']:.0%}" if e["ratio"] else "-"]
            lines.append("| " + " | ".join(cells + [cell(e[k], kind) for k, _, kind in COLUMNS] + extra) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def figure(arch, rows):
    """Accuracy (all SNRs and SNR >= 10) vs FLOPs/frame of one architecture's sweep: a line per
    criterion (colour) and way of pruning and fine-tuning (line style and marker), through the
    unpruned model (the star); the legend beside the axes, where it hides no curve."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    base = next((e for e in rows if e["criterion"] == "none"), None)
    lines = defaultdict(list)
    for e in rows:
        if e["criterion"] != "none":
            lines[_line_name(e, rows)].append(e)
    names = sorted(lines)
    ways = [(lines[n][0]["strategy"], lines[n][0]["fine_tune"]) for n in names]
    styles = line_styles([(lines[n][0]["criterion"], way, way) for n, way in zip(names, ways)])
    for ax, key, label in zip(axes, ("accuracy", "accuracy_snr_ge_10"), ("all SNRs", "SNR ≥ 10 dB")):
        for name, style in zip(names, styles):
            pts = sorted(lines[name] + ([base] if base else []), key=lambda e: e["flops"])
            ax.errorbar([e["flops"] / 1e6 for e in pts], [100 * e[key] for e in pts],
                        yerr=[100 * e.get(f"{key}_std", 0.0) for e in pts], markersize=4, capsize=2, label=name, **style)
        if base:
            ax.plot([base["flops"] / 1e6], [100 * base[key]], "k*", markersize=11, label="unpruned", zorder=5)
        ax.set_xlabel("FLOPs/frame (M)")
        ax.set_ylabel(f"accuracy, {label} (%)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{arch}: pruning criteria, accuracy vs cost (test split)")
    fig.tight_layout()
    legend_beside(axes[-1], fontsize=8)
    return fig


def plot(entries, out_dir):
    """One PNG per architecture: accuracy (all SNRs and SNR >= 10) vs FLOPs/frame."""
    paths = []
    for arch, rows in _by_architecture(entries).items():
        path = Path(out_dir) / f"pruning-{arch}.png"
        save_figure(figure(arch, rows), path)
        paths.append(path)
    return paths


def write_pruning_report(summaries, markdown_path=None, json_path=None, plot_dir=None, budget_pp=0.5, remeasure=True):
    entries = [load_pruned(p) for p in summaries]
    if not entries:
        raise ValueError("no summaries given")
    check_same_split(entries)
    if remeasure:
        remeasure_speeds(entries)
    points = aggregate(entries)
    table = markdown(points)
    findings = summarise(points, budget_pp)
    if markdown_path:
        write_markdown(markdown_path, table)
    if json_path:
        rows = [{k: v for k, v in e.items() if k != "per_snr"} for e in entries]
        Path(json_path).write_text(json.dumps({"runs": rows, "points": points, "summary": findings}, indent=1) + "\n")
    if plot_dir:
        plot(points, plot_dir)
    return table, findings
