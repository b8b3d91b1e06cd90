#!/usr/bin/env python3
"""An early-exit model's cascade against the plain model it extends, one thread, batch 256,
timed side by side in one run (paired rounds, runtime/timing.py: each speed is the median of the
rounds' ratios to the plain model).

  all the way   no frame may leave (e.g. -20 dB): the worst case, which must stay within 5 % of
                the plain model (ratio >= 0.95); the runtime then runs the plain network, with
                every 8th window of 256 frames a probe through all the exits
  ... cascade   the same, every frame through the stage cascade (what the plain runs save)
  first exit    every frame leaves at the first exit: the cascade's best case
Per-SNR figures on real frames come from `modrec exits-eval` (models/EARLY_EXIT.md).
"""

import argparse
from pathlib import Path

import numpy as np

from gnuradio.modrec.runtime import EarlyExitModel, OnnxModel, resolve_model
from gnuradio.modrec.runtime.timing import paired_times, speed_ratio

MODELS = Path(__file__).resolve().parents[1] / "models"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(MODELS / "mobilenet1d_ee.onnx"), help="early-exit model (entry file): a path or a shipped name")
    parser.add_argument("--plain", default=str(MODELS / "mobilenet1d.onnx"), help="the plain model it extends: a path or a shipped name")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=8, help="batches per timing")
    args = parser.parse_args(argv)
    args.model, args.plain = resolve_model(args.model), resolve_model(args.plain)

    plain = OnnxModel(args.plain, threads=1)
    n_early = EarlyExitModel(args.model, threads=1).n_exits - 1
    cascades = {"all the way": EarlyExitModel(args.model, threads=1, thresholds=[-1.0] * n_early),
                "... cascade": EarlyExitModel(args.model, threads=1, thresholds=[-1.0] * n_early, adaptive=False),
                "first exit": EarlyExitModel(args.model, threads=1, thresholds=[2.0] * n_early)}
    # calls x 256 frames per timing: the same batches for every model
    frames = np.random.default_rng(0).standard_normal((args.calls * 256, 2, plain.frame_len)).astype(np.float32)
    runs = {"plain": plain.predict, **{k: m.predict for k, m in cascades.items()}}
    times = paired_times(runs, frames, batch=256, rounds=args.rounds)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f"early exit ({Path(args.model).name} vs {Path(args.plain).name}, 1 thread, batch 256, "
          f"median of {args.rounds} paired rounds)")
    print(f"  plain        {1e3 * med['plain']:.4f} ms/frame   {int(plain.metadata['flops']):,} FLOPs")
    for name, model in cascades.items():  # FLOPs: the mean the runtime spent per frame over the timing
        print(f"  {name:<12} {1e3 * med[name]:.4f} ms/frame   {model.flops_spent / model.frames_run:,.0f} FLOPs   "
              f"speed vs plain {speed_ratio(times, 'plain', name):.2f}x")


if __name__ == "__main__":
    main()
