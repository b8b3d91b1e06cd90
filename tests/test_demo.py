"""The runtime-side apps run without torch: the demo flowgraph (apps/modrec_demo) runs
headless and scores every frame; the robustness tool scores a model on channel variants; the
parameter sweep scores it against one generator parameter at a time."""

import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import onnx_fixtures as fx
from conftest import ROOT, _SHIM
from gnuradio.modrec.classes import RADIOML2016_CLASSES
from gnuradio.modrec.runtime import DEFAULT_MODEL_NAME

DEMO = ROOT / "apps" / "modrec_demo"
SHIPPED = ROOT / "models" / DEFAULT_MODEL_NAME  # the block's default

# Runs the demo script with torch made unimportable: the demo must need the runtime only.
LAUNCHER = textwrap.dedent(
    """
    import importlib.abc, runpy, sys
    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torch":
                raise ImportError("torch is blocked: the demo must run without it")
    sys.meta_path.insert(0, NoTorch())
    sys.argv = [sys.argv[1]] + sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")
    assert "torch" not in sys.modules
    """
)


def run_app(script, *args):
    return subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(_SHIM), "PATH": "/usr/bin:/bin"},
    )


def run_demo(*args):
    return run_app(DEMO, "--no-throttle", *args)


def test_demo_classifies_every_frame_without_torch(tmp_path):
    model = fx.save_model(tmp_path / "fixture.onnx", frame_len=128, classes=RADIOML2016_CLASSES)
    result = run_demo("--model", model, "--seconds", "1", "--samp-rate", "22528", "--segment", "2048")
    assert result.returncode == 0, result.stderr[-3000:]
    # 22528 samples = 11 segments of 2048 -> 176 frames of 128, every class once
    assert "176 frames classified" in result.stdout
    table = result.stdout.split("frames classified")[1]
    for name in RADIOML2016_CLASSES:
        assert re.search(rf"^{re.escape(name)}\s+16\s", table, re.M), f"no row of 16 frames for {name}"
    assert re.search(r"^all\s+176\s", table, re.M)


def test_demo_rejects_a_segment_shorter_than_a_frame(tmp_path):
    model = fx.save_model(tmp_path / "fixture.onnx", frame_len=128, classes=RADIOML2016_CLASSES)
    result = run_demo("--model", model, "--segment", "100")
    assert result.returncode != 0
    assert "--segment must be >= the model's frame_len 128, got 100" in result.stderr


def test_demo_with_the_shipped_student_is_accurate_at_high_snr():
    assert SHIPPED.is_file(), f"the shipped default student {SHIPPED} is missing"
    result = run_demo("--snr", "18", "--seconds", "2", "--samp-rate", "45056", "--segment", "4096", "--seed", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    overall = re.search(r"^all\s+(\d+)\s+([\d.]+)%", result.stdout, re.M)
    assert overall, result.stdout[-2000:]
    # 11 classes, chance is 9%; the model card reports the measured accuracy at 18 dB.
    assert float(overall.group(2)) >= 60.0, result.stdout[-2000:]


def test_demo_gui_shows_the_decisions_in_the_live_view(tmp_path):
    # --gui headless (Qt's offscreen platform): the window runs until Ctrl-C, then the demo says
    # what the view showed. The fixture model is the classifier's and the view's.
    model = fx.save_model(tmp_path / "fixture.onnx", frame_len=128, classes=RADIOML2016_CLASSES)
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    env = {"PYTHONPATH": str(_SHIM), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen",
           "XDG_RUNTIME_DIR": str(runtime), "OMP_NUM_THREADS": "1"}
    # 0.25 s per class: several classes in the 3 s the view is watched
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(DEMO), "--gui", "--model", model, "--segment", "8192"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    seen = []
    try:
        deadline = time.monotonic() + 60.0
        while not any("live view open" in line for line in seen):  # then Ctrl-C is the view's to handle
            assert time.monotonic() < deadline and proc.poll() is None, "".join(seen)[-3000:]
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                pass
        time.sleep(3.0)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5.0)
    while not lines.empty():
        seen.append(lines.get())
    out = "".join(seen)
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert "in a loop" in out  # the signal repeats while the window is open
    shown = re.search(r"^live view: (\d+) decisions received in (\d+) repaints over [\d.]+ s "
                      r"\((\d+) bad tag values ignored\)", out, re.M)
    assert shown, out[-3000:]
    decisions, repaints, ignored = (int(g) for g in shown.groups())
    # 32 kS/s in frames of 128 is 250 decisions a second; repaints at 10 Hz at most
    assert decisions > 100 and repaints > 5 and ignored == 0, out[-3000:]
    assert not re.search(r"^t=\s*[\d.]+ s\s+sample", out, re.M), "--gui shows the decisions instead of printing them"
    table = out.split("bad tag values ignored)")[1]
    assert re.search(r"^all\s+\d+\s", table, re.M), out[-3000:]


