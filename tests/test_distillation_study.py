"""The distillation study (training/studies/distillation.py, apps/distillation_study): every
committed experiment planned, teachers before students; the shared runner's plan, freshness check
and kept rows, asserted on the plan itself."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, _SHIM
from gnuradio.modrec.training.studies import distillation, plan_finish, plan_training
from gnuradio.modrec.training.studies.runner import parse_args, run_state

STUDY = ROOT / "apps" / "distillation_study"
STUDENTS = [f"{s}{m}" for s in ("cnn3", "mobilenet1d", "mini_inception_resnet") for m in ("", "-kd", "-skd", "-nkd", "-bdkd")]
STUDENTS.append("mobilenet1d-skd-from-clst-cpu")  # a student of the CPU-sized teacher


def plans(tmp_path, *argv):
    args, _ = parse_args(distillation.STUDY, ROOT, ["--runs", str(tmp_path), *argv])
    return plan_training(distillation.STUDY, args), plan_finish(distillation.STUDY, args)


def value(cmd, flag):
    return cmd[cmd.index(flag) + 1]


def test_plan_covers_the_study_in_order(tmp_path):
    jobs, finish = plans(tmp_path, "--device", "cpu")
    trained = [os.path.basename(value(job.cmd, "--config"))[: -len(".yaml")] for job in jobs]
    assert [job.name for job in jobs] == trained
    assert trained[:3] == ["inception_resnet", "clst", "clst-cpu"]  # students need the teachers' checkpoints
    assert sorted(trained[3:]) == sorted(STUDENTS)
    steps = dict(finish.steps)
    for experiment in trained:  # each teacher and student ships: ONNX + card in models/
        export, evaluate, *online_teacher = steps[experiment]
        # --force: finishing again regenerates the shipped model and its card
        assert export[-6:] == ["export", "--checkpoint", f"{tmp_path}/{experiment}/best.pt", "--out",
                               f"{ROOT}/models/{experiment}.onnx", "--force"]
        assert "--force" in evaluate
        assert value(evaluate, "--card") == f"{ROOT}/models/{experiment}.md" and value(evaluate, "--device") == "cpu"
        # bdkd trains its teacher beside the student: that teacher is taken out of the run and ships too
        assert bool(online_teacher) == experiment.endswith("-bdkd"), experiment
        if online_teacher:
            take, export, evaluate = online_teacher
            teacher = f"{tmp_path}/{experiment}-teacher"
            assert take[-6:] == ["online-teacher", "--checkpoint", f"{tmp_path}/{experiment}/best.pt", "--out",
                                 f"{teacher}/best.pt", "--force"]
            assert value(export, "--checkpoint") == f"{teacher}/best.pt"
            assert value(export, "--out") == f"{ROOT}/models/{experiment}-teacher.onnx"
            assert value(evaluate, "--card") == f"{ROOT}/models/{experiment}-teacher.md"
            assert f"{teacher}/eval/summary.json" in finish.report
    # teachers: three trained on their own, three trained beside a bdkd student
    assert "report" in finish.report and finish.report.count("--teacher") == 6 and finish.report.count("--student") == 16


def test_the_app_prints_the_plan_it_runs(tmp_path):
    result = subprocess.run([sys.executable, str(STUDY), "--dry-run", "--runs", str(tmp_path), "--only", "cnn3*"],
                            capture_output=True, text=True, env={"PYTHONPATH": str(_SHIM), "PATH": "/usr/bin:/bin"},
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    shown = [line[2:] for line in result.stdout.splitlines() if line.startswith("$ ")]
    jobs, finish = plans(tmp_path, "--dry-run", "--only", "cnn3*")
    planned = [job.cmd for job in jobs] + [step for _, steps in finish.steps for step in steps] + [finish.report]
    assert len(shown) == len(planned) == 5 + 5 * 2 + 3 + 1  # train, export+evaluate, cnn3-bdkd's teacher, report
    for line, cmd in zip(shown, planned):
        assert line.split()[1:] == [str(part) for part in cmd][1:]  # the interpreter's path may differ


def test_torchrun_launches_training_only(tmp_path):
    jobs, finish = plans(tmp_path, "--only", "cnn3-kd", "--torchrun", "2")
    assert [job.name for job in jobs] == ["cnn3-kd"]
    assert jobs[0].cmd[1:7] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gnuradio.modrec.training"]
    assert all("torch.distributed.run" not in step for _, steps in finish.steps for step in steps)


def test_finished_runs_are_skipped_and_partial_ones_resumed(tmp_path):
    for experiment, epochs in (("cnn3", 30), ("cnn3-kd", 7)):
        run = tmp_path / experiment
        run.mkdir()
        (run / "last.pt").write_bytes(b"")
        (run / "history.json").write_text(json.dumps([{"epoch": e + 1} for e in range(epochs)]))
    jobs, _ = plans(tmp_path, "--only", "cnn3*")
    names = [job.name for job in jobs]
    assert "cnn3" not in names and names[0] == "cnn3-kd" and jobs[0].cmd[-1] == "--resume"
    assert all(job.cmd[-1] != "--resume" for job in jobs[1:])


def test_the_report_keeps_every_evaluated_run_when_only_one_is_finished(tmp_path):
    runs, models = tmp_path / "runs", tmp_path / "models"
    models.mkdir()
    for experiment in ("inception_resnet", "cnn3", "cnn3-kd", "mobilenet1d-nkd", "mobilenet1d"):
        run = runs / experiment
        (run / "eval").mkdir(parents=True)
        (run / "best.pt").write_bytes(b"")
        (run / "history.json").write_text(json.dumps([{"epoch": e + 1} for e in range(30)]))
        (models / f"{experiment}.onnx").write_bytes(b"")  # teachers ship beside the students
        if experiment != "mobilenet1d-nkd":  # trained, not evaluated yet: nothing to report
            (run / "eval" / "summary.json").write_text("{}")
        if experiment == "mobilenet1d":  # trained again after its evaluation: its row is stale
            os.utime(run / "eval" / "summary.json", (1, 1))
    args, _ = parse_args(distillation.STUDY, ROOT, ["--runs", str(runs), "--models-dir", str(models),
                                                    "--only", "cnn3-kd", "--stage", "finish"])
    finish = plan_finish(distillation.STUDY, args)
    assert [run.name for run in finish.rows] == ["inception_resnet", "cnn3", "cnn3-kd"]
    assert finish.steps == [("cnn3-kd", [])]  # evaluated after its training: nothing to redo
    rows = [finish.report[i + 1] for i, part in enumerate(finish.report) if part in ("--teacher", "--student")]
    assert rows == [str(runs / e / "eval" / "summary.json") for e in ("inception_resnet", "cnn3", "cnn3-kd")]


def test_run_state(tmp_path):
    run = tmp_path / "run"
    assert run_state(run, 3) == "new"
    run.mkdir()
    (run / "history.json").write_text(json.dumps([{"epoch": 1}, {"epoch": 2}]))
    assert run_state(run, 3) == "new"  # no checkpoint to resume from
    (run / "last.pt").write_bytes(b"")
    assert run_state(run, 3) == "partial"
    (run / "history.json").write_text(json.dumps([{"epoch": e} for e in (1, 2, 3)]))
    assert run_state(run, 3) == "done"
    (run / "last.pt").unlink()
    (run / "best.pt").write_bytes(b"")
    assert run_state(run, 3) == "done"  # a finished run packed for transport keeps only best.pt


def test_parallel_training_starts_a_student_after_its_teacher(tmp_path):
    """--jobs 2 on two tiny runs: the kd student waits for the teacher's checkpoint, both finish."""
    runs, configs = tmp_path / "runs", tmp_path / "configs"
    configs.mkdir()
    tiny = yaml.safe_load((ROOT / "configs" / "tiny-ci.yaml").read_text())
    teacher = {**tiny, "experiment": "inception_resnet"}
    student = {**yaml.safe_load((ROOT / "configs" / "tiny-ci-kd.yaml").read_text()), "experiment": "cnn3-kd"}
    student["distill"] = {**student["distill"], "teacher": {"checkpoint": str(runs / "inception_resnet" / "best.pt")},
                          "cache_teacher": False}
    plain = {**tiny, "experiment": "cnn3"}
    for config in (teacher, student, plain):
        (configs / f"{config['experiment']}.yaml").write_text(yaml.safe_dump(config))
    env = {"PYTHONPATH": str(_SHIM), "PATH": "/usr/bin:/bin", "MODREC_CACHE": str(tmp_path / "cache"),
           "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, str(STUDY), "--jobs", "2", "--stage", "train", "--device", "cpu",
                             "--runs", str(runs), "--configs", str(configs), "--only", "inception_resnet,cnn3,cnn3-kd"],
                            capture_output=True, text=True, env={**os.environ, **env}, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    events = [line.split()[:2] for line in result.stdout.splitlines() if line.split()[:1] in (["start"], ["done"])]
    assert events.index(["done", "inception_resnet"]) < events.index(["start", "cnn3-kd"])
    assert events.index(["start", "cnn3"]) < events.index(["done", "inception_resnet"])  # ran beside the teacher
    for experiment in ("inception_resnet", "cnn3", "cnn3-kd"):
        assert (runs / experiment / "best.pt").is_file(), experiment
        assert "epoch 1/1" in (runs / experiment / "train.log").read_text()
    assert " export " not in result.stdout  # --stage train stops before export

    # finish: what is trained gets exported, evaluated and reported; an untrained run is left out
    (configs / "mobilenet1d.yaml").write_text(yaml.safe_dump({**tiny, "experiment": "mobilenet1d"}))
    models = tmp_path / "models"
    models.mkdir()
    finish = [sys.executable, str(STUDY), "--stage", "finish", "--device", "cpu", "--runs", str(runs), "--configs",
              str(configs), "--models-dir", str(models), "--only", "inception_resnet,cnn3,cnn3-kd,mobilenet1d"]
    result = subprocess.run(finish, capture_output=True, text=True, env={**os.environ, **env}, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "note: mobilenet1d is not trained to the end; left out of the report" in result.stdout
    assert result.stdout.count(" export ") == 3 and (models / "cnn3-kd.onnx").is_file() and (models / "cnn3-kd.md").is_file()
    report = [line for line in result.stdout.splitlines() if " report " in line][0]
    assert report.count("--student ") == 2 and report.count("--teacher ") == 1 and "mobilenet1d" not in report
    again = subprocess.run(finish, capture_output=True, text=True, env={**os.environ, **env}, timeout=600, cwd=ROOT)
    assert again.returncode == 0 and " export " not in again.stdout  # evaluated after their last training


def test_a_failed_teacher_skips_its_students(tmp_path):
    runs, configs = tmp_path / "runs", tmp_path / "configs"
    configs.mkdir()
    # a valid config whose run fails: it learns from a file that is not a checkpoint
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    teacher = {**yaml.safe_load((ROOT / "configs" / "tiny-ci-kd.yaml").read_text()), "experiment": "inception_resnet"}
    teacher["distill"] = {**teacher["distill"], "teacher": {"checkpoint": str(tmp_path / "broken.pt")}}
    student = {**yaml.safe_load((ROOT / "configs" / "tiny-ci-kd.yaml").read_text()), "experiment": "cnn3-kd"}
    student["distill"] = {**student["distill"], "teacher": {"checkpoint": str(runs / "inception_resnet" / "best.pt")}}
    for config in (teacher, student):
        (configs / f"{config['experiment']}.yaml").write_text(yaml.safe_dump(config))
    args, _ = parse_args(distillation.STUDY, ROOT, ["--runs", str(runs), "--configs", str(configs),
                                                    "--only", "inception_resnet,cnn3-kd"])
    assert [(job.name, job.needs) for job in plan_training(distillation.STUDY, args)] == [
        ("inception_resnet", set()), ("cnn3-kd", {"inception_resnet"})]
    env = {"PYTHONPATH": str(_SHIM), "PATH": "/usr/bin:/bin", "MODREC_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, str(STUDY), "--jobs", "2", "--stage", "train", "--device", "cpu",
                             "--runs", str(runs), "--configs", str(configs), "--only", "inception_resnet,cnn3-kd"],
                            capture_output=True, text=True, env={**os.environ, **env}, timeout=600, cwd=ROOT)
    assert result.returncode != 0
    assert "FAIL  inception_resnet" in result.stdout and "skip cnn3-kd" in result.stdout
    assert "training failed for inception_resnet, cnn3-kd" in result.stderr
    assert not (runs / "cnn3-kd" / "best.pt").exists()


