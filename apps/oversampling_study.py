#!/usr/bin/env python3
"""Accuracy of a model against the oversampling of its input, with and without resampling.

A model recognises signals at the samples per symbol it was trained at (8 for the shipped
students). This synthesises the same signals, physically, sampled at 2, 4, 8 and 16 samples per
symbol: every generator parameter given per sample is rescaled (carrier offset, Doppler, FM
deviation and audio rate by 8/sps, multipath delays by sps/8, within the generator's limits),
so only the sample rate differs.
Each class is a stream of back-to-back generator frames of 128 symbols. The stream is then
framed exactly as the classifier block frames it: as it is (``StreamFramer``, symbol_rate not
given) or resampled to the model's samples per symbol (``ResampledFramer``, the block's
``symbol_rate`` option and ``modrec classify --symbol-rate``).

Prints a markdown table of accuracy per (samples per symbol, SNR) and writes it with --out.
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from gnuradio.modrec.runtime import StreamFramer, complex_to_iq, default_model_path, load_model
from gnuradio.modrec.runtime.framing import ResampledFramer
from gnuradio.modrec.runtime.resample import rational_ratio
from gnuradio.modrec.training.data.generator import DEFAULT_CONFIG, synthesize_stream

SYMBOLS_PER_STREAM_FRAME = 128


def config_at(sps, base=DEFAULT_CONFIG):
    """The generator's configuration for the same physical signals sampled at ``sps``."""
    k = base.samples_per_symbol / sps  # per-sample frequencies scale by k, delays by 1/k

    def scale(lo_hi, f, limit):
        # at 2 samples per symbol a wideband FM signal no longer fits the band: it is held at the
        # generator's limit (the study's WBFM rows at 2 sps are of a narrower signal)
        return tuple(min(v * f, limit) for v in lo_hi)

    return dataclasses.replace(
        base, samples_per_symbol=sps, frame_len=SYMBOLS_PER_STREAM_FRAME * sps,
        cfo_max=base.cfo_max * k, doppler_range=scale(base.doppler_range, k, 0.05),
        wbfm_deviation_range=scale(base.wbfm_deviation_range, k, 0.5),
        audio_ratio_range=scale(base.audio_ratio_range, k, 1.0),
        max_delay_samples=max(0, int(round(base.max_delay_samples / k))),
    )


def accuracy(model, stream, label, framer):
    framer.push(stream)
    starts, frames = framer.take_complete()
    more_starts, more = framer.finish()
    frames = np.concatenate([frames, more])
    pred = model.predict(complex_to_iq(frames)).argmax(1)
    return int((pred == label).sum()), len(pred)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="ONNX model (default: the classifier's default)")
    parser.add_argument("--sps", default="2,4,8,16", help="samples per symbol to try")
    parser.add_argument("--snrs", default="0,10,18", help="SNRs in dB")
    parser.add_argument("--frames", type=int, default=16, help="generator frames of 128 symbols per class, SNR and sps")
    parser.add_argument("--out", help="write the markdown table here")
    args = parser.parse_args(argv)

    path = args.model or default_model_path()
    model = load_model(path, threads=1)
    sps_list = [int(s) for s in args.sps.split(",")]
    snrs = [float(s) for s in args.snrs.split(",")]
    rows = []
    t0 = time.time()
    for sps in sps_list:
        cfg = config_at(sps)
        up, down = rational_ratio(sps, model.samples_per_symbol)
        for snr in snrs:
            plain = [0, 0]
            resampled = [0, 0]
            for label, name in enumerate(model.classes):
                rng = np.random.default_rng([sps, int(snr * 10) + 1000, label])
                stream = synthesize_stream(name, args.frames * cfg.frame_len, snr, rng, cfg)
                for tally, framer in ((plain, StreamFramer(model.frame_len, model.frame_len)),
                                      (resampled, ResampledFramer(model.frame_len, model.frame_len, up, down)
                                       if (up, down) != (1, 1) else StreamFramer(model.frame_len, model.frame_len))):
                    c, n = accuracy(model, stream, label, framer)
                    tally[0] += c
                    tally[1] += n
            rows.append((sps, snr, plain[0] / plain[1], resampled[0] / resampled[1], plain[1], resampled[1]))
            print(f"sps {sps:2d} SNR {snr:5.1f} dB: as it is {rows[-1][2]:.3f} ({plain[1]} frames), "
                  f"resampled {up}/{down} {rows[-1][3]:.3f} ({resampled[1]} frames)", file=sys.stderr, flush=True)
    lines = [f"Model `{Path(path).name}` (trained at {model.samples_per_symbol} samples per symbol); "
             f"{args.frames} x {SYMBOLS_PER_STREAM_FRAME} symbols per class, SNR and rate; {time.time() - t0:.0f} s.",
             "", "| samples per symbol | SNR (dB) | as it is | resampled (`symbol_rate` given) |", "|---|---|---|---|"]
    lines += [f"| {sps} | {snr:g} | {a:.1%} | {b:.1%} |" for sps, snr, a, b, _, _ in rows]
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
