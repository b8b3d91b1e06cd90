"""Learning curves: validation accuracy against training frames seen, over training runs.

Issue 24 asks what fresh data buys a teacher: a run that draws new frames every epoch
(`data.fresh_frames`) sees epochs x 220k different frames, one on a fixed split the same 220k
again and again, so the runs compare on frames seen, not epochs. Each run's history
(<run>/history.json, a row per epoch, written by train.py and read by the studies too) has
``epoch``, ``val_acc`` (a fraction) and ``frames_seen`` (training frames drawn so far, counted
with repeats).

    modrec learning-curves runs/clst-cpu runs/mobilenet1d-fresh --plot curves.png --markdown curves.md
"""

import json
from pathlib import Path

from .tables_and_figures import legend_beside, line_styles, pyplot, save_figure, write_markdown

REQUIRED_COLUMNS = ("epoch", "val_acc", "frames_seen")


def load_curve(run):
    """{"name", "frames_seen" [int], "val_acc" [float, fraction], "epochs" int} from ``run``'s
    history.json (``run``: a run directory or the file itself). ValueError names the file when it
    is missing, unreadable, empty or written before frames were counted (no ``frames_seen``)."""
    path = Path(run)
    path = path / "history.json" if path.is_dir() else path
    if not path.is_file():
        raise ValueError(f"{path}: no such history (expected a run directory with history.json, as modrec train writes)")
    try:
        rows = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read a training history ({e})") from None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path}: expected a list with one row per epoch, found {type(rows).__name__} "
                         f"{'with none' if rows == [] else ''}".rstrip())
    missing = [c for c in REQUIRED_COLUMNS if c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: expected columns {list(REQUIRED_COLUMNS)}, missing {missing} (runs trained "
                         f"before frames were counted have no frames_seen)")
    try:
        frames = [int(r["frames_seen"]) for r in rows]
        acc = [float(r["val_acc"]) for r in rows]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: expected numbers in frames_seen and val_acc in every row ({e!r})") from None
    return {"name": path.parent.name, "frames_seen": frames, "val_acc": acc, "epochs": int(rows[-1]["epoch"])}


def curves_table(curves):
    """Markdown: per run, epochs, frames seen, the best validation accuracy and where it came,
    and the accuracy after 1, 2 and 4 million frames (n/a before a run got there)."""
    marks = (1_000_000, 2_000_000, 4_000_000)
    lines = ["| run | epochs | frames seen | best val acc | at frames | " + " | ".join(f"val acc at {m // 10**6} M"
                                                                                   for m in marks) + " |",
             "|---|---|---|---|---|" + "---|" * len(marks)]
    for c in curves:
        best = max(range(len(c["val_acc"])), key=c["val_acc"].__getitem__)
        at = []
        for m in marks:
            reached = [a for f, a in zip(c["frames_seen"], c["val_acc"]) if f >= m]
            at.append(f"{100 * reached[0]:.1f} %" if reached else "n/a")
        lines.append(f"| {c['name']} | {c['epochs']} | {c['frames_seen'][-1]:,} | {100 * c['val_acc'][best]:.1f} % | "
                     f"{c['frames_seen'][best]:,} | " + " | ".join(at) + " |")
    return "\n".join(lines)


def plot_curves(curves, path, title="validation accuracy against training frames seen"):
    """One line per run, frames seen on a log axis (a run's early epochs and its last ones both
    readable), accuracy in %; written to ``path`` (PNG)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for c, style in zip(curves, line_styles([(c["name"], c["name"], c["name"]) for c in curves])):
        ax.plot(c["frames_seen"], [100 * a for a in c["val_acc"]], label=c["name"], markersize=4, **style)
    ax.set_xscale("log")
    ax.set_xlabel("training frames seen (with repeats)")
    ax.set_ylabel("validation accuracy, all SNRs (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    legend_beside(ax, fontsize=8)
    save_figure(fig, path)


def write_learning_curves(runs, markdown_path=None, plot_path=None):
    """Load every run's curve, write the table (between a file's results markers, if it has
    them) and the plot where asked; returns the table."""
    curves = [load_curve(r) for r in runs]
    table = curves_table(curves)
    if markdown_path:
        write_markdown(markdown_path, table)
    if plot_path:
        plot_curves(curves, plot_path)
    return table
