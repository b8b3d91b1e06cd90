#!/usr/bin/env python3
"""Stream throughput of modrec.classifier against plain flowgraphs, measured in one run.

Three flowgraphs push the same complex noise through `head` into a null sink:
  plain        source -> head -> sink                     (GNU Radio's own ceiling)
  passthrough  source -> head -> Python copy block -> sink (the Python block ceiling)
  classifier   source -> head -> modrec.classifier -> sink (hop = frame_len; the C++ core)
  python core  the same with the Python core (what the C++ core buys)
  unchecked    the same with check_oversampling=False: what the oversampling check costs (its
               session.run share timed too: the block's own cost with the check left out)
  resampled    the same with sample_rate = 2 x the model's samples per symbol x symbol_rate: the
               block resamples by 1/2 before framing (a capture at 16 samples per symbol)
  viewed       the classifier's output also into a QT GUI Classification Sink (which reads its
               tags), whose Qt event loop runs (repaints at its default 10 Hz) while the stream flows
  raw ORT      the model's ONNX Runtime session alone (one thread) on the same frames, in the batch
               sizes the classifier's runs handed it (recorded), each run in the same session calls
               (slices of runtime.onnx_model.RUN_FRAMES): the ceiling the block works against
Figures are samples/s (best of --repeats) and the classifier's ratio to each baseline. The ratio to
raw ORT is also given per round (the raw run right after the classifier's), whose median holds
better than a ratio of two bests where the machine's speed drifts between runs (a shared VM's
did by 20-30 % within a minute, 2026-12-01). Steadier still is the share of each run's time spent
inside the model's ``session.run`` (timed in both): the machine's speed moves the model and the
rest alike within one run, so the shares held within 0.5 % over rounds whose ratio moved 0.83-1.05
(2026-12-01); the ratio of the shares is classifier / raw ORT where the model runs as fast in
the block as alone.
"""

import argparse
import os
import threading
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # the viewed run draws, with or without a screen

import numpy as np
from gnuradio import blocks, gr
from PyQt5 import QtWidgets

from gnuradio import modrec


class python_passthrough(gr.sync_block):
    """The cheapest useful Python block: copies input to output."""

    def __init__(self):
        gr.sync_block.__init__(self, "python_passthrough", [np.complex64], [np.complex64])

    def work(self, input_items, output_items):
        output_items[0][:] = input_items[0]
        return len(output_items[0])


def run_once(make_middle, n_samples, noise):
    """Samples/s through source -> head -> middle -> null sink. ``make_middle(tb)`` returns the
    middle block (None for none) and a list of other blocks it connected (kept alive while the
    flowgraph runs). Every run processes Qt events while the stream flows, as a QT GUI
    flowgraph's main thread does, so runs with and without a view differ only by the view."""
    tb = gr.top_block()
    source = blocks.vector_source_c(noise, True)
    head = blocks.head(gr.sizeof_gr_complex, n_samples)
    sink = blocks.null_sink(gr.sizeof_gr_complex)
    middle, others = make_middle(tb)
    chain = [source, head] + ([middle] if middle is not None else []) + [sink]
    tb.connect(*chain)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["bench_block"])
    start = time.perf_counter()
    done = threading.Event()
    tb.start()
    threading.Thread(target=lambda: (tb.wait(), done.set()), daemon=True).start()
    while not done.is_set():
        app.processEvents()
        done.wait(0.005)
    elapsed = time.perf_counter() - start
    del chain, middle, others  # references were held while the flowgraph ran
    return n_samples / elapsed


