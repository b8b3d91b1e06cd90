"""Comparison report over evaluated models: one table (markdown + JSON) and one accuracy-vs-SNR plot.

Input is the ``summary.json`` that ``modrec evaluate`` writes for each model, all on the same test
split. For every distilled student the report also gives the fraction of the teacher-student gap
the distillation closed, against its non-distilled twin (same architecture, ``distillation`` =
``none``) and the best teacher:

    gap closed = (acc_distilled - acc_twin) / (acc_teacher - acc_twin)

computed on peak accuracy (the figure the published results quote) and on accuracy over all SNRs.
"""

import json
from pathlib import Path

import numpy as np

from .. import contract
from .tables_and_figures import cell, legend_beside, line_styles, pyplot, save_figure, write_markdown

COLUMNS = (
    ("accuracy", "all SNRs", "pct"),
    ("accuracy_snr_ge_0", "SNR ≥ 0", "pct"),
    ("accuracy_snr_ge_10", "SNR ≥ 10", "pct"),
    ("peak_accuracy", "peak", "pct"),
    ("params", "params", "int"),
    ("flops", "FLOPs/frame", "mega"),
    ("onnx_kb", "ONNX KB", "float1"),
    ("ort_frames_per_s_batch256", "ORT frames/s (1 thread, batch 256)", "int"),
    ("ece", "ECE", "float3"),
)


class ReportError(ValueError):
    pass


def load_entry(path, role=None, name=None):
    """One row: the summary's figures plus name, role (teacher/student) and distillation method."""
    path = Path(path)
    try:
        summary = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ReportError(f"{path}: cannot read an evaluation summary ({err})") from None
    missing = [key for key, _, _ in COLUMNS if key not in summary]
    if missing:
        raise ReportError(f"{path}: summary lacks {', '.join(missing)} (evaluate with --onnx to get sizes and speed)")
    metadata = summary.get("metadata") or {}
    return {
        "name": name or Path(str(summary.get("model", path.parent.name))).stem,
        "role": role or "student",
        "architecture": summary.get("architecture"),
        "distillation": metadata.get(contract.DISTILLATION, "none"),
        "split": summary.get("split"),
        "data_root": summary.get("data_root"),
        "n_frames": summary.get("n_frames"),
        "per_snr": [(r["snr_db"], r["accuracy"]) for r in summary["per_snr"]],
        "summary_path": str(path),
        "model": summary.get("model"),  # the evaluated file (ONNX when evaluated with --onnx)
        **{key: summary[key] for key, _, _ in COLUMNS},
    }


def measure_side_by_side(paths, batch=256, rounds=5, calls=4):
    """ORT frames/s (1 thread, ``batch`` frames per call) of every model, timed in one process
    in paired rounds (runtime/timing.py), so the speed ratios in the report are not ratios of
    measurements taken at different times."""
    import numpy as np

    from ..runtime import load_model
    from ..runtime.timing import paired_times

    models = [load_model(p, threads=1) for p in paths]
    frames = np.random.default_rng(0).standard_normal((calls * batch, 2, models[0].frame_len)).astype(np.float32)
    times = paired_times({k: m.predict for k, m in enumerate(models)}, frames, batch, rounds)
    return [1.0 / float(np.median(times[k])) for k in range(len(models))]


def remeasure_speeds(entries):
    """Replace the entries' ORT speeds (each measured when its model was evaluated, under
    whatever else ran then) by one side-by-side measurement of all of them."""
    missing = [e["summary_path"] for e in entries if not (e.get("model") and str(e["model"]).endswith(".onnx"))]
    if missing:
        raise ReportError(f"cannot time side by side: no ONNX model recorded in {', '.join(missing)}")
    for e, fps in zip(entries, measure_side_by_side([e["model"] for e in entries])):
        e["ort_frames_per_s_batch256"] = fps


def gap_closed(entries):
    """Fraction of the gap to the best teacher that each distilled student closes over its twin."""
    teachers = [e for e in entries if e["role"] == "teacher"]
    if not teachers:
        return {}
    best = max(teachers, key=lambda e: e["peak_accuracy"])
    twins = {e["architecture"]: e for e in entries if e["role"] == "student" and e["distillation"] == "none"}
    result = {}
    for e in entries:
        twin = twins.get(e["architecture"])
        if e["role"] != "student" or e["distillation"] == "none" or twin is None:
            continue
        result[e["name"]] = {
            metric: (e[metric] - twin[metric]) / (best[metric] - twin[metric])
            if best[metric] != twin[metric]
            else float("nan")
            for metric in ("peak_accuracy", "accuracy")
        }
        result[e["name"]]["teacher"] = best["name"]
        result[e["name"]]["twin"] = twin["name"]
    return result


def check_same_split(entries):
    keys = {(e["split"], e["data_root"], e["n_frames"]) for e in entries}
    if len(keys) > 1:
        listing = "\n  ".join(f"{e['name']}: split {e['split']} of {e['data_root']} ({e['n_frames']} frames)" for e in entries)
        raise ReportError(f"the summaries were not measured on one test split:\n  {listing}")


def markdown_table(entries, gaps):
    header = ["model", "role", "distillation"] + [label for _, label, _ in COLUMNS] + ["gap closed (peak / all)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in entries:
        gap = gaps.get(e["name"])
        gap_cell = f"{100 * gap['peak_accuracy']:.0f} % / {100 * gap['accuracy']:.0f} %" if gap else ""
        cells = [e["name"], e["role"], e["distillation"]] + [cell(e[key], kind) for key, _, kind in COLUMNS] + [gap_cell]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure_accuracy_vs_snr(entries, title="accuracy vs SNR"):
    """Accuracy vs SNR, one line per model: colour by architecture, line style and marker by
    distillation method (no two models alike), teachers drawn thicker; the legend beside the
    axes, where it hides no curve."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = line_styles([(e["architecture"], e["distillation"], e["distillation"]) for e in entries])
    for e, style in zip(entries, styles):
        snr, acc = np.array(e["per_snr"], dtype=float).T
        ax.plot(snr, 100 * acc, markersize=4, linewidth=2.2 if e["role"] == "teacher" else 1.3,
                label=f"{e['name']} ({e['role']})", **style)
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    legend_beside(ax, fontsize=8)
    return fig


def plot_accuracy_vs_snr(entries, path, title="accuracy vs SNR"):
    save_figure(figure_accuracy_vs_snr(entries, title), path)


def write_comparison(entries, markdown_path=None, json_path=None, plot_path=None, remeasure=False):
    """Write the table (markdown), the rows (JSON) and the plot; returns the markdown table.
    ``remeasure``: time every model's ORT speed side by side in this process first."""
    if not entries:
        raise ReportError("no summaries given")
    check_same_split(entries)
    if remeasure:
        remeasure_speeds(entries)
    gaps = gap_closed(entries)
    table = markdown_table(entries, gaps)
    if markdown_path:
        write_markdown(markdown_path, table)
    if json_path:
        rows = [{k: v for k, v in e.items() if k != "per_snr"} | {"per_snr": e["per_snr"]} for e in entries]
        Path(json_path).write_text(json.dumps({"models": rows, "gap_closed": gaps}, indent=1) + "\n")
    if plot_path:
        plot_accuracy_vs_snr(entries, plot_path)
    return table
