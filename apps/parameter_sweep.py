#!/usr/bin/env python3
"""Accuracy of a model against one generator parameter at a time (issue 24's breadth audit).

Each sweep fixes one parameter of the generator's default configuration (GeneratorConfig) at a
series of values, one value at a time (a range parameter is pinned to (v, v)), generates frames
of the classes it affects at the SNRs given, and scores an ONNX model on them: how accuracy
falls off outside the training range shows where the generator is narrower than the world.
Each sweep's values cover the training range and what real transmitters and the standard
datasets use (the values and their sources are in docs/GENERATOR_AUDIT.md). Prints a Markdown
table per sweep (accuracy, and the class most often given instead) and draws every sweep in one
figure with the training range shaded. Needs numpy, scipy, onnxruntime and matplotlib, not torch.

    python3 apps/parameter_sweep.py --model mobilenet1d-skd-v2 --out sweep.md --figure sweep.png
"""

import argparse
import dataclasses
import sys
import time
from typing import Dict, Tuple

import numpy as np

from gnuradio.modrec.runtime import OnnxModel, resolve_model
from gnuradio.modrec.training.data import GeneratorConfig, generate_labeled

LINEAR = ("BPSK", "QPSK", "8PSK", "PAM4", "QAM16", "QAM64")
DIGITAL = LINEAR + ("CPFSK", "GFSK")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """``field`` of GeneratorConfig set to each of ``values`` (a range field to (v, v)), frames of
    ``classes``; ``fixed``: other fields set for the whole sweep (e.g. fading always on for a
    fading parameter); ``label``: the axis label, with units."""

    field: str
    classes: Tuple[str, ...]
    values: Tuple[float, ...]
    label: str
    fixed: Dict[str, object] = dataclasses.field(default_factory=dict)


SWEEPS = {
    "gfsk_index": Sweep("gfsk_index_range", ("GFSK",), (0.15, 0.2, 0.25, 0.3, 0.35, 0.45, 0.5, 0.6, 0.8, 1.0),
                        "GFSK modulation index h"),
    "gfsk_bt": Sweep("gfsk_bt_range", ("GFSK",), (0.2, 0.25, 0.3, 0.35, 0.5, 0.7, 1.0), "GFSK BT"),
    "cpfsk_index": Sweep("cpfsk_index_range", ("CPFSK",), (0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0),
                         "CPFSK modulation index h"),
    "rolloff": Sweep("rolloff_range", LINEAR, (0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0),
                     "RRC roll-off (PSK, PAM, QAM)"),
    "cfo": Sweep("cfo_max", DIGITAL, (0.0, 0.005, 0.01, 0.02, 0.04, 0.08),
                 "carrier offset drawn in ±x (cycles/sample)"),
    "doppler": Sweep("doppler_range", DIGITAL, (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02),
                     "maximum Doppler (cycles/sample), fading on", {"fading_prob": 1.0}),
    "rician_k": Sweep("rician_k_db_range", DIGITAL, (-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 30.0),
                      "Rician K (dB), fading on, never Rayleigh", {"fading_prob": 1.0, "rayleigh_prob": 0.0}),
    "wbfm_deviation": Sweep("wbfm_deviation_range", ("WBFM",), (0.02, 0.05, 0.1, 0.2, 0.35, 0.5),
                            "WBFM peak deviation (cycles/sample)"),
    "am_depth": Sweep("am_depth_range", ("AM-DSB",), (0.1, 0.3, 0.5, 0.8, 1.0), "AM-DSB modulation depth"),
    # The channel model's gaps against GNU Radio's dynamic channel model (docs/GENERATOR_AUDIT.md):
    # whole-sample tap delays (0) against fractional ones (1), and offsets that drift in a frame.
    "fractional_delays": Sweep("fractional_delays", DIGITAL, (0, 1),
                               "tap delays: whole samples (0) or fractional (1), fading on", {"fading_prob": 1.0}),
    "cfo_drift": Sweep("cfo_drift_std", DIGITAL, (0.0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3),
                       "carrier offset drift, std per sample (cycles/sample)"),
    "clock_drift": Sweep("clock_drift_std", DIGITAL, (0.0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3),
                         "sample clock drift, std per sample (fraction of the rate)"),
}


def training_range(base, field):
    """(lo, hi) the default recipe draws ``field`` from (a scalar x: cfo_max is U(-x, x), so 0..x;
    a switch: (0, 0) when off, (1, 1) when on)."""
    value = getattr(base, field)
    if isinstance(value, bool):
        return (float(value), float(value))
    return (0.0, float(value)) if np.isscalar(value) else (float(value[0]), float(value[1]))


def pinned(base, sweep, value):
    """The generator config of one point of a sweep."""
    current = getattr(base, sweep.field)
    if isinstance(current, bool):
        setting = bool(value)
    else:
        setting = float(value) if np.isscalar(current) else (float(value), float(value))
    return dataclasses.replace(base, **{sweep.field: setting, **sweep.fixed})


