"""The runtime-side apps run without torch: the demo flowgraph (apps/modrec_demo) runs
headless and scores every frame; the robustness tool scores a model on channel variants."""

import re
import subprocess
import sys
import textwrap

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


def test_robustness_tool_scores_every_variant(tmp_path):
    model = fx.save_model(tmp_path / "fixture.onnx", frame_len=128, classes=RADIOML2016_CLASSES)
    result = run_app(ROOT / "apps" / "robustness.py", "--model", model, "--frames", "2", "--snrs", "0,10")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(r"^  (.+?)\s+([\d.]+) %$", result.stdout, re.M)
    assert len(rows) == 8 and rows[0][0] == "default (training recipe)", result.stdout
    assert "44 frames per variant" in result.stdout  # 11 classes x 2 SNRs x 2 frames
