"""The comparison report: rows from evaluation summaries, gap closed by distillation, markers."""

import json

import pytest

from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.report import ReportError, gap_closed, load_entry, markdown_table, write_comparison


def summary(tmp_path, name, architecture, distillation, peak, overall, split="test", root="/data/a"):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({
        "model": f"models/{name}.onnx", "architecture": architecture, "split": split, "data_root": root,
        "n_frames": 100, "accuracy": overall, "accuracy_snr_ge_0": overall + 0.1,
        "accuracy_snr_ge_10": overall + 0.2, "peak_accuracy": peak, "params": 1234, "flops": 2_500_000,
        "onnx_kb": 12.3, "ort_frames_per_s_batch256": 9876.4, "ece": 0.0123,
        "per_snr": [{"snr_db": -10, "accuracy": overall - 0.2}, {"snr_db": 10, "accuracy": peak}],
        "metadata": {"distillation": distillation},
    }))
    return path


@pytest.fixture
def entries(tmp_path):
    return [
        load_entry(summary(tmp_path, "teacher_a", "inception_resnet", "none", 0.90, 0.60), "teacher"),
        load_entry(summary(tmp_path, "teacher_b", "clst", "none", 0.80, 0.55), "teacher"),
        load_entry(summary(tmp_path, "cnn3", "cnn3", "none", 0.70, 0.40)),
        load_entry(summary(tmp_path, "cnn3_kd", "cnn3", "kd", 0.85, 0.50)),
    ]


def test_gap_closed_against_best_teacher_and_twin(entries):
    gaps = gap_closed(entries)
    assert list(gaps) == ["cnn3_kd"]
    # peak: (0.85 - 0.70) / (0.90 - 0.70) = 0.75; all SNRs: (0.50 - 0.40) / (0.60 - 0.40) = 0.5
    assert gaps["cnn3_kd"]["peak_accuracy"] == pytest.approx(0.75)
    assert gaps["cnn3_kd"]["accuracy"] == pytest.approx(0.5)
    assert gaps["cnn3_kd"]["teacher"] == "teacher_a" and gaps["cnn3_kd"]["twin"] == "cnn3"


def test_table_json_plot_and_markers(entries, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Models\n\nprose before\n<!-- results:begin -->\nold table\n<!-- results:end -->\nprose after\n")
    table = write_comparison(entries, readme, tmp_path / "results.json", tmp_path / "acc.png")
    text = readme.read_text()
    assert "old table" not in text and text.startswith("# Models\n\nprose before\n") and text.endswith("prose after\n")
    row = next(line for line in table.splitlines() if line.startswith("| cnn3_kd "))
    assert row == "| cnn3_kd | student | kd | 50.0 % | 60.0 % | 70.0 % | 85.0 % | 1,234 | 2.50 M | 12.3 | 9,876 | 0.012 | 75 % / 50 % |"
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [m["name"] for m in saved["models"]] == ["teacher_a", "teacher_b", "cnn3", "cnn3_kd"]
    assert saved["gap_closed"]["cnn3_kd"]["peak_accuracy"] == pytest.approx(0.75)
    assert (tmp_path / "acc.png").stat().st_size > 1000


def test_refuses_mixed_test_splits(tmp_path):
    a = load_entry(summary(tmp_path, "a", "cnn3", "none", 0.7, 0.4))
    b = load_entry(summary(tmp_path, "b", "cnn3", "kd", 0.8, 0.5, root="/data/other"))
    with pytest.raises(ReportError, match="not measured on one test split"):
        write_comparison([a, b])


def test_incomplete_summary_is_named(tmp_path):
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"accuracy": 0.5}))
    with pytest.raises(ReportError, match=r"partial.json: summary lacks accuracy_snr_ge_0"):
        load_entry(path)


def test_cli_report(tmp_path, capsys):
    t = summary(tmp_path, "teacher_a", "inception_resnet", "none", 0.9, 0.6)
    s = summary(tmp_path, "cnn3", "cnn3", "none", 0.7, 0.4)
    assert main(["report", "--teacher", str(t), "--student", str(s), "--markdown", str(tmp_path / "t.md")]) in (0, None)
    assert "| teacher_a | teacher | none |" in (tmp_path / "t.md").read_text()


def distilled_summary(tmp_path, name, teacher_run, peak, overall):
    """A distilled cnn3 whose training metadata names the teacher checkpoint it learnt from."""
    path = summary(tmp_path, name, "cnn3", "kd", peak, overall)
    data = json.loads(path.read_text())
    data["metadata"]["training"] = {"distill": {"teacher": {"checkpoint": f"runs/{teacher_run}/best.pt"}}}
    path.write_text(json.dumps(data))
    return path


def test_the_gap_is_to_the_teacher_a_student_learnt_from(entries, tmp_path):
    from_b = load_entry(distilled_summary(tmp_path, "cnn3_kd_b", "teacher_b", 0.80, 0.56))
    assert from_b["teacher"] == "teacher_b"
    gaps = gap_closed(entries + [from_b])
    # teacher_b: peak (0.80 - 0.70) / (0.80 - 0.70) = 1 (it reached its teacher); all (0.56 - 0.40) / 0.15
    assert gaps["cnn3_kd_b"]["teacher"] == "teacher_b"
    assert gaps["cnn3_kd_b"]["peak_accuracy"] == pytest.approx(1.0)
    assert gaps["cnn3_kd_b"]["accuracy"] == pytest.approx(0.16 / 0.15)
    # a teacher not in the report: the best one, as for students without metadata
    elsewhere = load_entry(distilled_summary(tmp_path, "cnn3_kd_c", "gone", 0.80, 0.50))
    assert gap_closed(entries + [elsewhere])["cnn3_kd_c"]["teacher"] == "teacher_a"


