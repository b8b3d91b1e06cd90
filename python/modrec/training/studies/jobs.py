"""Running a study's training jobs: one after another, or several at once with each run waiting
for the runs it needs (a student for its teacher)."""

import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Job:
    """One training command: ``cmd`` (argv list), run as ``name``; ``log``: where its output goes
    when jobs run in parallel; ``needs``: names of jobs that must finish first."""

    name: str
    cmd: list
    log: Path
    needs: set = field(default_factory=set)


def show(cmd):
    """Print a command as a shell line ("$ ..."), so it can be run again by hand."""
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
