#!/usr/bin/env python3
"""Accuracy of a model against the oversampling of its input, with and without resampling, and
what the classifier's oversampling check does to confident wrong classes.

A model recognises signals at the samples per symbol it was trained at (8 for the shipped
students). This synthesises the same signals, physically, sampled at 2, 4, 8 and 16 samples per
symbol: every generator parameter given per sample is rescaled (carrier offset, Doppler, FM
deviation and audio rate by 8/sps, multipath delays by sps/8, within the generator's limits),
so only the sample rate differs. Each stream is one continuous generator frame (one channel,
no joins: a join every few symbols would put lines of its own in the cyclic spectrum), framed
exactly as the classifier block frames it: as it is (``StreamFramer``, symbol_rate not given)
or resampled to the model's samples per symbol (``ResampledFramer``, the block's
``symbol_rate`` option and ``modrec classify --symbol-rate``).

Per (samples per symbol, SNR), over every class:
- accuracy of the top class, as it is and resampled;
- decisions as the block makes them (``decisions.classify_frames`` with the model's rule), on
  the stream as it is, without and with the oversampling check
  (``oversampling.OversamplingMonitor``): the share of frames given a confident wrong class
  (a class, not noise or unknown, and not the true one), and the share the check flags. Frames
  ending in a stream's first window are never judged by the check, so these shares count the
  frames after it.
Per (samples per symbol, class), over the SNRs: the share of frames the check flags.

Prints markdown tables and writes them with --out.
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from gnuradio.modrec.runtime import StreamFramer, complex_to_iq, load_model, resolve_model
from gnuradio.modrec.runtime.decisions import MODEL_RULE, classify_frames
from gnuradio.modrec.runtime.framing import ResampledFramer
from gnuradio.modrec.runtime.oversampling import WINDOW_LEN, OversamplingMonitor
from gnuradio.modrec.runtime.resample import rational_ratio
from gnuradio.modrec.training.data.generator import DEFAULT_CONFIG, generate_frames


def config_at(sps, stream_len, base=DEFAULT_CONFIG):
    """The generator's configuration for the same physical signals sampled at ``sps``, one
    generator frame of ``stream_len`` samples per stream."""
    k = base.samples_per_symbol / sps  # per-sample frequencies scale by k, delays by 1/k

    def scale(lo_hi, f, limit):
        # at 2 samples per symbol a wideband FM signal no longer fits the band: it is held at the
        # generator's limit (the study's WBFM rows at 2 sps are of a narrower signal)
        return tuple(min(v * f, limit) for v in lo_hi)

    return dataclasses.replace(
        base, samples_per_symbol=sps, frame_len=stream_len,
        cfo_max=base.cfo_max * k, doppler_range=scale(base.doppler_range, k, 0.05),
        wbfm_deviation_range=scale(base.wbfm_deviation_range, k, 0.5),
        audio_ratio_range=scale(base.audio_ratio_range, k, 1.0),
        max_delay_samples=max(0, int(round(base.max_delay_samples / k))),
    )


def framed(model, stream, framer):
    """All frames of a stream as the block cuts them, and the model-rate samples they came from."""
    samples = framer.push(stream)
    _, frames = framer.take_complete()
    _, more = framer.finish()
    return np.concatenate([frames, more]), samples


class Tally:
    def __init__(self):
        self.n = self.correct = 0  # top-class accuracy
        self.judged = self.wrong_before = self.wrong_after = self.flagged = 0  # after the first window

    def share(self, name):
        count = getattr(self, name)
        return count / self.n if name == "correct" else count / max(self.judged, 1)


def confident_wrong(model, index, label):
    noise = model.open_set.noise_class
    noise_index = model.classes.index(noise) if noise is not None else -2
    return (index >= 0) & (index != noise_index) & (index != label)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="ONNX model: a path or a shipped model's name, e.g. cnn3 (default: the shipped default)")
    parser.add_argument("--sps", default="2,4,8,16", help="samples per symbol to try")
    parser.add_argument("--snrs", default="0,10,18", help="SNRs in dB")
    parser.add_argument("--streams", type=int, default=4, help="streams per class, SNR and sps")
    parser.add_argument("--stream-len", type=int, default=65536, help="samples per stream (one generator frame)")
    parser.add_argument("--out", help="write the markdown tables here")
    args = parser.parse_args(argv)

    path = resolve_model(args.model)
    model = load_model(path, threads=1)
    L = model.frame_len
    sps_list = [int(s) for s in args.sps.split(",")]
    snrs = [float(s) for s in args.snrs.split(",")]
    rows = []
    flagged_by_class = {}  # (sps, class) -> [flagged, judged]
    t0 = time.time()
    for sps in sps_list:
        cfg = config_at(sps, args.stream_len)
        up, down = rational_ratio(sps, model.samples_per_symbol)
        for snr in snrs:
            plain, resampled = Tally(), Tally()
            for label, name in enumerate(model.classes):
                if name == model.open_set.noise_class:
                    continue
                rng = np.random.default_rng([sps, int(snr * 10) + 1000, label])
                for stream in generate_frames(name, args.streams, snr, rng, cfg, random_gain=False):
                    frames, samples = framed(model, stream, StreamFramer(L, L))
                    before = classify_frames(model, frames, MODEL_RULE)
                    monitor = OversamplingMonitor(model.samples_per_symbol, L, L)
                    monitor.observe(samples)
                    _, mismatch = monitor.judge(len(frames))
                    after = classify_frames(model, frames, MODEL_RULE, mismatch)
                    judged = np.arange(len(frames)) * L + L > WINDOW_LEN  # past the first window
                    plain.n += len(frames)
                    plain.correct += int((before.probs.argmax(1) == label).sum())
                    plain.judged += int(judged.sum())
                    plain.wrong_before += int((confident_wrong(model, before.index, label) & judged).sum())
                    plain.wrong_after += int((confident_wrong(model, after.index, label) & judged).sum())
                    plain.flagged += int((mismatch & judged).sum())
                    tally = flagged_by_class.setdefault((sps, name), [0, 0])
                    tally[0] += int((mismatch & judged).sum())
                    tally[1] += int(judged.sum())
                    if (up, down) != (1, 1):
                        frames, _ = framed(model, stream, ResampledFramer(L, L, up, down))
                    resampled.n += len(frames)
                    resampled.correct += int((model.predict(complex_to_iq(frames)).argmax(1) == label).sum())
            rows.append((sps, snr, plain, resampled))
            print(f"sps {sps:2d} SNR {snr:5.1f} dB: as it is {plain.share('correct'):.3f}, resampled {up}/{down} "
                  f"{resampled.share('correct'):.3f}; confident wrong {plain.share('wrong_before'):.3f} -> "
                  f"{plain.share('wrong_after'):.3f}, flagged {plain.share('flagged'):.3f}",
                  file=sys.stderr, flush=True)
    lines = [f"Model `{Path(path).name}` (trained at {model.samples_per_symbol} samples per symbol); "
             f"{args.streams} streams of {args.stream_len} samples per class, SNR and rate; "
             f"{time.time() - t0:.0f} s.", "",
             "| samples per symbol | SNR (dB) | accuracy as it is | accuracy resampled (`symbol_rate` given) "
             "| confident wrong class, no check | with the check | frames flagged |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {sps} | {snr:g} | {p.share('correct'):.1%} | {r.share('correct'):.1%} | "
              f"{p.share('wrong_before'):.1%} | {p.share('wrong_after'):.1%} | {p.share('flagged'):.1%} |"
              for sps, snr, p, r in rows]
    names = [c for c in model.classes if c != model.open_set.noise_class]
    lines += ["", "Frames flagged by the check, per class (all SNRs above):", "",
              "| samples per symbol | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {sps} | " + " | ".join(f"{flagged_by_class[sps, c][0] / max(flagged_by_class[sps, c][1], 1):.0%}"
                                         for c in names) + " |" for sps in sps_list]
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
