"""The study runner: what every study shares.

A study (distillation.py, pruning.py, early_exit.py) defines which runs it trains and how each is
finished and reported; this module gives all of them

* the options, with one meaning each (``study_parser``);
* the plan as data: ``plan_training`` (a :class:`~.jobs.Job` per unfinished run, in dependency
  order) and ``plan_finish`` (export and measurement steps, the runs left out, the report's rows
  and command), so tests assert on plans, not printed lines;
* one freshness check: a run is complete when its history has every epoch (``run_state``) and
  measured when its ONNX file and result exist and the result is newer than its ``best.pt``
  (``measured_after_training``);
* one way to keep report rows not measured again: every run of the study under ``--runs`` that is
  complete and measured joins the report, so finishing one corner of a study keeps the rest;
* the show-and-run loop (``main``): every command is printed as a shell line before it runs, so
  each step can be repeated by hand.
"""

import argparse
import fnmatch
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .jobs import Job, run_jobs, show

STAGES = ("all", "train", "finish")


@dataclass
class PlannedRun:
    """One training run of a study.

    ``name``: its directory under ``--runs`` (and its job's name); ``config``: the experiment
    config it trains; ``epochs``: the config's, so completeness can be judged; ``overrides``:
    ``KEY=VALUE`` settings its training command adds (``--set``); ``needs``: names of runs that
    must finish first; ``inputs``: (file, how to make it) for files its training reads that no run
    of this plan writes (a checkpoint to prune, a teacher); ``info``: the study's own facts about
    it (role, architecture, settings).
    """

    name: str
    config: Path
    epochs: int
    overrides: list = field(default_factory=list)
    needs: set = field(default_factory=set)
    inputs: list = field(default_factory=list)
    info: dict = field(default_factory=dict)


@dataclass
class FinishPlan:
    """What ``--stage finish`` does: ``steps`` is (run name, commands) for each selected run (no
    commands when it was measured after its last training); ``left_out`` names selected runs not
    trained to the end; ``rows`` are the report's runs in report order; ``report`` its command."""

    steps: list
    left_out: list
    rows: list
    report: list


class Study:
    """A study's definition; subclasses fill in the hooks below."""

    #: the app's name (apps/<name>), used in messages
    name = "study"
    #: the --help text
    doc = ""

    def add_options(self, parser):
        """Add the study's own options (the shared ones are already there)."""

    def check_options(self, args, parser):
        """Refuse bad option values with ``parser.error``."""

    def planned_runs(self, args):
        """Every run the options select, in training order (before ``--only``)."""
        raise NotImplementedError

    def runs_on_disk(self, args):
        """Every run of the study that exists under ``--runs`` (candidates for kept report rows)."""
        return []

    def onnx_path(self, run, args):
        return args.runs / run.name / f"{run.name}.onnx"

    def result_path(self, run, args):
        """What the run's measurement writes and the report reads."""
        return args.runs / run.name / "eval" / "summary.json"

    def finish_steps(self, run, args):
        """Commands that export and measure a trained run: export, then evaluate."""
        run_dir = args.runs / run.name
        return [export_command(run_dir, self.onnx_path(run, args)),
                evaluate_command(run_dir, self.onnx_path(run, args), self.result_path(run, args).parent, args)]

    def sort_rows(self, rows):
        """The report's rows in the order it shows them."""
        return rows

    def report_command(self, rows, args):
        raise NotImplementedError


# ----------------------------------------------------------------------------- commands


def modrec_command():
    """How a study calls the modrec CLI: this interpreter, the installed or source-tree package."""
    return [sys.executable, "-m", "gnuradio.modrec.training"]


def export_command(run_dir, onnx, *extra):
    # --force: a finish re-exports a run whose model is older than its best.pt, over that model
    return [*modrec_command(), "export", "--checkpoint", str(Path(run_dir) / "best.pt"), "--out", str(onnx), "--force",
            *extra]


def evaluate_command(run_dir, onnx, out_dir, args, *extra):
    """`modrec evaluate` of a run's best.pt and its ONNX file, results in ``out_dir``, on the
    study's device and data."""
    return [*modrec_command(), "evaluate", "--checkpoint", str(Path(run_dir) / "best.pt"), "--onnx", str(onnx),
            "--out", str(out_dir), "--device", args.device, *(["--data", str(args.data)] if args.data else []), *extra]


