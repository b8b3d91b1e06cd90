"""apps/pruning_study and apps/early_exit_study: each recipe is its own config and its own runs;
the studies refuse an installed package older than the checkout."""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, _SHIM
from gnuradio.modrec.training import study


def plan(app, tmp_path, *args):
    result = subprocess.run([sys.executable, str(ROOT / "apps" / app), "--dry-run", "--stage", "train", "--runs", str(tmp_path), *args],
                            capture_output=True, text=True, env={"PYTHONPATH": str(_SHIM), "PATH": "/usr/bin:/bin"}, timeout=120, cwd=ROOT)
    return result, [line[2:] for line in result.stdout.splitlines() if line.startswith("$ ")]


def test_pruning_recipes_use_their_configs_and_run_names(tmp_path):
    result, steps = plan("pruning_study", tmp_path, "--models", "cnn3", "--criteria", "gamma-redundancy",
                         "--ratios", "0.4", "--recipes", "base,kd10")
    assert result.returncode == 0, result.stderr
    assert len(steps) == 2
    assert f"--config {ROOT}/configs/cnn3-prune.yaml --out {tmp_path}/cnn3-prune-gamma-redundancy-40 " in steps[0]
    assert f"--config {ROOT}/configs/cnn3-prune-kd10.yaml --out {tmp_path}/cnn3-prune-kd10-gamma-redundancy-40 " in steps[1]
    # the pruned source comes from this study's runs directory, and so does kd10's teacher (the same net)
    assert all(f"prune.checkpoint={tmp_path}/cnn3/best.pt" in s for s in steps)
    assert "distill.teacher" not in steps[0]
    assert f"distill.teacher.checkpoint={tmp_path}/cnn3/best.pt" in steps[1]


def test_pruning_seeds_are_runs_of_their_own(tmp_path):
    result, steps = plan("pruning_study", tmp_path, "--models", "cnn3", "--criteria", "random", "--ratios", "0.3",
                         "--seeds", "0,2")
    assert result.returncode == 0, result.stderr
    assert [s.split("--out ")[1].split()[0] for s in steps] == [f"{tmp_path}/cnn3-prune-random-30", f"{tmp_path}/cnn3-prune-random-30-s2"]
    assert "seed=" not in steps[0] and "--set seed=2" in steps[1]
    result, _ = plan("pruning_study", tmp_path, "--models", "cnn3", "--seeds", "1,1")
    assert result.returncode == 2 and "--seeds" in result.stderr


def test_the_teacher_is_pruned_on_request_only_and_taught_by_itself(tmp_path):
    result, steps = plan("pruning_study", tmp_path, "--models", "inception_resnet", "--criteria", "bn-gamma",
                         "--ratios", "0.37", "--recipes", "kd2")
    assert result.returncode == 0, result.stderr
    assert len(steps) == 1 and f"--out {tmp_path}/inception_resnet-prune-kd2-bn-gamma-37 " in steps[0]
    assert f"prune.checkpoint={tmp_path}/inception_resnet/best.pt" in steps[0]
    assert f"distill.teacher.checkpoint={tmp_path}/inception_resnet/best.pt" in steps[0]
    _, default_sweep = plan("pruning_study", tmp_path, "--criteria", "bn-gamma", "--ratios", "0.37")
    runs = [s.split("--out ")[1].split()[0].rsplit("/", 1)[1] for s in default_sweep]
    assert runs == ["cnn3-prune-bn-gamma-37", "mobilenet1d-prune-bn-gamma-37", "mini_inception_resnet-prune-bn-gamma-37"]


def test_early_exit_recipes_use_their_configs_and_run_names(tmp_path):
    result, steps = plan("early_exit_study", tmp_path, "--models", "mobilenet1d", "--placements", "2", "--recipes", "heads,joint,two_phase")
    assert result.returncode == 0, result.stderr
    assert [s.split("--out ")[1].split()[0] for s in steps] == [
        f"{tmp_path}/mobilenet1d_ee-p2", f"{tmp_path}/mobilenet1d_ee-joint-p2", f"{tmp_path}/mobilenet1d_ee-two_phase-p2"]
    # recipes that start from the trained twin take it from this study's runs directory; two_phase starts from scratch
    assert all(f"exits.init_from={tmp_path}/mobilenet1d/best.pt" in s for s in steps[:2])
    assert "init_from" not in steps[2]


