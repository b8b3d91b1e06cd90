#!/usr/bin/env python3
"""How a model holds up when the channel leaves its training recipe.

Generates frames with the project's generator under variants of its default configuration
(no fading, all Rayleigh, twice the carrier-offset range, other oversampling, ...) and prints
the accuracy of an ONNX model on each, at the SNRs given. A model that only knows one channel
recipe drops sharply on the variants; the hidden test sets of other people's generators are
closer to these than to the training split. Needs numpy, scipy and onnxruntime, not torch.
"""

import argparse
import dataclasses

import numpy as np

from gnuradio.modrec.runtime import OnnxModel, resolve_model
from gnuradio.modrec.training.data import GeneratorConfig, generate_labeled


def variants(base):
    return {
        "default (training recipe)": base,
        "AWGN only, no impairments": base.clean(),
        "no multipath fading": dataclasses.replace(base, fading_prob=0.0),
        "always Rayleigh fading": dataclasses.replace(base, fading_prob=1.0, rayleigh_prob=1.0),
        "carrier offset up to 0.02": dataclasses.replace(base, cfo_max=0.02),
        "roll-off 0.05-0.15": dataclasses.replace(base, rolloff_range=(0.05, 0.15)),
        "IQ imbalance 2 dB / 10 deg": dataclasses.replace(base, iq_gain_imbalance_db=2.0, iq_phase_imbalance_deg=10.0),
        "4 samples/symbol": dataclasses.replace(base, samples_per_symbol=4),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="ONNX model: a path or a shipped model's name, e.g. cnn3 (default: the shipped default)")
    parser.add_argument("--snrs", default="10,18", help="comma-separated SNRs in dB (default 10,18)")
    parser.add_argument("--frames", type=int, default=100, help="frames per class and SNR (default 100)")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)

    model = OnnxModel(resolve_model(args.model), threads=1)
    base = GeneratorConfig(classes=tuple(model.classes), frame_len=model.frame_len,
                           samples_per_symbol=model.samples_per_symbol)
    snrs = [float(s) for s in args.snrs.split(",")]
    n_classes = len(model.classes)
    labels = np.repeat(np.arange(n_classes), args.frames * len(snrs))
    snr = np.tile(np.repeat(snrs, args.frames), n_classes)
    print(f"{model.path}: accuracy at {', '.join(f'{s:g}' for s in snrs)} dB, "
          f"{len(labels)} frames per variant")
    for name, config in variants(base).items():
        frames = generate_labeled(labels, snr, np.random.default_rng(args.seed), config)
        probs = np.concatenate([model.predict(frames[i : i + 1024]) for i in range(0, len(frames), 1024)])
        print(f"  {name:<30} {100 * np.mean(probs.argmax(1) == labels):5.1f} %")


if __name__ == "__main__":
    main()
