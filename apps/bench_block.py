#!/usr/bin/env python3
"""Stream throughput of modrec.classifier against plain flowgraphs, measured in one run.

Three flowgraphs push the same complex noise through `head` into a null sink:
  plain        source -> head -> sink                     (GNU Radio's own ceiling)
  passthrough  source -> head -> Python copy block -> sink (the Python block ceiling)
  classifier   source -> head -> modrec.classifier -> sink (hop = frame_len)
  unchecked    the same with check_oversampling=False: what the oversampling check costs
  resampled    the same with sample_rate = 2 x the model's samples per symbol x symbol_rate: the
               block resamples by 1/2 before framing (a capture at 16 samples per symbol)
Figures are samples/s (best of --repeats) and the classifier's ratio to each baseline.
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from gnuradio import blocks, gr

from gnuradio import modrec


class python_passthrough(gr.sync_block):
    """The cheapest useful Python block: copies input to output."""

    def __init__(self):
        gr.sync_block.__init__(self, "python_passthrough", [np.complex64], [np.complex64])

    def work(self, input_items, output_items):
        output_items[0][:] = input_items[0]
        return len(output_items[0])


def run_once(make_middle, n_samples, noise):
    tb = gr.top_block()
    source = blocks.vector_source_c(noise, True)
    head = blocks.head(gr.sizeof_gr_complex, n_samples)
    sink = blocks.null_sink(gr.sizeof_gr_complex)
    middle = make_middle()
    chain = [source, head] + ([middle] if middle is not None else []) + [sink]
    tb.connect(*chain)
    start = time.perf_counter()
    tb.run()
    elapsed = time.perf_counter() - start
    del chain, middle  # references were held while the flowgraph ran
    return n_samples / elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="ONNX model: a path or a shipped model's name, e.g. cnn3 (default: the shipped default)")
    parser.add_argument("--samples", type=int, default=4_000_000, help="samples per run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(1 << 16) + 1j * rng.standard_normal(1 << 16)).astype(np.complex64)
    # Build once outside the timing: loading the ONNX session is not stream throughput.
    probe = modrec.classifier(args.model)
    frame_len = probe.frame_len
    model_path = probe.model_path
    sps = probe.samples_per_symbol
    del probe

    makers = {
        "plain": lambda: None,
        "passthrough": python_passthrough,
        "classifier": lambda: modrec.classifier(model_path),
        "unchecked": lambda: modrec.classifier(model_path, check_oversampling=False),
        "resampled": lambda: modrec.classifier(model_path, sample_rate=2.0 * sps, symbol_rate=1.0),
    }
    best = {}
    for name, make in makers.items():
        best[name] = max(run_once(make, args.samples, noise) for _ in range(args.repeats))

    print(f"block throughput ({args.samples} samples, best of {args.repeats}, frame_len {frame_len}, hop {frame_len})")
    for name, rate in best.items():
        extra = {"classifier": f"  ({rate / frame_len:,.0f} frames/s)",
                 "unchecked": f"  ({rate / frame_len:,.0f} frames/s)",
                 "resampled": f"  ({rate / (2 * frame_len):,.0f} frames/s)"}.get(name, "")
        print(f"  {name:<12} {rate / 1e6:8.2f} MS/s{extra}")
    print(f"  classifier / passthrough = {best['classifier'] / best['passthrough']:.3f}")
    print(f"  classifier / plain       = {best['classifier'] / best['plain']:.3f}")
    print(f"  resampled / classifier   = {best['resampled'] / best['classifier']:.3f} (samples/s)")
    print(f"  classifier / unchecked   = {best['classifier'] / best['unchecked']:.3f} (the oversampling check's cost)")


if __name__ == "__main__":
    main()
