"""The GRC block description and the example flowgraph: grcc must find our block and compile."""

import inspect
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import onnx_fixtures as fx

ROOT = Path(__file__).resolve().parents[1]
GRC_DIR = ROOT / "grc"
EXAMPLE = ROOT / "apps" / "examples" / "classifier_demo.grc"
GRCC = shutil.which("grcc")


def _grcc(tmp_path, blocks_path, example=EXAMPLE):
    """grcc on an example flowgraph with GRC_BLOCKS_PATH = blocks_path (also used by other tests)."""
    env = dict(os.environ, GRC_BLOCKS_PATH=str(blocks_path))
    return subprocess.run(
        [GRCC, "-o", str(tmp_path), str(example)], env=env, capture_output=True, text=True, timeout=60
    )


def test_block_yaml_declares_the_block():
    block = yaml.safe_load((GRC_DIR / "modrec_classifier.block.yml").read_text())
    assert block["id"] == "modrec_classifier"
    assert block["category"] == "[Modulation Recognition]"
    assert block["file_format"] == 1
    assert block["templates"]["imports"] == "from gnuradio import modrec"
    assert block["templates"]["make"].startswith("modrec.classifier(")
    params = {p["id"]: p for p in block["parameters"]}
    # every argument of the block, and nothing else (the YAML cannot drift from the signature)
    from gnuradio.modrec.classifier import classifier

    assert set(params) == set(inspect.signature(classifier.__init__).parameters) - {"self"}
    assert all("dtype" in p and "default" in p for p in params.values())
    msg_out = [o for o in block["outputs"] if o["domain"] == "message"]
    assert msg_out == [{"domain": "message", "id": "classification", "optional": True}]
    tree = yaml.safe_load((GRC_DIR / "modrec.tree.yml").read_text())
    # One category; every block listed has its .block.yml (the sink is checked in its own test).
    assert list(tree) == ["[Modulation Recognition]"] and "modrec_classifier" in tree["[Modulation Recognition]"]
    assert all((GRC_DIR / f"{b}.block.yml").is_file() for b in tree["[Modulation Recognition]"])


@pytest.mark.skipif(GRCC is None, reason="grcc (GNU Radio Companion compiler) not installed")
def test_example_compiles_with_our_block(tmp_path):
    result = _grcc(tmp_path, GRC_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    generated = tmp_path / "classifier_demo.py"
    assert generated.is_file(), result.stdout + result.stderr
    code = generated.read_text()
    assert "from gnuradio import modrec" in code
    assert "modrec.classifier(model_path=model_path, hop=0, min_confidence=0.5" in code
    assert "'classification'" in code


@pytest.mark.skipif(GRCC is None, reason="grcc (GNU Radio Companion compiler) not installed")
def test_example_fails_without_our_block(tmp_path):
    # Guards the test above: it must be our YAML that makes the example compile.
    result = _grcc(tmp_path, tmp_path)
    assert result.returncode != 0 or not (tmp_path / "classifier_demo.py").exists()


@pytest.mark.skipif(GRCC is None, reason="grcc (GNU Radio Companion compiler) not installed")
def test_generated_example_runs_and_classifies(tmp_path):
    assert _grcc(tmp_path, GRC_DIR).returncode == 0
    model = fx.save_model(tmp_path / "fixture.onnx", frame_len=32)
    # The source-tree shim from conftest.py must win over any installed gr-modrec.
    shim = ROOT / "build" / "pytest_modules"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "classifier_demo.py"), "--model-path", model],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=2.0)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=5.0)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert "Traceback" not in out, out
    assert "frame_start" in out and "confidence" in out, out[-2000:]
