"""CLI: python -m gnuradio.modrec.training.data --out DIR [options]."""

import argparse
import sys

from ...classes import DEFAULT_FRAME_LEN, DEFAULT_SAMPLES_PER_SYMBOL
from .dataset import DEFAULT_SHARD_FRAMES, DatasetError, build_dataset
from .generator import DEFAULT_CONFIG, GeneratorConfig


PROG = "python -m gnuradio.modrec.training.data"


def _parser(prog=PROG):
    """The options; ``prog`` is the program name usage lines show (``modrec data`` from the modrec command)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Build a sharded synthetic AMR dataset (RadioML 2016.10a classes and SNR grid) in a "
            "cache directory. An existing complete dataset with the same settings is reused."
        ),
    )
    p.add_argument("--out", required=True, help="dataset root directory (keep it outside the source tree)")
    p.add_argument("--frames-per-class-snr", type=int, default=1000, help="train frames per (class, SNR) (default 1000)")
    p.add_argument("--val-frames-per-class-snr", type=int, default=100, help="validation frames per (class, SNR) (default 100)")
    p.add_argument("--test-frames-per-class-snr", type=int, default=200, help="test frames per (class, SNR) (default 200)")
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument("--workers", type=int, default=1, help="worker processes; output does not depend on it (default 1)")
    p.add_argument("--shard-frames", type=int, default=DEFAULT_SHARD_FRAMES, help=f"frames per shard file (default {DEFAULT_SHARD_FRAMES})")
    p.add_argument("--frame-len", type=int, default=DEFAULT_FRAME_LEN, help=f"complex samples per frame (default {DEFAULT_FRAME_LEN})")
    p.add_argument(
        "--samples-per-symbol", type=int, default=DEFAULT_SAMPLES_PER_SYMBOL, help=f"nominal oversampling (default {DEFAULT_SAMPLES_PER_SYMBOL})"
    )
    p.add_argument("--classes", default=None, help="comma-separated class names (default: the 11 RadioML 2016.10a classes)")
    p.add_argument("--snrs", default=None, help="comma-separated SNR grid in dB (default -20,-18,...,18)")
    p.add_argument("--overwrite", action="store_true", help="rebuild if --out holds a dataset with other settings")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None, prog=PROG):
    args = _parser(prog).parse_args(argv)
    kwargs = {"frame_len": args.frame_len, "samples_per_symbol": args.samples_per_symbol}
    if args.classes:
        kwargs["classes"] = tuple(c.strip() for c in args.classes.split(",") if c.strip())
    if args.snrs:
        try:
            kwargs["snrs_db"] = tuple(float(s) for s in args.snrs.split(","))
        except ValueError:
            print(f"error: --snrs: expected comma-separated numbers, got {args.snrs!r}", file=sys.stderr)
            return 2
    try:
        config = GeneratorConfig(**{**DEFAULT_CONFIG.to_dict(), **kwargs})
        meta = build_dataset(
            args.out,
            config,
            seed=args.seed,
            splits={
                "train": args.frames_per_class_snr,
                "val": args.val_frames_per_class_snr,
                "test": args.test_frames_per_class_snr,
            },
            workers=args.workers,
            shard_frames=args.shard_frames,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except (ValueError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{k}={v}" for k, v in meta["counts"].items())
    print(f"dataset at {args.out}: {counts} frames of {meta['frame_len']} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
