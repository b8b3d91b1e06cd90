#!/usr/bin/env python3
"""ONNX Runtime settings measured side by side on one model: what each choice is worth here.

  peak        the machine's fp32 peak on one thread (a numpy matrix product), for GFLOP/s figures
  layout      the model's 1-D convolutions exported as they are against the (1 x k) 2-D layout the
              exporter writes (training/conv2d_layout.py), as the exporter wrote it before its
              squeeze-excite and pooling were kept blocked and as it writes it now
              (training/nchwc_graph.py); fresh weights of the same architecture: weights do not
              change the cost
  opt level   graph optimisation levels (disable, basic, extended, all), and a model saved after
              optimisation at "all" and loaded with optimisation off (what it saves at load)
  batch       frames per Session.run call: what the classifier block's batches cost per frame
  cores       one session with one and with two intra-op threads, and two one-thread sessions
              each fed half of the frames from its own Python thread (onnxruntime releases the GIL)
  int8        the model against its int8 copy (modrec quantize's code: static QDQ, per-channel;
              apps/quantization_study.py adds each shipped model's accuracy change)
  models      every shipped model with all of contract version 2's outputs (classes, noise, SNR)
              against the shipped default: which ones would make the default faster
Figures are frames/s and ratios; every comparison within a group is measured in paired rounds
(runtime/timing.py), the median round counts. Needs the training extra (torch) for "layout".
"""

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import onnxruntime as ort

from gnuradio.modrec import contract
from gnuradio.modrec.runtime import OnnxModel, resolve_model
from gnuradio.modrec.runtime.onnx_model import session_options, shipped_models
from gnuradio.modrec.runtime.timing import paired_times, seconds_per_frame