def test_a_missing_input_stops_the_study_before_anything_trains(tmp_path, capsys):
    """A student whose teacher is neither on disk nor in the plan is refused up front, and a
    teacher of the study is read from --runs wherever that is."""
    from gnuradio.modrec.training.studies import main

    runs = tmp_path / "elsewhere"
    args, _ = parse_args(distillation.STUDY, ROOT, ["--runs", str(runs), "--only", "inception_resnet,cnn3-kd"])
    student = next(job for job in plan_training(distillation.STUDY, args) if job.name == "cnn3-kd")
    assert student.needs == {"inception_resnet"}
    assert f"distill.teacher.checkpoint={runs}/inception_resnet/best.pt" in student.cmd
    with pytest.raises(SystemExit) as exit_:
        main(distillation.STUDY, ROOT, ["--runs", str(runs), "--only", "cnn3-kd", "--device", "cpu"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"cnn3-kd needs {runs}/inception_resnet/best.pt, which is missing" in err
    assert "apps/distillation_study --only inception_resnet" in err
    assert not runs.exists()  # nothing was trained or built


def test_options_are_not_abbreviated(tmp_path, capsys):
    # --models (pruning, early exits) must not silently become --models-dir here
    with pytest.raises(SystemExit):
        parse_args(distillation.STUDY, ROOT, ["--runs", str(tmp_path), "--models", "cnn3"])
    assert "unrecognized arguments: --models" in capsys.readouterr().err