def test_early_exit_placements_follow_each_students_block_count(tmp_path):
    result, steps = plan("early_exit_study", tmp_path, "--placements", "1,3,8,9", "--recipes", "heads")
    assert result.returncode == 0, result.stderr
    assert [s.split("--out ")[1].split()[0].rsplit("/", 1)[1] for s in steps] == [
        "cnn3_ee-p1", "mobilenet1d_ee-p1", "mobilenet1d_ee-p3",
        "mini_inception_resnet_ee-p1", "mini_inception_resnet_ee-p3", "mini_inception_resnet_ee-p8"]
    assert f"--config {ROOT}/configs/mini_inception_resnet_ee.yaml " in steps[-1]
    assert f"exits.init_from={tmp_path}/mini_inception_resnet/best.pt" in steps[-1]


def test_a_recipe_only_some_students_have_is_skipped_for_the_others(tmp_path):
    result, steps = plan("pruning_study", tmp_path, "--models", "cnn3,mobilenet1d", "--criteria", "l1", "--ratios", "0.4",
                         "--recipes", "base,kd10")
    assert result.returncode == 0, result.stderr
    assert "no mobilenet1d-prune-kd10.yaml: recipe kd10 skipped for mobilenet1d" in result.stdout
    assert [s.split("--out ")[1].split()[0].rsplit("/", 1)[1] for s in steps] == [
        "cnn3-prune-l1-40", "cnn3-prune-kd10-l1-40", "mobilenet1d-prune-l1-40"]


def test_an_unknown_recipe_names_the_missing_config(tmp_path):
    for app in ("pruning_study", "early_exit_study"):
        result, _ = plan(app, tmp_path, "--models", "cnn3", "--recipes", "nosuch")
        assert result.returncode == 2
        assert "nosuch" in result.stderr and "does not exist" in result.stderr, result.stderr


def fake_run(run_dir, epochs, evaluated=True, stale=False):
    """A run directory as the study leaves it: history, best.pt and (maybe) its evaluation."""
    import json
    import os

    (run_dir / "eval").mkdir(parents=True)
    (run_dir / "history.json").write_text(json.dumps([{"epoch": e + 1} for e in range(epochs)]))
    (run_dir / "best.pt").write_bytes(b"")
    if evaluated:
        (run_dir / "eval" / "summary.json").write_text("{}")
        if stale:  # trained again after its evaluation
            os.utime(run_dir / "eval" / "summary.json", (1, 1))


def test_pruning_report_keeps_runs_outside_the_grid_that_are_trained_and_evaluated(tmp_path):
    fake_run(tmp_path / "mobilenet1d-prune-l1-50", epochs=2)
    fake_run(tmp_path / "mobilenet1d-prune-l1-50-s1", epochs=2)  # another seed of the same point
    fake_run(tmp_path / "mobilenet1d-prune-random-70", epochs=2, stale=True)
    fake_run(tmp_path / "mobilenet1d-prune-bn-gamma-30", epochs=1)  # interrupted
    fake_run(tmp_path / "mobilenet1d-prune-l1-90", epochs=2, evaluated=False)
    result, steps = plan("pruning_study", tmp_path, "--models", "cnn3", "--criteria", "l1", "--ratios", "0.3",
                         "--stage", "finish")
    assert result.returncode == 0, result.stderr
    report = next(s for s in steps if " prune-report " in s).split()
    assert f"{tmp_path}/mobilenet1d-prune-l1-50/eval/summary.json" in report
    assert f"{tmp_path}/mobilenet1d-prune-l1-50-s1/eval/summary.json" in report
    assert f"{tmp_path}/mobilenet1d/eval/summary.json" in report  # its baseline comes with it
    assert f"{tmp_path}/cnn3-prune-l1-30/eval/summary.json" in report
    for left_out in ("mobilenet1d-prune-random-70", "mobilenet1d-prune-bn-gamma-30", "mobilenet1d-prune-l1-90"):
        assert not any(left_out in arg for arg in report), left_out


def test_a_study_refuses_an_installed_package_older_than_the_checkout(tmp_path, capsys):
    installed = Path(study.__file__).resolve().parents[1]  # the package these tests import
    checkout = tmp_path / "checkout"
    (checkout / "python" / "modrec" / "training").mkdir(parents=True)
    edited = checkout / "python" / "modrec" / "training" / "study.py"
    shutil.copy(installed / "training" / "study.py", edited)
    (checkout / "python" / "modrec" / "training" / "new_module.py").write_text("x = 1\n")  # not installed yet
    assert study.stale_install(checkout) == []  # same bytes: nothing stale
    assert study.stale_install(installed.parents[1]) == []  # the package is that checkout's own source
    edited.write_text(edited.read_text() + "\n# edited after the last install\n")
    assert study.stale_install(checkout) == ["training/study.py"]
    with pytest.raises(SystemExit):
        study.require_current_install(checkout, argparse.ArgumentParser(prog="pruning_study"))
    err = capsys.readouterr().err
    assert "training/study.py" in err and "make install" in err