def train_command(run, args):
    """The training command of ``run``, resuming a partial one; None when it is complete."""
    run_dir = args.runs / run.name
    state = run_state(run_dir, run.epochs)
    if state == "done":
        return None
    launcher = modrec_command()
    if args.torchrun > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.torchrun}",
                    "-m", "gnuradio.modrec.training"]
    cmd = [*launcher, "train", "--config", str(run.config), "--out", str(run_dir), "--device", args.device]
    for setting in run.overrides:
        cmd += ["--set", setting]
    if args.jobs > 1:  # progress bars of parallel runs would interleave; each run logs to its file
        cmd.append("--no-progress")
    if args.threads or args.jobs > 1:
        cmd += ["--threads", str(args.threads or max(1, (os.cpu_count() or 1) // args.jobs))]
    return cmd + (["--resume"] if state == "partial" else [])


# ----------------------------------------------------------------------------- freshness


def run_state(run_dir, epochs):
    """'done', 'partial' (resume it) or 'new', from the run's history and checkpoints. A finished
    run needs only its best.pt (scripts/pack_runs.py ships finished runs without last.pt)."""
    run_dir = Path(run_dir)
    history = run_dir / "history.json"
    if not history.is_file():
        return "new"
    if len(json.loads(history.read_text())) >= epochs and ((run_dir / "last.pt").is_file() or (run_dir / "best.pt").is_file()):
        return "done"
    return "partial" if (run_dir / "last.pt").is_file() else "new"


def measured_after_training(study, run, args):
    """True when the run's ONNX file and result exist and the result is newer than its best.pt."""
    checkpoint = args.runs / run.name / "best.pt"
    result = study.result_path(run, args)
    return (study.onnx_path(run, args).is_file() and result.is_file() and checkpoint.is_file()
            and result.stat().st_mtime > checkpoint.stat().st_mtime)


# ----------------------------------------------------------------------------- the plan


def selected_runs(study, args):
    """The study's planned runs that ``--only`` picks."""
    return [run for run in study.planned_runs(args) if any(fnmatch.fnmatch(run.name, p) for p in args.only)]


def plan_training(study, args):
    """A Job per selected run that is not complete; a run waits for the selected runs it needs."""
    selected = selected_runs(study, args)
    names = {run.name for run in selected}
    jobs = []
    for run in selected:
        cmd = train_command(run, args)
        if cmd:
            jobs.append(Job(run.name, cmd, args.runs / run.name / "train.log", run.needs & names))
    return jobs


def missing_inputs(study, args):
    """(run name, file, how to make it) for each input a run to be trained lacks, unless a
    selected run that it needs writes that file."""
    selected = {run.name: run for run in selected_runs(study, args)}
    missing = []
    for job in plan_training(study, args):
        run = selected[job.name]
        made = {(args.runs / name / "best.pt").resolve() for name in job.needs}
        missing += [(run.name, path, hint) for path, hint in run.inputs
                    if not Path(path).is_file() and Path(path).resolve() not in made]
    return missing


def plan_finish(study, args):
    """The finishing plan (see FinishPlan). With ``--stage finish`` a run not trained to the end is
    left out (a dry run plans as if every run were trained); the report also shows every other
    run of the study under ``--runs`` that is complete and measured after its last training."""
    selected = selected_runs(study, args)
    steps, left_out, reported = [], [], []
    for run in selected:
        if args.stage == "finish" and not args.dry_run and run_state(args.runs / run.name, run.epochs) != "done":
            left_out.append(run.name)
            continue
        steps.append((run.name, [] if measured_after_training(study, run, args) else study.finish_steps(run, args)))
        reported.append(run)
    names = {run.name for run in selected}
    kept = [run for run in study.runs_on_disk(args) if run.name not in names
            and run_state(args.runs / run.name, run.epochs) == "done" and measured_after_training(study, run, args)]
    rows = study.sort_rows(reported + kept)
    return FinishPlan(steps, left_out, rows, study.report_command(rows, args))


# ----------------------------------------------------------------------------- options


def comma_list(kind):
    """argparse type: "a,b,c" -> [kind(a), kind(b), kind(c)]."""
    return lambda text: [kind(v) for v in text.split(",") if v]


def study_parser(study, root):
    """The study's argument parser: the shared options, then the study's own."""
    root = Path(root)
    # no abbreviations: --models (pruning, early exits) must not be read as --models-dir elsewhere
    parser = argparse.ArgumentParser(prog=study.name, description=study.doc, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = parser.add_argument_group("options every study shares")
    shared.add_argument("--device", default="auto", help="auto | cpu | cuda, for training and evaluation (default auto)")
    launch = shared.add_mutually_exclusive_group()
    launch.add_argument("--jobs", type=int, default=1, metavar="N", help="train up to N runs at once (default 1)")
    launch.add_argument("--torchrun", type=int, default=1, metavar="N", help="train each run with N data-parallel processes")
    shared.add_argument("--threads", type=int, default=0, metavar="N",
                        help="torch threads per run (default: all cores, or cores / jobs with --jobs)")
    shared.add_argument("--only", type=comma_list(str), default=["*"], metavar="PATTERNS",
                        help="runs to plan: comma-separated globs over run names (default all)")
    shared.add_argument("--stage", choices=STAGES, default="all",
                        help="train only, finish only (export, measure, report), or both (default)")
    shared.add_argument("--runs", type=Path, default=root / "runs", help="run directories (default runs/)")
    shared.add_argument("--configs", type=Path, default=root / "configs", help="experiment configs (default configs/)")
    shared.add_argument("--models-dir", type=Path, default=root / "models",
                        help="where shipped models and the report go (default models/)")
    shared.add_argument("--data", type=Path, help="dataset to measure on (default: the one each run trained on)")
    shared.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    own = parser.add_argument_group(f"{study.name} options")
    study.add_options(own)
    return parser


def parse_args(study, root, argv=None):
    """Parsed and checked options (``parser.error`` exits with status 2 on bad ones)."""
    parser = study_parser(study, root)
    args = parser.parse_args(argv)
    args.root = Path(root)  # the checkout: commands run here, and relative paths in configs start here
    args.runs, args.configs, args.models_dir = (Path(p).resolve() for p in (args.runs, args.configs, args.models_dir))
    if args.jobs < 1 or args.torchrun < 1 or args.threads < 0:
        parser.error("--jobs and --torchrun take a count >= 1, --threads one >= 0")
    study.check_options(args, parser)
    if not selected_runs(study, args):
        known = ", ".join(run.name for run in study.planned_runs(args))
        parser.error(f"--only {','.join(args.only)!r} matches no run; they are: {known}")
    return args, parser


# ----------------------------------------------------------------------------- running


def prepare_datasets(study, args):
    """Build each distinct dataset once, before parallel runs would race to build it."""
    from ..config import load_config
    from ..run_data import data_source

    roots = {}
    for run in selected_runs(study, args):
        cfg = load_config(run.config)
        roots.setdefault(cfg.data_root, cfg)
    for cfg in roots.values():
        data_source(cfg)


def stale_install(checkout):
    """Files of the checkout's python/modrec whose installed copy (the package this interpreter
    imports, and so the one every spawned ``modrec`` step runs) differs: a study started after an
    edit but before ``make install`` would otherwise train and report with the old code. Empty
    when they match, when the package is the checkout itself (a source-tree run), or when
    ``checkout`` has no python/modrec (the study runs from an installed copy only)."""
    source = Path(checkout) / "python" / "modrec"
    package = Path(__file__).resolve().parents[2]
    if not source.is_dir() or package == source.resolve():
        return []
    stale = []
    for f in sorted(source.rglob("*.py")):
        installed = package / f.relative_to(source)
        if installed.is_file() and installed.read_bytes() != f.read_bytes():
            stale.append(str(f.relative_to(source)))
    return stale


def require_current_install(checkout, parser):
    """Stop a study (``parser.error``) when the installed package is older than the checkout."""
    stale = stale_install(checkout)
    if stale:
        package = Path(__file__).resolve().parents[2]
        shown = ", ".join(stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
        parser.error(f"the installed gnuradio.modrec ({package}) differs from this checkout's python/modrec in "
                     f"{shown}: its runs would use the old code. Run `make install` first (or run the study "
                     f"with PYTHONPATH=build/pytest_modules to use the checkout)")


def main(study, root, argv=None):
    """Run ``study`` from the checkout at ``root``: train, then export, measure and report.
    Finished runs are skipped and interrupted ones resumed, so a study can be spread over jobs."""
    args, parser = parse_args(study, root, argv)
    require_current_install(root, parser)
    if args.stage != "finish":
        missing = [] if args.dry_run else missing_inputs(study, args)
        if missing:
            parser.error("; ".join(f"{name} needs {path}, which is missing ({hint})" for name, path, hint in missing))
        jobs = plan_training(study, args)
        if jobs and args.jobs > 1 and not args.dry_run:
            prepare_datasets(study, args)
        failed = run_jobs(jobs, parallel=args.jobs, cwd=root, dry_run=args.dry_run)
        if failed:
            raise SystemExit(f"{study.name}: training failed for {', '.join(failed)}")
    if args.stage == "train":
        return 0
    plan = plan_finish(study, args)
    for name in plan.left_out:
        print(f"note: {name} is not trained to the end; left out of the report", flush=True)
    for step in [step for _, steps in plan.steps for step in steps] + [plan.report]:
        show(step)
        if not args.dry_run:
            subprocess.run(step, cwd=root, check=True)
    return 0
