#!/usr/bin/env python3
"""Soak: a long stream through modrec.classifier, memory sampled, every output sample checked.

source (a repeating block of complex noise) -> head(N) -> modrec.classifier (default model) ->
a checking sink. The sink compares every sample with the source's at the same offset (bit-exact,
so no sample is lost, repeated or changed) and counts the classifier's tags (one per frame). The
process's resident memory (RSS, /proc/self/statm) is sampled every --every seconds; growth is
measured from the first sample after --warmup seconds to the end.

Prints one line per RSS sample and a summary: samples, MS/s, RSS after warm-up and at the end,
growth, mismatches, tags. Exit status 1 when an output sample differs or the tag count is wrong.
Default N = 1e9 samples: about 15-25 minutes on one core of the 2-core development machine.
"""

import argparse
import os
import resource
import threading
import time

import numpy as np
import pmt
from gnuradio import blocks, gr

from gnuradio import modrec

PAGE = resource.getpagesize()


def rss_mib():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 2**20


class checking_sink(gr.sync_block):
    """Compares the stream with ``pattern`` repeated, counts mismatches and classifier tags."""

    def __init__(self, pattern, tag_key="modrec"):
        gr.sync_block.__init__(self, name="checking_sink", in_sig=[np.complex64], out_sig=None)
        self._pattern = np.concatenate([pattern, pattern])  # any window of len(pattern) is a slice
        self._period = len(pattern)
        self._key = pmt.intern(tag_key)
        self.samples = self.mismatches = self.tags = 0

    def work(self, input_items, output_items):
        x = input_items[0]
        n = len(x)
        start = self.nitems_read(0)
        done = 0
        while done < n:  # compare in pieces of at most one period
            k = min(n - done, self._period)
            phase = (start + done) % self._period
            expected = self._pattern[phase : phase + k]
            self.mismatches += int(np.count_nonzero(x[done : done + k].view(np.uint64) != expected.view(np.uint64)))
            done += k
        self.tags += len(self.get_tags_in_window(0, 0, n, self._key))
        self.samples = start + n
        return n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=float, default=1e9, help="samples through the classifier (default 1e9)")
    parser.add_argument("--model", default="", help="ONNX model: a path or a shipped model's name, e.g. cnn3 (default: the shipped default)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before the RSS baseline")
    args = parser.parse_args(argv)

    n = int(args.samples)
    rng = np.random.default_rng(0)
    pattern = (rng.standard_normal(1 << 16) + 1j * rng.standard_normal(1 << 16)).astype(np.complex64)
    tb = gr.top_block()
    src = blocks.vector_source_c(pattern, True)
    head = blocks.head(gr.sizeof_gr_complex, n)
    clf = modrec.classifier(args.model)
    sink = checking_sink(pattern)
    tb.connect(src, head, clf, sink)

    samples = []  # (seconds, RSS MiB, samples through)
    done = threading.Event()

    def sample_rss(t0):
        while not done.wait(args.every):
            samples.append((time.perf_counter() - t0, rss_mib(), sink.samples))
            t, rss, through = samples[-1]
            print(f"{t:8.1f} s  RSS {rss:8.1f} MiB  {through / 1e6:10.1f} MS  {through / t / 1e6:6.2f} MS/s", flush=True)

    t0 = time.perf_counter()
    watcher = threading.Thread(target=sample_rss, args=(t0,), daemon=True)
    watcher.start()
    tb.run()
    elapsed = time.perf_counter() - t0
    done.set()
    watcher.join()
    end_rss = rss_mib()
    after = [s for s in samples if s[0] >= args.warmup] or samples[-1:] or [(elapsed, end_rss, n)]
    base = after[0][1]
    frames = n // clf.frame_len
    ok = sink.mismatches == 0 and sink.samples == n and sink.tags == frames
    print(f"soak: {sink.samples:,} samples in {elapsed:.0f} s ({sink.samples / elapsed / 1e6:.2f} MS/s), model "
          f"{os.path.basename(clf.model_path)}; RSS {base:.1f} MiB after {after[0][0]:.0f} s warm-up, {end_rss:.1f} MiB at "
          f"the end (growth {end_rss - base:+.1f} MiB, max {max(s[1] for s in after):.1f}); mismatches "
          f"{sink.mismatches}, tags {sink.tags:,} of {frames:,} frames: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