LEVELS = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
          "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def fp32_peak_gflops(seconds=1.0, n=1024):
    """One thread's fp32 matrix-product rate, GFLOP/s (numpy's BLAS, n x n by n x n)."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    a @ a
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ a
        count += 1
    return 2 * n ** 3 * count / (time.perf_counter() - start) / 1e9


def session(path, threads=1, level="all", optimized_path=None):
    opts = session_options(threads)
    opts.graph_optimization_level = LEVELS[level]
    if optimized_path:
        opts.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def runner(sess):
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})


def print_group(title, times, reference, flops):
    print(f"  {title}")
    ref = np.median(times[reference])
    for name, t in times.items():
        t = float(np.median(t))
        gflops = f"  {flops / t / 1e9:5.1f} GFLOP/s" if flops else ""
        print(f"    {name:<34} {1 / t:10,.0f} frames/s   x{ref / t:5.2f} vs {reference}{gflops}")


def layout_files(architecture, cfg, n_classes, frame_len, folder):
    """The architecture exported with fresh weights in both layouts, the 2-D one also without the
    blocked rewrite: {name: path}, or {} when torch (the training extra) is missing."""
    try:
        import torch

        from gnuradio.modrec.training.models import create_model
        from gnuradio.modrec.training.onnx_export import export_onnx
    except ImportError:
        return {}
    torch.manual_seed(0)
    model = create_model(architecture, **{**cfg, "n_classes": n_classes, "frame_len": frame_len})
    # a classifier with detector heads counts noise among its n_classes and names its known ones
    known = n_classes - 1 if hasattr(model, "forward_detect") else n_classes
    files = {}
    variants = {f"{contract.CONV_LAYOUT_1D} layout": (contract.CONV_LAYOUT_1D, False),
                f"{contract.CONV_LAYOUT_2D} layout, as exported before the blocked rewrite": (contract.CONV_LAYOUT_2D, False),
                f"{contract.CONV_LAYOUT_2D} layout, blocked (the export)": (contract.CONV_LAYOUT_2D, True)}
    for i, (name, (layout, blocked)) in enumerate(variants.items()):
        path = Path(folder) / f"layout{i}.onnx"
        export_onnx(model, path, classes=[f"c{k}" for k in range(known)], frame_len=frame_len, training={},
                    conv_layout=layout, parity=False, blocked=blocked)
        files[name] = path
    return files


def _with_heads():
    """Architectures with detector heads of their own (models/detecting.py); empty without torch."""
    try:
        from gnuradio.modrec.training.models import list_models
    except ImportError:
        return set()
    return set(list_models(kind="detecting"))


def two_sessions_seconds_per_frame(sessions, frames, batch):
    """Wall time per frame of ``sessions`` running at once, each on its share of ``frames``."""
    shares = np.array_split(frames, len(sessions))
    threads = [threading.Thread(target=seconds_per_frame, args=(runner(s), share, batch))
               for s, share in zip(sessions, shares)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - start) / len(frames)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="ONNX model: a path or a shipped model's name (default: the shipped default)")
    parser.add_argument("--frames", type=int, default=8192, help="frames per timed pass")
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds per comparison (the median counts)")
    args = parser.parse_args(argv)

    path = resolve_model(args.model)
    model = OnnxModel(path, threads=1)
    meta, frame_len = model.metadata, model.frame_len
    flops = int(meta[contract.FLOPS])
    frames = np.random.default_rng(0).standard_normal((args.frames, 2, frame_len)).astype(np.float32)
    peak = fp32_peak_gflops()
    print(f"onnxruntime settings ({path}; {flops:,} FLOPs/frame; conv layout "
          f"{meta.get(contract.CONV_LAYOUT, contract.CONV_LAYOUT_1D)}; onnxruntime {ort.__version__})")
    print(f"  fp32 peak, one thread (numpy matrix product): {peak:.1f} GFLOP/s")

    with tempfile.TemporaryDirectory() as tmp:
        cfg = dict(meta[contract.TRAINING].get("config", {}).get("model", {}).get("cfg", {}))
        # the classifier alone: without the noise class a detector joined at export adds (a model
        # with detector heads of its own keeps it: they are in the layout too)
        joined = contract.NOISE_CLASS in meta and meta[contract.ARCHITECTURE] not in _with_heads()
        files = layout_files(meta[contract.ARCHITECTURE], cfg, len(model.classes) - joined, frame_len, tmp)
        if files:
            times = paired_times({f"{name} (classifier alone)": runner(session(p)) for name, p in files.items()},
                                 frames, rounds=args.rounds)
            print_group(f"layout: {meta[contract.ARCHITECTURE]}, fresh weights, batch 256", times,
                        f"{contract.CONV_LAYOUT_1D} layout (classifier alone)", None)
        else:
            print("  layout: skipped (needs torch: the training extra)")
        if files:
            from gnuradio.modrec.training.quantize import quantize_int8

            int8 = Path(tmp) / "int8.onnx"
            quantize_int8(path, int8, n_frames=512)
            times = paired_times({"fp32": runner(session(path)), "int8 (static QDQ, per-channel)": runner(session(int8))},
                                 frames, rounds=args.rounds)
            print_group("int8, batch 256", times, "fp32", flops)

        shipped = {name: OnnxModel(p, threads=1) for name, p in shipped_models().items()}
        full = {name: m.path for name, m in shipped.items() if contract.NOISE_CLASS in m.metadata and m.has_snr}
        default = Path(resolve_model("")).stem
        if default in full and len(full) > 1:
            times = paired_times({name: runner(session(p)) for name, p in full.items()}, frames, rounds=args.rounds)
            print_group("models with classes, noise and SNR (contract version 2), batch 256", times, default, None)

        optimized = Path(tmp) / "optimized.onnx"
        session(path, optimized_path=optimized)
        predicts = {f"level {name}": runner(session(path, level=name)) for name in LEVELS}
        predicts["saved at 'all', loaded unoptimised"] = runner(session(optimized, level="disable"))
        print_group("graph optimisation, batch 256", paired_times(predicts, frames, rounds=args.rounds), "level all",
                    flops)
        load = {}
        for name, file, level in (("load at 'all'", path, "all"), ("load saved, unoptimised", optimized, "disable")):
            start = time.perf_counter()
            for _ in range(5):
                session(file, level=level)
            load[name] = (time.perf_counter() - start) / 5
        print("    session load: " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in load.items()))

    one = runner(session(path))
    times = {f"batch {b}": [] for b in (1, 16, 64, 256, 1024)}
    for b in (1, 16, 64, 256, 1024):
        one(frames[:b])
    for _ in range(args.rounds):
        for b in (1, 16, 64, 256, 1024):
            times[f"batch {b}"].append(seconds_per_frame(one, frames[: max(b * 4, 2048)], b))
    print_group("frames per Session.run call, one thread", times, "batch 256", flops)

    single, double = session(path, threads=1), session(path, threads=2)
    pair = [session(path, threads=1), session(path, threads=1)]
    runner(pair[0])(frames[:256]), runner(pair[1])(frames[:256]), runner(double)(frames[:256])
    times = {"one session, 1 thread": [], "one session, 2 threads": [], "two sessions, 1 thread each": []}
    for _ in range(args.rounds):
        times["one session, 1 thread"].append(seconds_per_frame(runner(single), frames, 256))
        times["one session, 2 threads"].append(seconds_per_frame(runner(double), frames, 256))
        times["two sessions, 1 thread each"].append(two_sessions_seconds_per_frame(pair, frames, 256))
    print_group(f"cores (this machine has {os.cpu_count()}), batch 256", times, "one session, 1 thread", flops)
    print(f"  GFLOP/s above are against the fp32 peak of {peak:.1f} GFLOP/s on one thread")


if __name__ == "__main__":
    main()