def run_sweep(model, base, sweep, snrs, frames, seed):
    """[(value, accuracy, most frequent wrong class or '', its share of the frames)] for one sweep."""
    classes = list(model.classes)
    missing = [c for c in sweep.classes if c not in classes]
    if missing:
        raise ValueError(f"{model.path}: the sweep's classes {missing} are not among the model's {classes}")
    labels = np.repeat([classes.index(c) for c in sweep.classes], frames * len(snrs))
    snr = np.tile(np.repeat(snrs, frames), len(sweep.classes))
    rows = []
    for value in sweep.values:
        config = pinned(base, sweep, value)
        x = generate_labeled(labels, snr, np.random.default_rng(seed), config)
        predicted = np.concatenate([model.predict(x[i : i + 1024]).argmax(1) for i in range(0, len(x), 1024)])
        wrong = predicted[predicted != labels]
        if len(wrong):
            counts = np.bincount(wrong, minlength=len(classes))
            other, share = classes[int(counts.argmax())], counts.max() / len(labels)
        else:
            other, share = "", 0.0
        rows.append((float(value), float(np.mean(predicted == labels)), other, float(share)))
    return rows


def markdown(name, sweep, rows, base):
    lo, hi = training_range(base, sweep.field)
    lines = [f"**{name}** ({sweep.label}; {', '.join(sweep.classes)}; trained on {lo:g}-{hi:g})", "",
             "| value | accuracy | most often called instead |", "|---|---|---|"]
    for value, acc, other, share in rows:
        mark = "" if lo <= value <= hi else " (outside training)"
        instead = f"{other} ({100 * share:.0f} %)" if other else "-"
        lines.append(f"| {value:g}{mark} | {100 * acc:.1f} % | {instead} |")
    return "\n".join(lines) + "\n"


def draw(results, base, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    cols = 3
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(4.2 * cols, 3.0 * ((n + cols - 1) // cols)),
                             squeeze=False)
    for ax, (name, (sweep, rows)) in zip(axes.flat, results.items()):
        lo, hi = training_range(base, sweep.field)
        ax.axvspan(lo, hi, color="0.88", label="training range")
        ax.plot([r[0] for r in rows], [100 * r[1] for r in rows], "o-")
        positive = [r[0] for r in rows if r[0] > 0]
        if positive and max(positive) > 100 * min(positive):  # values over decades (the drifts)
            ax.set_xscale("symlog", linthresh=min(positive))
            ax.set_xticks([r[0] for r in rows], [f"{r[0]:g}" for r in rows], fontsize=7)
            ax.minorticks_off()
        ax.set_xlabel(sweep.label, fontsize=8)
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{name}: {', '.join(sweep.classes) if len(sweep.classes) < 3 else f'{len(sweep.classes)} classes'}",
                     fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="ONNX model: a path or a shipped model's name (default: the default)")
    parser.add_argument("--sweeps", default=",".join(SWEEPS), help=f"comma-separated, of: {', '.join(SWEEPS)}")
    parser.add_argument("--snrs", default="10,18", help="comma-separated SNRs in dB (default 10,18)")
    parser.add_argument("--frames", type=int, default=200, help="frames per class, SNR and value (default 200)")
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--out", default="", help="write the Markdown tables here too")
    parser.add_argument("--figure", default="", help="draw the sweeps into this PNG")
    args = parser.parse_args(argv)

    names = [s for s in args.sweeps.split(",") if s]
    unknown = [s for s in names if s not in SWEEPS]
    if unknown:
        parser.error(f"--sweeps: unknown {unknown}; expected some of {', '.join(SWEEPS)}")
    if args.frames < 1:
        parser.error(f"--frames: expected >= 1, got {args.frames}")
    model = OnnxModel(resolve_model(args.model), threads=1)
    base = GeneratorConfig(classes=tuple(c for c in model.classes if c != "noise"), frame_len=model.frame_len,
                           samples_per_symbol=model.samples_per_symbol)
    snrs = [float(s) for s in args.snrs.split(",")]
    header = (f"{model.path}: accuracy at {', '.join(f'{s:g}' for s in snrs)} dB, {args.frames} frames per class, "
              f"SNR and value, seed {args.seed}; every other parameter as the default recipe draws it")
    print(header, flush=True)
    results, text = {}, [header + "\n"]
    for name in names:
        sweep = SWEEPS[name]
        t0 = time.time()
        rows = run_sweep(model, base, sweep, snrs, args.frames, args.seed)
        results[name] = (sweep, rows)
        table = markdown(name, sweep, rows, base)
        text.append(table)
        print(table, flush=True)
        print(f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(text))
    if args.figure:
        draw(results, base, args.figure, f"{model.path.rsplit('/', 1)[-1]}: accuracy against one generator parameter "
                                         f"({', '.join(f'{s:g}' for s in snrs)} dB)")


if __name__ == "__main__":
    main()
