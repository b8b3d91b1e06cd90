"""Learning curves: validation accuracy against frames seen, read from runs' history.json."""

import json

import pytest

from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.learning_curves import curves_table, load_curve, write_learning_curves

FIELDS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "time_s", "frames_seen")


def run_dir(tmp_path, name, val_acc, frames_per_epoch=500_000, fields=FIELDS):
    """A run directory whose history.json is laid out as train.py writes it."""
    run = tmp_path / name
    run.mkdir()
    rows = [{"epoch": epoch, "lr": 1e-3, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0, "val_acc": acc,
             "time_s": 1.0, "frames_seen": epoch * frames_per_epoch} for epoch, acc in enumerate(val_acc, 1)]
    (run / "history.json").write_text(json.dumps([{k: row[k] for k in fields} for row in rows], indent=1))
    return run


def test_a_curve_is_read_from_the_history_train_writes(tmp_path):
    curve = load_curve(run_dir(tmp_path, "teacher", [0.3, 0.4, 0.45]))
    assert curve == {"name": "teacher", "frames_seen": [500_000, 1_000_000, 1_500_000],
                     "val_acc": [0.3, 0.4, 0.45], "epochs": 3}
    assert load_curve(tmp_path / "teacher" / "history.json") == curve


def test_the_table_compares_runs_on_frames_seen(tmp_path):
    fresh = load_curve(run_dir(tmp_path, "fresh", [0.30, 0.42, 0.41, 0.47, 0.50, 0.52, 0.53, 0.55]))
    fixed = load_curve(run_dir(tmp_path, "fixed", [0.35, 0.40, 0.44], frames_per_epoch=220_000))
    table = curves_table([fresh, fixed]).splitlines()
    assert table[0].startswith("| run | epochs | frames seen | best val acc | at frames | val acc at 1 M")
    assert table[2] == "| fresh | 8 | 4,000,000 | 55.0 % | 4,000,000 | 42.0 % | 47.0 % | 55.0 % |"
    # 660k frames seen: short of every mark
    assert table[3] == "| fixed | 3 | 660,000 | 44.0 % | 660,000 | n/a | n/a | n/a |"


def test_plot_and_markdown_between_markers(tmp_path):
    runs = [run_dir(tmp_path, "a", [0.3, 0.4]), run_dir(tmp_path, "b", [0.2, 0.35, 0.5])]
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:begin -->\nold\n<!-- results:end -->\nafter\n")
    plot = tmp_path / "curves.png"
    table = write_learning_curves(runs, readme, plot)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("after\n") and "old" not in text and table in text
    assert plot.stat().st_size > 10_000


@pytest.mark.parametrize("fields, match", [
    (tuple(f for f in FIELDS if f != "frames_seen"), r"missing \['frames_seen'\]"),
    (("epoch", "lr"), r"missing \['val_acc', 'frames_seen'\]"),
])
def test_histories_without_the_columns_are_named(tmp_path, fields, match):
    run = run_dir(tmp_path, "old", [0.3], fields=fields)
    with pytest.raises(ValueError, match=f"{run / 'history.json'}: expected columns .*{match}"):
        load_curve(run)


def test_missing_empty_and_garbled_histories_are_named(tmp_path):
    with pytest.raises(ValueError, match="nowhere: no such history"):
        load_curve(tmp_path / "nowhere")
    empty = run_dir(tmp_path, "empty", [])
    with pytest.raises(ValueError, match="empty/history.json: expected a list with one row per epoch, found list with none"):
        load_curve(empty)
    broken = run_dir(tmp_path, "broken", [0.3])
    (broken / "history.json").write_text('[{"epoch": 1,')
    with pytest.raises(ValueError, match="broken/history.json: cannot read a training history"):
        load_curve(broken)
    garbled = run_dir(tmp_path, "garbled", [0.3, 0.4])
    rows = json.loads((garbled / "history.json").read_text())
    rows[1]["val_acc"] = "high"
    (garbled / "history.json").write_text(json.dumps(rows))
    with pytest.raises(ValueError, match="garbled/history.json: expected numbers in frames_seen and val_acc"):
        load_curve(garbled)


def test_cli_learning_curves(tmp_path, capsys):
    run = run_dir(tmp_path, "clst", [0.3, 0.4])
    assert main(["learning-curves", str(run), "--plot", str(tmp_path / "c.png")]) in (0, None)
    assert "| clst | 2 | 1,000,000 | 40.0 % |" in capsys.readouterr().out
    assert (tmp_path / "c.png").is_file()
    assert main(["learning-curves", str(tmp_path / "missing")]) == 2
    assert "missing: no such history" in capsys.readouterr().err
