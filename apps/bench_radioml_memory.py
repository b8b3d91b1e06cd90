#!/usr/bin/env python3
"""Peak memory of ``modrec evaluate`` on a RadioML 2018.01A-layout file, against the file's size.

RadioML 2018.01A is 2.5 M frames of 1024 samples (21 GB): evaluation must stream it. This writes
an HDF5 file of the same layout (X (N, 1024, 2) float32, Y one-hot (N, 24), Z (N, 1)) of
``--frames`` random frames into a temporary directory, exports an untrained 24-class cnn3 for
frame_len 1024 (weights do not change the cost), then runs ``modrec evaluate`` on every frame in a
child process and reports its peak resident memory (ru_maxrss), next to the peak of a child
process that only imports the same modules and loads the model (the fixed cost).
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _child_peak_mib(code):
    """Runs ``code`` in a fresh interpreter; its ru_maxrss in MiB (Linux reports KiB) and seconds."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code + "\nimport resource\n"
                          "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
                         check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=262144, help="frames in the file (default 262144 = 2 GiB of X)")
    parser.add_argument("--dir", help="where to write the file (default: a temporary directory)")
    args = parser.parse_args(argv)

    import h5py
    import torch

    from gnuradio.modrec.classes import RADIOML2018_CLASSES
    from gnuradio.modrec.training.onnx_export import export_onnx
    from gnuradio.modrec.training.models import create_model

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "GOLD_XYZ_OSC.0001_1024-layout.hdf5"
        rng = np.random.default_rng(0)
        n, step = args.frames, 8192
        with h5py.File(path, "w") as f:
            x = f.create_dataset("X", (n, 1024, 2), np.float32)
            y = f.create_dataset("Y", (n, 24), np.int64)
            for s in range(0, n, step):
                m = min(step, n - s)
                x[s : s + m] = rng.standard_normal((m, 1024, 2), np.float32)
                onehot = np.zeros((m, 24), np.int64)
                onehot[np.arange(m), (np.arange(s, s + m) // 64) % 24] = 1
                y[s : s + m] = onehot
            f["Z"] = (np.arange(n) % 26 * 2 - 20).reshape(-1, 1)
        model_path = Path(tmp) / "cnn3-rml2018.onnx"
        torch.manual_seed(0)
        export_onnx(create_model("cnn3", n_classes=24, frame_len=1024), model_path, classes=list(RADIOML2018_CLASSES),
                    frame_len=1024, architecture="cnn3", training={"note": "untrained, for the memory benchmark"},
                    dynamo=False, parity=False)
        size_mib = path.stat().st_size / 2**20
        base, _ = _child_peak_mib(
            "from gnuradio.modrec.training import evaluate as e\n"
            "from gnuradio.modrec.training.data import radioml\n"
            "from gnuradio.modrec.runtime import load_model\n"
            f"load_model({str(model_path)!r})\n")
        peak, seconds = _child_peak_mib(
            "from gnuradio.modrec.training.cli import main\n"
            f"assert main(['evaluate', '--onnx', {str(model_path)!r}, '--data', {str(path)!r}, "
            f"'--out', {str(Path(tmp) / 'eval')!r}, '--no-latency']) == 0\n")
    print(f"RadioML 2018.01A layout, {n:,} frames, {size_mib:,.0f} MiB file: modrec evaluate peak RSS {peak:,.0f} MiB "
          f"({peak - base:+,.0f} MiB over importing and loading the model: {base:,.0f} MiB), {seconds:.0f} s, "
          f"{n / seconds:,.0f} frames/s")


if __name__ == "__main__":
    main()
