#!/usr/bin/env python3
"""Pack training runs for the trip from a GPU box back to the machine that evaluates them.

    scripts/pack_runs.py --runs runs --out OUT [--part-mb 15] [--resume-mb 3]

For every run directory: its history, its train.log and best.pt *without* training state
(optimiser, scheduler, RNG, an online teacher: what export, evaluate and a distilled student's
teacher need, at a third of the size). A run that has not finished also keeps its full last.pt
when that is small (<= --resume-mb), so it can be resumed elsewhere. The tar is written in parts
of at most --part-mb MiB (transfer limits); unpack with `cat OUT/runs.tar.part-* | tar x`.
"""

import argparse
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import torch


def _checkpoint_io():
    """python/modrec/training/checkpoint_io.py of this checkout, by path: the one safe checkpoint
    loader, usable here without the package being importable (standalone: torch and numpy only)."""
    path = Path(__file__).resolve().parents[1] / "python" / "modrec" / "training" / "checkpoint_io.py"
    spec = importlib.util.spec_from_file_location("_modrec_checkpoint_io", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# tensors and plain values only: a checkpoint naming anything else is refused, never run
_io = _checkpoint_io()
load_checkpoint_file = _io.load_checkpoint_file

TRAINING_STATE = ("optimizer", "scheduler", "rng", "distill")


class SplitWriter(io.RawIOBase):
    """A write-only file that rolls over to a new numbered part every `limit` bytes."""

    def __init__(self, stem, limit):
        self.stem, self.limit, self.parts, self._fh, self._left = stem, limit, [], None, 0

    def writable(self):
        return True

    def write(self, data):
        view, written = memoryview(data), 0
        while written < len(view):
            if self._left == 0:
                if self._fh:
                    self._fh.close()
                path = Path(f"{self.stem}.part-{len(self.parts):02d}")
                self.parts.append(path)
                self._fh, self._left = open(path, "wb"), self.limit
            n = min(self._left, len(view) - written)
            self._fh.write(view[written : written + n])
            written += n
            self._left -= n
        return written

    def close(self):
        if self._fh:
            self._fh.close()
        super().close()


def slim_checkpoint(path):
    ckpt = load_checkpoint_file(path)
    for key in TRAINING_STATE:
        ckpt.pop(key, None)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--part-mb", type=float, default=15.0)
    parser.add_argument("--resume-mb", type=float, default=3.0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    writer = SplitWriter(args.out / "runs.tar", int(args.part_mb * 2**20))
    with tarfile.open(fileobj=writer, mode="w|") as tar:
        for run in sorted(p for p in args.runs.iterdir() if p.is_dir()):
            for name in ("history.json", "history.csv", "train.log"):
                if (run / name).is_file():
                    tar.add(run / name, f"{run.name}/{name}")
            if (run / "best.pt").is_file():
                add_bytes(tar, f"{run.name}/best.pt", slim_checkpoint(run / "best.pt"))
            last = run / "last.pt"
            if last.is_file():
                ckpt = load_checkpoint_file(last)
                done = len(ckpt["history"]) >= ckpt["config"]["train"]["epochs"]
                if not done and last.stat().st_size <= args.resume_mb * 2**20:
                    tar.add(last, f"{run.name}/last.pt")
                print(json.dumps({"run": run.name, "epochs": len(ckpt["history"]), "done": done,
                                  "best_val_acc": round(ckpt["best_val_acc"], 4)}), flush=True)
    writer.close()
    print(f"packed into {', '.join(str(p) for p in writer.parts)}")


if __name__ == "__main__":
    try:
        main()
    except _io.UnsafeCheckpointError as err:
        sys.exit(f"error: {err}")
