#!/usr/bin/env python3
"""Screenshot of the live view for the README (docs/live_view.png), taken headless.

Compiles apps/examples/simulated_live_view.grc with grcc (GRC_BLOCKS_PATH = this checkout's
grc/), runs the generated QT GUI flowgraph offscreen (QT_QPA_PLATFORM=offscreen, no display
needed) for --seconds while the simulated transmitter changes class every --class-seconds, then
saves the grabbed window (QWidget.grab()): the sliders, the QT GUI Classification Sink and the
frequency sink, at --size pixels. Prints what the view showed.

    .venv/bin/python apps/screenshot_live_view.py            # writes docs/live_view.png

It imports the installed gr-modrec (refresh it with cmake --install build after editing
python/modrec).
"""

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Before Qt is imported: the offscreen platform draws into memory, no display or X server.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "apps" / "examples" / "simulated_live_view.grc"
NAME = EXAMPLE.stem  # grcc names the module and its top block class after the flowgraph's id


def compile_example(out_dir):
    """grcc EXAMPLE into out_dir with this checkout's block descriptions; returns out_dir."""
    grcc = shutil.which("grcc")
    if grcc is None:
        sys.exit("screenshot: grcc (GNU Radio Companion's compiler) not found on PATH")
    env = dict(os.environ, GRC_BLOCKS_PATH=str(ROOT / "grc"))
    result = subprocess.run([grcc, "-o", str(out_dir), str(EXAMPLE)], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"screenshot: grcc failed on {EXAMPLE}:\n{result.stdout}{result.stderr}")
    return out_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "live_view.png", help="PNG to write")
    parser.add_argument("--seconds", type=float, default=25.0,
                        help="seconds the flowgraph runs before the grab (default 25: the sink's history, "
                             "200 updates at 10 Hz at most, is then full on a busy machine too)")
    parser.add_argument("--class-seconds", type=float, default=1.5,
                        help="seconds per class of the simulated transmitter (default 1.5)")
    parser.add_argument("--snr", type=float, default=10.0, help="SNR of the simulated channel in dB (default 10)")
    parser.add_argument("--size", default="1280x720", help="window size in pixels, WIDTHxHEIGHT (default 1280x720)")
    parser.add_argument("--model", default="", help="model (default: the shipped default)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    from PyQt5 import Qt
    from gnuradio import modrec

    with tempfile.TemporaryDirectory(prefix="modrec_screenshot_") as tmp:
        sys.path.insert(0, str(compile_example(Path(tmp))))
        flowgraph = importlib.import_module(NAME)
        app = Qt.QApplication.instance() or Qt.QApplication([NAME])
        tb = getattr(flowgraph, NAME)(class_seconds=args.class_seconds, model_path=args.model)
        tb.set_snr_db(args.snr)
        sink = next(b for b in vars(tb).values() if isinstance(b, modrec.classification_sink))
        tb.resize(width, height)
        tb.start()
        tb.show()
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        image = tb.grab()
        tb.stop()
        tb.wait()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(args.out), "PNG"):
        sys.exit(f"screenshot: could not write {args.out}")
    view = sink.qwidget()
    print(f"{args.out}: {image.width()}x{image.height()} px; the view received {sink.frames} decisions in "
          f"{view.repaints} repaints, the last {view.class_label.text()} {view.confidence_label.text()}")


if __name__ == "__main__":
    main()