def test_an_online_student_is_set_against_the_teacher_trained_beside_it(entries, tmp_path):
    # bdkd: the student's metadata names no teacher checkpoint; the teacher row made from its run
    # (modrec online-teacher) says which run it was trained in
    student = summary(tmp_path, "cnn3_bdkd", "cnn3", "bdkd", 0.78, 0.46)
    data = json.loads(student.read_text())
    data["metadata"]["training"] = {"checkpoint": {"path": "runs/cnn3-bdkd/best.pt"},
                                    "distill": {"teacher": {"model": "clst", "online": True}}}
    student.write_text(json.dumps(data))
    teacher = summary(tmp_path, "cnn3-bdkd-teacher", "clst", "none", 0.75, 0.45)
    data = json.loads(teacher.read_text())
    data["metadata"]["training"] = {"online_teacher_of": {"checkpoint": "runs/cnn3-bdkd/best.pt"}}
    teacher.write_text(json.dumps(data))
    online = [load_entry(teacher, "teacher"), load_entry(student)]
    gaps = gap_closed(entries + online)
    assert gaps["cnn3_bdkd"]["teacher"] == "cnn3-bdkd-teacher"
    # peak (0.78 - 0.70) / (0.75 - 0.70) = 1.6: above the teacher it learnt from
    assert gaps["cnn3_bdkd"]["peak_accuracy"] == pytest.approx(1.6)
    # without its teacher's row: the best teacher, as for any student whose teacher is not shown
    assert gap_closed(entries + online[1:])["cnn3_bdkd"]["teacher"] == "teacher_a"
    # the link survives a report's JSON (kept rows of gone runs)
    write_comparison(entries + online, json_path=tmp_path / "results.json")
    kept = write_comparison(entries, json_path=tmp_path / "again.json", previous=tmp_path / "results.json")
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["gap_closed"]["cnn3_bdkd"]["teacher"] == "cnn3-bdkd-teacher", kept


def test_an_earlier_reports_rows_stay_for_models_not_given_anew(entries, tmp_path, monkeypatch):
    from gnuradio.modrec.training import report

    first = tmp_path / "first.json"
    write_comparison(entries, json_path=first)
    newer_cnn3 = load_entry(summary(tmp_path, "cnn3", "cnn3", "none", 0.72, 0.41))
    table = write_comparison([newer_cnn3], json_path=tmp_path / "second.json", previous=first)
    names = [line.split(" | ")[0][2:] for line in table.splitlines()[2:]]
    assert names == ["teacher_a", "teacher_b", "cnn3_kd", "cnn3"]  # teachers first, the given row replaces its own
    assert "| cnn3 | student | none | 41.0 % |" in table
    saved = json.loads((tmp_path / "second.json").read_text())
    assert [m.get("earlier", False) for m in saved["models"]] == [True, True, True, False]
    assert saved["gap_closed"]["cnn3_kd"]["peak_accuracy"] == pytest.approx((0.85 - 0.72) / (0.90 - 0.72))

    # timed side by side: rows whose model file is gone keep their earlier speed, marked
    model = tmp_path / "cnn3.onnx"
    model.write_bytes(b"not read: timing is replaced below")
    newer_cnn3["model"] = str(model)
    monkeypatch.setattr(report, "measure_side_by_side", lambda paths: [1111.0 for _ in paths])
    table = write_comparison([newer_cnn3], previous=first, remeasure=True)
    assert "| cnn3 | student | none | 41.0 % | 51.0 % | 61.0 % | 72.0 % | 1,234 | 2.50 M | 12.3 | 1,111 | 0.012 |" in table
    assert "| teacher_a | teacher | none | 60.0 % | 70.0 % | 80.0 % | 90.0 % | 1,234 | 2.50 M | 12.3 | 9,876 † |" in table
    assert table.splitlines()[-1].startswith("† timed in an earlier report")


def test_an_unreadable_earlier_report_is_named(entries, tmp_path):
    bad = tmp_path / "old.json"
    bad.write_text(json.dumps({"rows": []}))
    with pytest.raises(ReportError, match="old.json: cannot read an earlier report's rows"):
        write_comparison(entries, previous=bad)
    bad.write_text(json.dumps({"models": [{"name": "x", "role": "teacher"}]}))
    with pytest.raises(ReportError, match="old.json: row 'x' lacks accuracy"):
        write_comparison(entries, previous=bad)


def test_no_gap_to_close_when_the_teacher_is_not_above_the_twin(entries, tmp_path):
    weak = load_entry(summary(tmp_path, "weak_teacher", "clst", "none", 0.69, 0.45), "teacher")
    student = load_entry(distilled_summary(tmp_path, "cnn3_kd_weak", "weak_teacher", 0.72, 0.46))
    gaps = gap_closed(entries + [weak, student])
    # peak: the teacher (0.69) is below the twin (0.70), no gap; all SNRs: (0.46 - 0.40) / (0.45 - 0.40)
    assert gaps["cnn3_kd_weak"]["peak_accuracy"] is None
    assert gaps["cnn3_kd_weak"]["accuracy"] == pytest.approx(1.2)
    row = next(line for line in markdown_table(entries + [weak, student], gaps).splitlines() if "cnn3_kd_weak" in line)
    assert row.endswith("| n/a / 120 % |")
