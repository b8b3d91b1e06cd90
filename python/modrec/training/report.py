"""Comparison report over evaluated models: one table (markdown + JSON) and one accuracy-vs-SNR plot.

Input is the ``summary.json`` that ``modrec evaluate`` writes for each model, all on the same test
split. For every distilled student the report also gives the fraction of the teacher-student gap
the distillation closed, against its non-distilled twin (same architecture, ``distillation`` =
``none``) and the teacher it learnt from (the run its training metadata names or, for an online
method, the teacher trained beside it in its run; when that teacher is not in the report, the best
teacher):

    gap closed = (acc_distilled - acc_twin) / (acc_teacher - acc_twin)

computed on peak accuracy (the figure the published results quote) and on accuracy over all SNRs;
100 % or more: the student reached its teacher. None (n/a in the table) where the teacher is not
above the twin: there is no gap to close.

An earlier report's rows (its JSON, ``previous``) stay in the table for models not given anew:
training runs do not outlive their machine, and a teacher whose run is gone keeps its row. When
speeds are timed side by side, such a row whose model file is gone keeps its earlier figure,
marked in the table.
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


EARLIER_MARK = " †"


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
    training = metadata.get("training") or {}
    teacher = ((training.get("distill") or {}).get("teacher")) or {}
    return {
        "name": name or Path(str(summary.get("model", path.parent.name))).stem,
        "role": role or "student",
        "architecture": summary.get("architecture"),
        "distillation": metadata.get(contract.DISTILLATION, "none"),
        # the teacher's run: the directory of the checkpoint it learnt from (runs/<teacher>/best.pt)
        "teacher": _run_name(teacher.get("checkpoint")),
        # an online method's teacher has no run of its own: it is the teacher row trained beside
        # this one's run (online_teacher.py writes training.online_teacher_of)
        "online_teacher": bool(teacher.get("online")),
        "run": _run_name((training.get("checkpoint") or {}).get("path")),
        "trained_beside": _run_name((training.get("online_teacher_of") or {}).get("checkpoint")),
        "split": summary.get("split"),
        "data_root": summary.get("data_root"),
        "n_frames": summary.get("n_frames"),
        "per_snr": [(r["snr_db"], r["accuracy"]) for r in summary["per_snr"]],
        "summary_path": str(path),
        "model": summary.get("model"),  # the evaluated file (ONNX when evaluated with --onnx)
        **{key: summary[key] for key, _, _ in COLUMNS},
    }


def _run_name(checkpoint):
    """The run a checkpoint path belongs to (runs/<run>/best.pt -> <run>), or None."""
    return Path(checkpoint).parent.name if checkpoint else None


def previous_entries(json_path, given):
    """The rows of an earlier report (the JSON write_comparison writes) for models whose names
    are not among ``given``, each marked ``earlier``. ReportError names the file when it cannot
    be read or is not such a report."""
    path = Path(json_path)
    try:
        rows = json.loads(path.read_text())["models"]
        names = [row["name"] for row in rows]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ReportError(f"{path}: cannot read an earlier report's rows ({type(err).__name__}: {err})") from None
    given = set(given)
    kept = []
    for row, name in zip(rows, names):
        if name in given:
            continue
        missing = [key for key, _, _ in COLUMNS if key not in row] + [k for k in ("role", "per_snr") if k not in row]
        if missing:
            raise ReportError(f"{path}: row {name!r} lacks {', '.join(missing)}")
        kept.append({"architecture": None, "distillation": "none", "teacher": None, "online_teacher": False, "run": None,
                     "trained_beside": None, **row, "earlier": True})
    return kept


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
    whatever else ran then) by one side-by-side measurement of all of them. An earlier report's
    row whose model file is gone keeps its figure and is marked ``speed_earlier``."""
    def timeable(e):
        return bool(e.get("model")) and str(e["model"]).endswith(".onnx") and Path(e["model"]).is_file()

    missing = [e["summary_path"] for e in entries if not e.get("earlier") and not timeable(e)]
    if missing:
        raise ReportError(f"cannot time side by side: no ONNX model file recorded in {', '.join(missing)}")
    timed = [e for e in entries if timeable(e)]
    for e in entries:
        e["speed_earlier"] = not timeable(e)
    for e, fps in zip(timed, measure_side_by_side([e["model"] for e in timed]) if timed else []):
        e["ort_frames_per_s_batch256"] = fps


def gap_closed(entries):
    """Fraction of the gap to its teacher (the one it learnt from when that one is among the
    entries, else the best) that each distilled student closes over its twin."""
    teachers = {e["name"]: e for e in entries if e["role"] == "teacher"}
    if not teachers:
        return {}
    best = max(teachers.values(), key=lambda e: e["peak_accuracy"])
    beside = {e["trained_beside"]: e for e in teachers.values() if e.get("trained_beside")}
    twins = {e["architecture"]: e for e in entries if e["role"] == "student" and e["distillation"] == "none"}
    result = {}
    for e in entries:
        twin = twins.get(e["architecture"])
        if e["role"] != "student" or e["distillation"] == "none" or twin is None:
            continue
        if e.get("online_teacher"):
            teacher = beside.get(e.get("run"), best)
        else:
            teacher = teachers.get(e.get("teacher"), best)
        result[e["name"]] = {
            metric: (e[metric] - twin[metric]) / (teacher[metric] - twin[metric])
            if teacher[metric] > twin[metric]
            else None
            for metric in ("peak_accuracy", "accuracy")
        }
        result[e["name"]]["teacher"] = teacher["name"]
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
        gap_cell = " / ".join("n/a" if gap[m] is None else f"{100 * gap[m]:.0f} %"
                              for m in ("peak_accuracy", "accuracy")) if gap else ""
        cells = [e["name"], e["role"], e["distillation"]] + [cell(e[key], kind) + (
            EARLIER_MARK if key == "ort_frames_per_s_batch256" and e.get("speed_earlier") else "")
            for key, _, kind in COLUMNS] + [gap_cell]
        lines.append("| " + " | ".join(cells) + " |")
    if any(e.get("speed_earlier") for e in entries):
        lines += ["", f"{EARLIER_MARK.strip()} timed in an earlier report, beside the models then: its model file "
                      "is no longer at hand to time beside these."]
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


def write_comparison(entries, markdown_path=None, json_path=None, plot_path=None, remeasure=False, previous=None):
    """Write the table (markdown), the rows (JSON) and the plot; returns the markdown table.
    ``remeasure``: time every model's ORT speed side by side in this process first.
    ``previous``: an earlier report's JSON whose rows for models not in ``entries`` are kept
    (teachers first, in their earlier order)."""
    if previous:
        earlier = previous_entries(previous, [e["name"] for e in entries])
        entries = ([e for e in earlier if e["role"] == "teacher"] + [e for e in entries if e["role"] == "teacher"]
                   + [e for e in earlier if e["role"] != "teacher"] + [e for e in entries if e["role"] != "teacher"])
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
