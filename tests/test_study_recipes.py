"""The pruning and early-exit studies (training/studies/): each recipe is its own config and its
own runs, asserted on the plan; the studies refuse an installed package older than the checkout."""

import argparse
import shutil
from pathlib import Path

import pytest
from conftest import ROOT
from gnuradio.modrec.training.studies import early_exit, plan_finish, plan_training, pruning, runner

STUDIES = {"pruning_study": pruning.STUDY, "early_exit_study": early_exit.STUDY}


def parse(app, tmp_path, *argv):
    return runner.parse_args(STUDIES[app], ROOT, ["--dry-run", "--runs", str(tmp_path), *argv])[0]


def training_plan(app, tmp_path, *argv):
    """The training commands a dry run plans, as {run name: argv list} in order."""
    return {job.name: job.cmd for job in plan_training(STUDIES[app], parse(app, tmp_path, *argv))}


def refused(app, tmp_path, capsys, *argv):
    """The error message of options the study refuses (exit status 2)."""
    with pytest.raises(SystemExit) as exit_:
        parse(app, tmp_path, *argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


def value(cmd, flag):
    return cmd[cmd.index(flag) + 1]


def settings(cmd):
    return [cmd[i + 1] for i, part in enumerate(cmd) if part == "--set"]


def test_pruning_recipes_use_their_configs_and_run_names(tmp_path):
    jobs = training_plan("pruning_study", tmp_path, "--models", "cnn3", "--criteria", "gamma-redundancy",
                         "--ratios", "0.4", "--recipes", "base,kd10")
    assert list(jobs) == ["cnn3-prune-gamma-redundancy-40", "cnn3-prune-kd10-gamma-redundancy-40"]
    base, kd10 = jobs.values()
    assert value(base, "--config") == f"{ROOT}/configs/cnn3-prune.yaml" and value(base, "--out") == f"{tmp_path}/cnn3-prune-gamma-redundancy-40"
    assert value(kd10, "--config") == f"{ROOT}/configs/cnn3-prune-kd10.yaml"
    assert value(kd10, "--out") == f"{tmp_path}/cnn3-prune-kd10-gamma-redundancy-40"
    # the pruned source comes from this study's runs directory, and so does kd10's teacher (the same net)
    assert all(f"prune.checkpoint={tmp_path}/cnn3/best.pt" in settings(cmd) for cmd in (base, kd10))
    assert not any(s.startswith("distill.teacher") for s in settings(base))
    assert f"distill.teacher.checkpoint={tmp_path}/cnn3/best.pt" in settings(kd10)


def test_pruning_seeds_are_runs_of_their_own(tmp_path, capsys):
    jobs = training_plan("pruning_study", tmp_path, "--models", "cnn3", "--criteria", "random", "--ratios", "0.3",
                         "--seeds", "0,2")
    assert [value(cmd, "--out") for cmd in jobs.values()] == [f"{tmp_path}/cnn3-prune-random-30", f"{tmp_path}/cnn3-prune-random-30-s2"]
    first, second = jobs.values()
    assert not any(s.startswith("seed=") for s in settings(first)) and "seed=2" in settings(second)
    assert "--seeds" in refused("pruning_study", tmp_path, capsys, "--models", "cnn3", "--seeds", "1,1")


def test_the_teacher_is_pruned_on_request_only_and_taught_by_itself(tmp_path):
    jobs = training_plan("pruning_study", tmp_path, "--models", "inception_resnet", "--criteria", "bn-gamma",
                         "--ratios", "0.37", "--recipes", "kd2")
    assert list(jobs) == ["inception_resnet-prune-kd2-bn-gamma-37"]
    cmd = jobs["inception_resnet-prune-kd2-bn-gamma-37"]
    assert value(cmd, "--out") == f"{tmp_path}/inception_resnet-prune-kd2-bn-gamma-37"
    assert f"prune.checkpoint={tmp_path}/inception_resnet/best.pt" in settings(cmd)
    assert f"distill.teacher.checkpoint={tmp_path}/inception_resnet/best.pt" in settings(cmd)
    default_sweep = training_plan("pruning_study", tmp_path, "--criteria", "bn-gamma", "--ratios", "0.37")
    assert list(default_sweep) == ["cnn3-prune-bn-gamma-37", "mobilenet1d-prune-bn-gamma-37", "mini_inception_resnet-prune-bn-gamma-37"]


def test_early_exit_recipes_use_their_configs_and_run_names(tmp_path):
    jobs = training_plan("early_exit_study", tmp_path, "--models", "mobilenet1d", "--placements", "2",
                         "--recipes", "heads,joint,two_phase")
    assert [value(cmd, "--out") for cmd in jobs.values()] == [
        f"{tmp_path}/mobilenet1d_ee-p2", f"{tmp_path}/mobilenet1d_ee-joint-p2", f"{tmp_path}/mobilenet1d_ee-two_phase-p2"]
    heads, joint, two_phase = jobs.values()
    # recipes that start from the trained twin take it from this study's runs directory; two_phase starts from scratch
    assert all(f"exits.init_from={tmp_path}/mobilenet1d/best.pt" in settings(cmd) for cmd in (heads, joint))
    assert not any("init_from" in s for s in settings(two_phase))
    assert "model.cfg.exits=[2]" in settings(heads)


def test_early_exit_placements_follow_each_students_block_count(tmp_path):
    jobs = training_plan("early_exit_study", tmp_path, "--placements", "1,3,8,9", "--recipes", "heads")
    assert list(jobs) == ["cnn3_ee-p1", "mobilenet1d_ee-p1", "mobilenet1d_ee-p3",
                          "mini_inception_resnet_ee-p1", "mini_inception_resnet_ee-p3", "mini_inception_resnet_ee-p8"]
    last = jobs["mini_inception_resnet_ee-p8"]
    assert value(last, "--config") == f"{ROOT}/configs/mini_inception_resnet_ee.yaml"
    assert f"exits.init_from={tmp_path}/mini_inception_resnet/best.pt" in settings(last)


def test_a_recipe_only_some_students_have_is_skipped_for_the_others(tmp_path, capsys):
    jobs = training_plan("pruning_study", tmp_path, "--models", "cnn3,mobilenet1d", "--criteria", "l1", "--ratios", "0.4",
                         "--recipes", "base,kd10")
    assert "no mobilenet1d-prune-kd10.yaml: recipe kd10 skipped for mobilenet1d" in capsys.readouterr().out
    assert list(jobs) == ["cnn3-prune-l1-40", "cnn3-prune-kd10-l1-40", "mobilenet1d-prune-l1-40"]


def test_an_unknown_recipe_names_the_missing_config(tmp_path, capsys):
    for app in ("pruning_study", "early_exit_study"):
        err = refused(app, tmp_path, capsys, "--models", "cnn3", "--recipes", "nosuch")
        assert "nosuch" in err and "does not exist" in err, err


def test_the_shared_options_mean_the_same_in_every_study(tmp_path, capsys):
    for app, argv in (("pruning_study", ["--models", "cnn3", "--criteria", "l1", "--ratios", "0.5"]),
                      ("early_exit_study", ["--models", "cnn3", "--recipes", "heads", "--placements", "1"])):
        (cmd,) = training_plan(app, tmp_path, *argv, "--jobs", "2", "--threads", "3", "--device", "cpu").values()
        assert value(cmd, "--threads") == "3" and value(cmd, "--device") == "cpu" and "--no-progress" in cmd
        (cmd,) = training_plan(app, tmp_path, *argv, "--torchrun", "2").values()
        assert "--nproc_per_node=2" in cmd and "--threads" not in cmd and "--no-progress" not in cmd
        assert "--only 'nothing*' matches no run" in refused(app, tmp_path, capsys, *argv, "--only", "nothing*")


def fake_run(run_dir, epochs, evaluated=True, stale=False, result="eval/summary.json"):
    """A run directory as the study leaves it: history, best.pt, its ONNX file and (maybe) its
    measurement ``result``."""
    import json
    import os

    (run_dir / "eval").mkdir(parents=True)
    (run_dir / "history.json").write_text(json.dumps([{"epoch": e + 1} for e in range(epochs)]))
    (run_dir / "best.pt").write_bytes(b"")
    (run_dir / f"{run_dir.name}.onnx").write_bytes(b"")
    if evaluated:
        (run_dir / result).write_text("{}")
        if stale:  # trained again after its evaluation
            os.utime(run_dir / result, (1, 1))


def test_pruning_report_keeps_runs_outside_the_grid_that_are_trained_and_evaluated(tmp_path):
    fake_run(tmp_path / "mobilenet1d-prune-l1-50", epochs=2)
    fake_run(tmp_path / "mobilenet1d-prune-l1-50-s1", epochs=2)  # another seed of the same point
    fake_run(tmp_path / "mobilenet1d-prune-random-70", epochs=2, stale=True)
    fake_run(tmp_path / "mobilenet1d-prune-bn-gamma-30", epochs=1)  # interrupted
    fake_run(tmp_path / "mobilenet1d-prune-l1-90", epochs=2, evaluated=False)
    finish = plan_finish(pruning.STUDY, parse("pruning_study", tmp_path, "--models", "cnn3", "--criteria", "l1",
                                              "--ratios", "0.3", "--stage", "finish"))
    report = finish.report
    assert "prune-report" in report
    assert f"{tmp_path}/mobilenet1d-prune-l1-50/eval/summary.json" in report
    assert f"{tmp_path}/mobilenet1d-prune-l1-50-s1/eval/summary.json" in report
    assert f"{tmp_path}/mobilenet1d/eval/summary.json" in report  # its baseline comes with it
    assert f"{tmp_path}/cnn3-prune-l1-30/eval/summary.json" in report
    for left_out in ("mobilenet1d-prune-random-70", "mobilenet1d-prune-bn-gamma-30", "mobilenet1d-prune-l1-90"):
        assert not any(left_out in arg for arg in report), left_out


def test_early_exit_report_keeps_runs_measured_since_their_training(tmp_path):
    fake_run(tmp_path / "mobilenet1d_ee-joint-p2", epochs=4, result="exits_eval.json")  # as many as its config says
    fake_run(tmp_path / "mobilenet1d_ee-joint-p1", epochs=3, result="exits_eval.json")  # interrupted
    fake_run(tmp_path / "mobilenet1d_ee-p3", epochs=3, result="exits_eval.json", stale=True)
    fake_run(tmp_path / "mobilenet1d_ee-p4", epochs=3, result="exits_eval.json", evaluated=False)
    finish = plan_finish(early_exit.STUDY, parse("early_exit_study", tmp_path, "--models", "cnn3", "--recipes", "heads",
                                                 "--placements", "1", "--stage", "finish"))
    assert [run.name for run in finish.rows] == ["cnn3_ee-p1", "mobilenet1d_ee-joint-p2"]
    assert finish.report[4:6] == [f"{tmp_path}/cnn3_ee-p1/exits_eval.json", f"{tmp_path}/mobilenet1d_ee-joint-p2/exits_eval.json"]
    (name, (export, measure)), = finish.steps
    assert name == "cnn3_ee-p1" and value(export, "--exit-policy") == "entropy"  # as configs/cnn3_ee.yaml says
    assert value(measure, "--plain") == f"{ROOT}/models/cnn3.onnx" and value(measure, "--data") == "DATA"


def test_a_study_refuses_an_installed_package_older_than_the_checkout(tmp_path, capsys):
    study = runner
    installed = Path(runner.__file__).resolve().parents[2]  # the package these tests import
    checkout = tmp_path / "checkout"
    (checkout / "python" / "modrec" / "training" / "studies").mkdir(parents=True)
    edited = checkout / "python" / "modrec" / "training" / "studies" / "runner.py"
    shutil.copy(installed / "training" / "studies" / "runner.py", edited)
    (checkout / "python" / "modrec" / "training" / "new_module.py").write_text("x = 1\n")  # not installed yet
    assert study.stale_install(checkout) == []  # same bytes: nothing stale
    assert study.stale_install(installed.parents[1]) == []  # the package is that checkout's own source
    edited.write_text(edited.read_text() + "\n# edited after the last install\n")
    assert study.stale_install(checkout) == ["training/studies/runner.py"]
    with pytest.raises(SystemExit):
        study.require_current_install(checkout, argparse.ArgumentParser(prog="pruning_study"))
    err = capsys.readouterr().err
    assert "training/studies/runner.py" in err and "make install" in err


def test_a_missing_source_or_twin_stops_the_study_before_anything_trains(tmp_path, capsys):
    from gnuradio.modrec.training.studies import main

    for study, argv, needed, hint in (
            (pruning.STUDY, ["--models", "cnn3", "--criteria", "l1", "--ratios", "0.5"], "cnn3/best.pt",
             "apps/distillation_study --only cnn3 trains it"),
            (early_exit.STUDY, ["--models", "cnn3", "--recipes", "heads", "--placements", "1"], "cnn3/best.pt",
             "modrec from-onnx --onnx")):
        with pytest.raises(SystemExit) as exit_:
            main(study, ROOT, ["--runs", str(tmp_path / "runs"), "--device", "cpu", *argv])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert f"needs {tmp_path}/runs/{needed}, which is missing" in err and hint in err, err
    assert not (tmp_path / "runs").exists()
