"""The knowledge-distillation study, end to end: teachers, students with and without each
distillation method, ONNX export, evaluation on one test split, and the comparison report.

    apps/distillation_study [--device cuda] [--jobs 8 | --torchrun 4] [--only 'cnn3*'] [--stage train]

Every run is a committed experiment config (configs/<experiment>.yaml) and goes through the
`modrec` command, so each step can also be run by hand. Finished runs are skipped and
interrupted ones resumed, so the study can be spread over several jobs. Teachers and students
land in models/ (ONNX, model card, summary): users see what the students learnt from, the teachers
an online method (bdkd) trains beside its students included (``modrec online-teacher``). Hours on
a GPU; days on a 2-core CPU, where clst-cpu (ClST at half its widths) is the teacher that fits a
session and mobilenet1d-skd-from-clst-cpu the student that learns from it.

--jobs N trains up to N runs at once (one process each, log in runs/<experiment>/train.log); a
student that learns from a teacher's checkpoint starts when that teacher has finished. Small
students leave a GPU mostly idle (their steps are bound by kernel launches), so several runs on
one GPU finish far sooner than one after another. --stage train stops after training, --stage
finish only exports, evaluates and reports (e.g. training on a GPU box, evaluation where the
ORT speed column should be measured). The report (models/README.md, results.json,
accuracy_vs_snr.png) shows this invocation's runs and every other run of the study trained to
the end and evaluated since.
"""

import fnmatch
from pathlib import Path

import yaml

from ..online_teacher import teacher_run_dir
from .runner import PlannedRun, Study, evaluate_command, export_command, modrec_command

TEACHERS = ("inception_resnet", "clst", "clst-cpu")
STUDENTS = ("cnn3", "mobilenet1d", "mini_inception_resnet")
METHODS = ("kd", "skd", "nkd", "bdkd")
# students of a teacher other than the one the <student>-<method> configs name
OTHER_TEACHERS_STUDENTS = ("mobilenet1d-skd-from-clst-cpu",)


def experiments():
    """(experiment, role) in the order they must run: teachers first (students need them)."""
    runs = [(t, "teacher") for t in TEACHERS]
    for student in STUDENTS:
        runs.append((student, "student"))
        runs += [(f"{student}-{method}", "student") for method in METHODS]
    return runs + [(s, "student") for s in OTHER_TEACHERS_STUDENTS]


def _trains_its_teacher(run):
    """True for a run of an online method (bdkd): its teacher exists only inside its run."""
    method = (run.info["settings"].get("distill") or {}).get("method") or "none"
    if method == "none":
        return False
    from ..distill import get_distiller  # torch: imported only when a distilled run is finished

    return get_distiller(method).online


class DistillationStudy(Study):
    name = "distillation_study"
    doc = __doc__

    def _run(self, experiment, role, args):
        config = args.configs / f"{experiment}.yaml"
        settings = yaml.safe_load(config.read_text())
        return PlannedRun(experiment, config, settings["train"]["epochs"], info={"role": role, "settings": settings})

    def check_options(self, args, parser):
        for experiment, _ in experiments():
            config = args.configs / f"{experiment}.yaml"
            if not config.is_file() and any(fnmatch.fnmatch(experiment, p) for p in args.only):
                parser.error(f"{config} is missing (one config per experiment)")

    def planned_runs(self, args):
        runs = [self._run(e, role, args) for e, role in experiments() if (args.configs / f"{e}.yaml").is_file()]
        names = {run.name for run in runs}
        for run in runs:
            checkpoint = ((run.info["settings"].get("distill") or {}).get("teacher") or {}).get("checkpoint")
            if not checkpoint:
                continue
            # as the modrec command reads it: relative to the checkout
            path = (args.root / Path(checkpoint).expanduser()).resolve()
            teacher = path.parent.name
            if path.name == "best.pt" and teacher in names:
                # a teacher of this study: its run in --runs, which the student waits for
                path = args.runs / teacher / "best.pt"
                run.needs = {teacher}
                if path.resolve() != (args.root / Path(checkpoint).expanduser()).resolve():
                    run.overrides.append(f"distill.teacher.checkpoint={path}")
            run.inputs = [(path, f"apps/distillation_study --only {teacher} trains it")]
        return runs

    def runs_on_disk(self, args):
        return [run for run in self.planned_runs(args) if (args.runs / run.name).is_dir()]

    def onnx_path(self, run, args):
        return args.models_dir / f"{run.name}.onnx"

    def finish_steps(self, run, args):
        steps = super().finish_steps(run, args)
        steps[-1] += ["--card", str(args.models_dir / f"{run.name}.md"), "--force"]  # re-measured: card rewritten
        if _trains_its_teacher(run):
            # the teacher an online method trained beside the student: out of the run, then as any teacher
            teacher_dir = teacher_run_dir(args.runs / run.name)
            onnx = args.models_dir / f"{teacher_dir.name}.onnx"
            steps += [[*modrec_command(), "online-teacher", "--checkpoint", str(args.runs / run.name / "best.pt"),
                       "--out", str(teacher_dir / "best.pt"), "--force"],
                      export_command(teacher_dir, onnx),
                      evaluate_command(teacher_dir, onnx, teacher_dir / "eval", args,
                                       "--card", str(args.models_dir / f"{teacher_dir.name}.md"), "--force")]
        return steps

    def sort_rows(self, rows):
        order = [e for e, _ in experiments()]
        return sorted(rows, key=lambda run: order.index(run.name))

    def report_command(self, rows, args):
        cmd = [*modrec_command(), "report"]
        for run in rows:
            cmd += [f"--{run.info['role']}", str(self.result_path(run, args))]
            if _trains_its_teacher(run):
                cmd += ["--teacher", str(teacher_run_dir(args.runs / run.name) / "eval" / "summary.json")]
        models = args.models_dir
        # rows of runs no longer on this machine (runs do not outlive it) stay from the last report
        previous = ["--previous", str(models / "results.json")] if (models / "results.json").is_file() else []
        return cmd + ["--markdown", str(models / "README.md"), "--json", str(models / "results.json"),
                      "--plot", str(models / "accuracy_vs_snr.png"), "--remeasure", *previous]


STUDY = DistillationStudy()
