#!/usr/bin/env python3
"""Synthetic-data generator throughput on one core (frames/s); informational, no pass/fail.

    python apps/bench_generator.py [--frames 44000] [--frame-len 128]
"""

import os

# One core: thread pools must be pinned before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def _import_data():
    """The data package of this source tree (not an installed copy), as gnuradio.modrec."""
    shim = Path(tempfile.mkdtemp(prefix="modrec-bench-"))
    (shim / "gnuradio").mkdir()
    (shim / "gnuradio" / "modrec").symlink_to(Path(__file__).resolve().parents[1] / "python" / "modrec")
    sys.path.insert(0, str(shim))
    try:
        import gnuradio

        # A real GNU Radio package extends its __path__; put the source tree in front of it.
        gnuradio.__path__.insert(0, str(shim / "gnuradio"))
    except ImportError:
        pass
    from gnuradio.modrec.training import data

    return data


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=44000, help="frames in the mixed run (default 44000)")
    p.add_argument("--frame-len", type=int, default=128, help="samples per frame (default 128)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    data = _import_data()
    cfg = data.GeneratorConfig(frame_len=args.frame_len)
    rng = np.random.default_rng(args.seed)
    data.generate_labeled(np.arange(len(cfg.classes)), np.zeros(len(cfg.classes)), rng, cfg)  # warm caches

    y = rng.integers(0, len(cfg.classes), size=args.frames)
    snr = rng.choice(np.asarray(cfg.snrs_db, dtype=float), size=args.frames)
    t = time.perf_counter()
    x = data.generate_labeled(y, snr, rng, cfg)
    dt = time.perf_counter() - t
    print(f"mixed classes: {args.frames} frames x {cfg.frame_len} samples in {dt:.2f} s "
          f"-> {args.frames / dt:,.0f} frames/s on one core ({x.nbytes / dt / 1e6:.0f} MB/s float32)")

    per = max(1024, args.frames // len(cfg.classes))
    for name in cfg.classes:
        t = time.perf_counter()
        data.generate_frames(name, per, 0.0, rng, cfg)
        dt = time.perf_counter() - t
        print(f"  {name:7s} {per / dt:10,.0f} frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
