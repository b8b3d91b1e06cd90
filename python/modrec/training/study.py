"""Running many training commands for a study: one after another, or several at once with each
run waiting for the runs it needs (a student for its teacher, a pruned model for the model it
prunes). Used by apps/distillation_study, apps/pruning_study and apps/early_exit_study."""

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Job:
    name: str
    cmd: list
    log: Path  # where the run's output goes when jobs run in parallel
    needs: set = field(default_factory=set)  # names of jobs that must finish first


def show(cmd):
    print("$ " + " ".join(shlex.quote(str(part)) for part in cmd), flush=True)


def run_jobs(jobs, parallel=1, cwd=None, dry_run=False, poll_s=2.0):
    """Run ``jobs``; returns the names of those that failed or were skipped because a job they
    need failed. With parallel == 1 each job runs in the foreground (its output on this
    terminal); otherwise up to ``parallel`` at once, each logging to its ``log`` file."""
    names = {job.name for job in jobs}
    pending, running, finished, failed = list(jobs), {}, set(), []
    while pending or running:
        for job in list(pending):
            if len(running) >= parallel:
                break
            if job.needs & set(failed):
                print(f"skip {job.name}: {', '.join(sorted(job.needs & set(failed)))} failed", flush=True)
                pending.remove(job)
                failed.append(job.name)
                continue
            if any(n in names and n not in finished for n in job.needs):
                continue
            pending.remove(job)
            show(job.cmd)
            if dry_run:
                finished.add(job.name)
                continue
            if parallel == 1:
                code = subprocess.run(job.cmd, cwd=cwd).returncode
                (finished.add(job.name) if code == 0 else failed.append(job.name))
                if code:
                    print(f"FAIL  {job.name} (exit {code})", flush=True)
                continue
            job.log.parent.mkdir(parents=True, exist_ok=True)
            log = open(job.log, "a")
            running[job.name] = (subprocess.Popen(job.cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT), log, time.time())
            print(f"start {job.name} (log {job.log})", flush=True)
        for name, (proc, log, t0) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            del running[name]
            minutes = (time.time() - t0) / 60
            if proc.returncode == 0:
                finished.add(name)
                print(f"done  {name} in {minutes:.1f} min", flush=True)
            else:
                failed.append(name)
                print(f"FAIL  {name} (exit {proc.returncode} after {minutes:.1f} min; see {log.name})", flush=True)
        if running:
            time.sleep(poll_s)
    return failed


def stale_install(checkout):
    """Files of the checkout's python/modrec whose installed copy (the package this interpreter
    imports, and so the one every spawned ``modrec`` step runs) differs: a study started after an
    edit but before ``make install`` would otherwise train and report with the old code. Empty
    when they match, when the package is the checkout itself (a source-tree run), or when
    ``checkout`` has no python/modrec (the study runs from an installed copy only)."""
    source = Path(checkout) / "python" / "modrec"
    package = Path(__file__).resolve().parents[1]
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
        package = Path(__file__).resolve().parents[1]
        shown = ", ".join(stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
        parser.error(f"the installed gnuradio.modrec ({package}) differs from this checkout's python/modrec in "
                     f"{shown}: its runs would use the old code. Run `make install` first (or run the study "
                     f"with PYTHONPATH=build/pytest_modules to use the checkout)")


def modrec_command():
    """How a study calls the modrec CLI: this interpreter, the installed or source-tree package."""
    return [sys.executable, "-m", "gnuradio.modrec.training"]


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


def comma_list(kind):
    """argparse type: "a,b,c" -> [kind(a), kind(b), kind(c)]."""
    return lambda text: [kind(v) for v in text.split(",") if v]


class Recipes:
    """A study's training recipes: each one config per student. The base recipe is
    configs/<student><stem>.yaml, recipe R is configs/<student><stem>-R.yaml; runs of the base
    recipe are named <student><stem>-..., runs of R <student><stem>-R-..."""

    def __init__(self, configs_dir, stem, base):
        self.configs_dir, self.stem, self.base = Path(configs_dir), stem, base

    def config(self, student, recipe):
        suffix = "" if recipe == self.base else f"-{recipe}"
        return self.configs_dir / f"{student}{self.stem}{suffix}.yaml"

    def run_prefix(self, student, recipe):
        return f"{student}{self.stem}" if recipe == self.base else f"{student}{self.stem}-{recipe}"

    def pairs(self, students, recipes):
        """(student, recipe) pairs that have a config. Raises ValueError naming the missing config
        of a recipe no student has; a recipe only some students have is skipped for the others."""
        found = [(s, r) for s in students for r in recipes if self.config(s, r).is_file()]
        for recipe in recipes:
            if not any(r == recipe for _, r in found):
                raise ValueError(f"recipe {recipe!r} needs {self.config(students[0], recipe)}, which does not exist")
        for student in students:
            for recipe in recipes:
                if (student, recipe) not in found:
                    print(f"note: no {self.config(student, recipe).name}: recipe {recipe} skipped for {student}", flush=True)
        return found