def test_demo_gui_needs_the_throttle():
    result = run_app(DEMO, "--gui", "--no-throttle")
    assert result.returncode != 0
    assert "--gui plays the stream at --samp-rate" in result.stderr


def test_robustness_tool_scores_every_variant(tmp_path):
    model = fx.save_model(tmp_path / "fixture.onnx", frame_len=128, classes=RADIOML2016_CLASSES)
    result = run_app(ROOT / "apps" / "robustness.py", "--model", model, "--frames", "2", "--snrs", "0,10")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(r"^  (.+?)\s+([\d.]+) %$", result.stdout, re.M)
    assert len(rows) == 8 and rows[0][0] == "default (training recipe)", result.stdout
    assert "44 frames per variant" in result.stdout  # 11 classes x 2 SNRs x 2 frames


def test_parameter_sweep_scores_each_value_and_marks_the_training_range(tmp_path):
    model = fx.save_model(tmp_path / "fixture.onnx", frame_len=128, classes=RADIOML2016_CLASSES)
    out, figure = tmp_path / "sweep.md", tmp_path / "sweep.png"
    result = run_app(ROOT / "apps" / "parameter_sweep.py", "--model", model, "--frames", "2", "--snrs", "10",
                     "--sweeps", "gfsk_index,cfo", "--out", str(out), "--figure", str(figure))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(r"^\| ([\d.]+)( \(outside training\))? \| ([\d.]+) % \|", out.read_text(), re.M)
    # gfsk_index: 10 values, trained on 0.3-0.8; cfo: 6 values, trained on 0-0.01
    assert [r[0] for r in rows] == ["0.15", "0.2", "0.25", "0.3", "0.35", "0.45", "0.5", "0.6", "0.8", "1",
                                    "0", "0.005", "0.01", "0.02", "0.04", "0.08"]
    outside = [r[0] for r in rows if r[1]]
    assert outside == ["0.15", "0.2", "0.25", "1", "0.02", "0.04", "0.08"]
    assert all(0 <= float(r[2]) <= 100 for r in rows)
    assert figure.stat().st_size > 10_000
    bad = run_app(ROOT / "apps" / "parameter_sweep.py", "--model", model, "--sweeps", "gfsk_index,nope")
    assert bad.returncode == 2 and "unknown ['nope']" in bad.stderr


def _parameter_sweep_module():
    sys.path.insert(0, str(ROOT / "apps"))
    try:
        import parameter_sweep
    finally:
        sys.path.pop(0)
    return parameter_sweep


def test_a_sweep_point_pins_exactly_its_parameter():
    from gnuradio.modrec.training.data import GeneratorConfig

    ps, base = _parameter_sweep_module(), GeneratorConfig()
    point = ps.pinned(base, ps.SWEEPS["gfsk_index"], 0.25)
    assert point.gfsk_index_range == (0.25, 0.25) and point.gfsk_bt_range == base.gfsk_bt_range
    assert ps.pinned(base, ps.SWEEPS["cfo"], 0.04).cfo_max == 0.04
    doppler = ps.pinned(base, ps.SWEEPS["doppler"], 0.01)
    assert doppler.doppler_range == (0.01, 0.01) and doppler.fading_prob == 1.0
    assert ps.training_range(base, "cfo_max") == (0.0, base.cfo_max)
    assert ps.training_range(base, "gfsk_index_range") == base.gfsk_index_range


def test_the_channel_sweeps_pin_the_switch_and_the_drifts():
    from gnuradio.modrec.training.data import GeneratorConfig

    ps, base = _parameter_sweep_module(), GeneratorConfig()
    off, on = (ps.pinned(base, ps.SWEEPS["fractional_delays"], v) for v in (0, 1))
    assert off.fractional_delays is False and on.fractional_delays is True and on.fading_prob == 1.0
    assert ps.training_range(base, "fractional_delays") == (0.0, 0.0)
    assert ps.pinned(base, ps.SWEEPS["cfo_drift"], 1e-5).cfo_drift_std == 1e-5
    assert ps.pinned(base, ps.SWEEPS["clock_drift"], 1e-6).clock_drift_std == 1e-6