class _TimedSession:
    """An ONNX Runtime session whose ``run`` calls add their seconds to ``seconds[0]``."""

    def __init__(self, session, seconds):
        self._session, self._seconds = session, seconds

    def run(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._session.run(*args, **kwargs)
        finally:
            self._seconds[0] += time.perf_counter() - start

    def __getattr__(self, name):
        return getattr(self._session, name)


def recording_batches(clf, batches, ort_seconds):
    """``clf`` with its model's batch sizes appended to ``batches`` as it runs, and the seconds
    its ONNX Runtime session spends in ``run`` added to ``ort_seconds[0]``."""
    model = clf.model
    predict = model.predict_details

    def recorded(frames):
        batches.append(len(frames))
        return predict(frames)

    model.predict_details = recorded
    model._session = _TimedSession(model._session, ort_seconds)  # a benchmark may reach inside
    return clf


def raw_samples_per_second(model_path, batches, noise, frame_len):
    """(samples/s, share of the time in ``session.run``) of the model's ONNX Runtime session alone
    (one thread, the runtime's session options) over sum(batches) frames of ``noise`` in those
    batch sizes, each in the session calls the runtime makes of it (slices of RUN_FRAMES),
    framing included as numpy (complex frames -> (N, 2, L) float32, as the block's decisions do)."""
    from gnuradio.modrec.runtime.onnx_model import RUN_FRAMES, open_session, session_options

    session = open_session(model_path, session_options(1))
    name = session.get_inputs()[0].name
    total = sum(batches)
    stream = np.resize(noise, total * frame_len).reshape(total, frame_len)
    iq = np.empty((total, 2, frame_len), dtype=np.float32)
    session.run(None, {name: iq[:1]})
    timed = [0.0]
    session = _TimedSession(session, timed)  # timed as the classifier's is, at the same cost
    start, pos = time.perf_counter(), 0
    for b in batches:
        iq[pos : pos + b, 0], iq[pos : pos + b, 1] = stream[pos : pos + b].real, stream[pos : pos + b].imag
        for s in range(pos, pos + b, RUN_FRAMES):
            session.run(None, {name: iq[s : min(s + RUN_FRAMES, pos + b)]})
        pos += b
    elapsed = time.perf_counter() - start
    return total * frame_len / elapsed, timed[0] / elapsed


def viewed_classifier(model_path):
    """make_middle for the viewed run: the classifier with a classification sink on its output stream
    (next to the null sink), as a QT GUI flowgraph connects it."""

    def make(tb):
        clf = modrec.classifier(model_path)
        view = modrec.classification_sink(model_path)
        tb.connect(clf, view)
        return clf, [view]

    return make


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="ONNX model: a path or a shipped model's name, e.g. cnn3 (default: the shipped default)")
    parser.add_argument("--samples", type=int, default=4_000_000, help="samples per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=1,
                        help="cores the process may run on (os.sched_setaffinity; default 1: every figure is one "
                             "core's, the flowgraph's threads and ONNX Runtime's sharing it); 0: all")
    args = parser.parse_args(argv)
    if args.cores:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])

    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(1 << 16) + 1j * rng.standard_normal(1 << 16)).astype(np.complex64)
    # Build once outside the timing: loading the ONNX session is not stream throughput.
    probe = modrec.classifier(args.model)
    batches = []  # frames per model call in the last classifier run
    frame_len = probe.frame_len
    model_path = probe.model_path
    sps = probe.samples_per_symbol
    del probe

    makers = {
        "plain": lambda tb: (None, []),
        "passthrough": lambda tb: (python_passthrough(), []),
        "classifier": lambda tb: (recording_batches(modrec.classifier(model_path), batches, ort_seconds), []),
        "python core": lambda tb: (modrec.classifier(model_path, _core="python"), []),
        "unchecked": lambda tb: (recording_batches(modrec.classifier(model_path, check_oversampling=False), [],
                                                   ort_seconds), []),
        "resampled": lambda tb: (modrec.classifier(model_path, sample_rate=2.0 * sps, symbol_rate=1.0), []),
        "viewed": viewed_classifier(model_path),
    }
    best = {name: 0.0 for name in makers}
    best["raw ORT"] = 0.0
    paired = []  # classifier / raw ORT in each round, the raw run right after the classifier's
    # share of each run's time inside session.run: the block's and the raw loop's (their ratio
    # does not move with the machine's speed, which changes between two runs)
    shares = []
    unchecked_shares = []  # the unchecked run's session.run share, beside the classifier's
    ort_seconds = [0.0]
    # rounds, each running every flowgraph once: a slow spell of the machine hits all alike
    for _ in range(args.repeats):
        for name, make in makers.items():
            batches.clear()
            ort_seconds[0] = 0.0
            rate = run_once(make, args.samples, noise)
            best[name] = max(best[name], rate)
            if name == "unchecked":
                unchecked_shares.append(ort_seconds[0] / (args.samples / rate))
            if name == "classifier":
                block_share = ort_seconds[0] / (args.samples / rate)
                raw, raw_share = raw_samples_per_second(model_path, batches, noise, frame_len)
                best["raw ORT"] = max(best["raw ORT"], raw)
                paired.append(rate / raw)
                shares.append((block_share, raw_share))
                mean_batch = float(np.mean(batches))

    print(f"block throughput ({args.samples} samples, best of {args.repeats}, frame_len {frame_len}, hop {frame_len}, "
          f"{len(os.sched_getaffinity(0))} core(s); model {model_path})")
    for name, rate in best.items():
        extra = {"classifier": f"  ({rate / frame_len:,.0f} frames/s)",
                 "unchecked": f"  ({rate / frame_len:,.0f} frames/s)",
                 "python core": f"  ({rate / frame_len:,.0f} frames/s)",
                 "raw ORT": f"  ({rate / frame_len:,.0f} frames/s; batches of {mean_batch:.0f} frames on average)",
                 "viewed": f"  ({rate / frame_len:,.0f} frames/s)",
                 "resampled": f"  ({rate / (2 * frame_len):,.0f} frames/s)"}.get(name, "")
        print(f"  {name:<12} {rate / 1e6:8.2f} MS/s{extra}")
    print(f"  classifier / raw ORT     = {best['classifier'] / best['raw ORT']:.3f} (the same model, frames and batches; "
          f"paired in each round: median {np.median(paired):.3f}, {min(paired):.3f}-{max(paired):.3f})")
    block_share, raw_share = np.median(np.array(shares), axis=0)
    print(f"  session.run share of the time: classifier {block_share:.3f}, raw ORT {raw_share:.3f} (medians); "
          f"their ratio {block_share / raw_share:.3f} is classifier / raw ORT where the model runs as fast in the "
          f"block as alone")
    unchecked_share = float(np.median(unchecked_shares))
    print(f"  without the oversampling check: session.run share {unchecked_share:.3f}, ratio to raw ORT's "
          f"{unchecked_share / raw_share:.3f} (the block's own cost, the check's left out)")
    print(f"  classifier / python core = {best['classifier'] / best['python core']:.3f} (what the C++ core buys)")
    print(f"  classifier / passthrough = {best['classifier'] / best['passthrough']:.3f}")
    print(f"  classifier / plain       = {best['classifier'] / best['plain']:.3f}")
    print(f"  resampled / classifier   = {best['resampled'] / best['classifier']:.3f} (samples/s)")
    print(f"  classifier / unchecked   = {best['classifier'] / best['unchecked']:.3f} (the oversampling check's cost)")
    print(f"  viewed / classifier      = {best['viewed'] / best['classifier']:.3f} (a connected live view's cost)")


if __name__ == "__main__":
    main()
