#!/usr/bin/env python3
"""ONNX Runtime against torch eager on the same model, one thread each, in one run.

Frames/s at batch 1 and batch 256. The torch side is the registry architecture named in the
ONNX metadata, built with the experiment config the metadata records; weights do not change
the cost, so a freshly initialised network is timed.
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from gnuradio.modrec.runtime import OnnxModel, resolve_model
from gnuradio.modrec.training.models import create_model


def frames_per_second(run, batch, min_seconds):
    run()  # warm-up: first calls allocate
    count, start = 0, time.perf_counter()
    while True:
        run()
        count += batch
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return count / elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="ONNX model: a path or a shipped model's name, e.g. cnn3 (default: the shipped default)")
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum time per figure")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    path = resolve_model(args.model)
    onnx_model = OnnxModel(path, threads=1)
    meta = onnx_model.metadata
    # The exporter records the experiment config; fall back to the architecture's defaults.
    model_cfg = dict(meta["training"].get("config", {}).get("model", {}).get("cfg", {}))
    model_cfg.update(n_classes=len(onnx_model.classes), frame_len=onnx_model.frame_len)
    net = create_model(meta["architecture"], **model_cfg).eval()

    rng = np.random.default_rng(0)
    print(f"inference ({path}, architecture {meta['architecture']}, {meta['flops']:,} FLOPs/frame, 1 thread)")
    results = {}
    for batch in (1, 256):
        frames = rng.standard_normal((batch, 2, onnx_model.frame_len)).astype(np.float32)
        tensor = torch.from_numpy(frames)

        def run_torch():
            with torch.inference_mode():
                torch.softmax(net(tensor), dim=1)

        ort_fps = frames_per_second(lambda: onnx_model.predict(frames), batch, args.seconds)
        torch_fps = frames_per_second(run_torch, batch, args.seconds)
        results[batch] = (ort_fps, torch_fps)
        print(
            f"  batch {batch:>3}: onnxruntime {ort_fps:10,.0f} frames/s   torch eager {torch_fps:10,.0f} frames/s"
            f"   ratio {ort_fps / torch_fps:.2f}x"
        )
    gflops = meta["flops"] * results[256][0] / 1e9
    print(f"  onnxruntime at batch 256 sustains {gflops:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
