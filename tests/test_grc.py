"""The GRC block descriptions and the example flowgraphs: grcc must find our blocks and compile
every apps/examples/*.grc; the examples follow the house rules (layout, default model, a note,
no console flood); the generated flowgraphs run (the QT GUI ones headless, offscreen)."""

import ast
import inspect
import os
import py_compile
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

import onnx_fixtures as fx

ROOT = Path(__file__).resolve().parents[1]
GRC_DIR = ROOT / "grc"
EXAMPLES_DIR = ROOT / "apps" / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.grc"))
EXAMPLE = EXAMPLES_DIR / "classifier_demo.grc"
GRCC = shutil.which("grcc")
# The source-tree shim from conftest.py, to win over any installed gr-modrec in generated flowgraphs.
SHIM = ROOT / "build" / "pytest_modules"
needs_grcc = pytest.mark.skipif(GRCC is None, reason="grcc (GNU Radio Companion compiler) not installed")


def _gr_blocks_dir():
    """GNU Radio's own GRC block descriptions (<prefix>/share/gnuradio/grc/blocks), or None."""
    try:
        from gnuradio import gr
    except ImportError:
        return None
    return Path(gr.prefix()) / "share" / "gnuradio" / "grc" / "blocks"


def _has_gr_block(block_id):
    blocks_dir = _gr_blocks_dir()
    return blocks_dir is not None and (blocks_dir / f"{block_id}.block.yml").is_file()


def _example_params():
    """One pytest param per example; the SDR one needs gr-soapy's block descriptions."""
    params = []
    for path in EXAMPLES:
        marks = []
        if path.stem == "sdr_live_view":
            marks.append(pytest.mark.skipif(not _has_gr_block("soapy_rtlsdr_source"),
                                            reason="gr-soapy (soapy_rtlsdr_source) not installed"))
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def _grcc(tmp_path, blocks_path, example=EXAMPLE):
    """grcc on an example flowgraph with GRC_BLOCKS_PATH = blocks_path (also used by other tests)."""
    env = dict(os.environ, GRC_BLOCKS_PATH=str(blocks_path))
    return subprocess.run(
        [GRCC, "-o", str(tmp_path), str(example)], env=env, capture_output=True, text=True, timeout=60
    )


def _compiled(tmp_path, example):
    """grcc ``example`` into tmp_path with our blocks; the generated Python's path."""
    result = _grcc(tmp_path, GRC_DIR, example)
    assert result.returncode == 0, result.stdout + result.stderr
    generated = tmp_path / f"{_flowgraph(example)['options']['parameters']['id']}.py"
    assert generated.is_file(), result.stdout + result.stderr
    return generated


def _flowgraph(example):
    return yaml.safe_load(example.read_text())


def _blocks(flowgraph, block_id):
    return [b for b in flowgraph["blocks"] if b["id"] == block_id]


def _env(tmp_path):
    """Environment for a generated flowgraph: the source tree's gr-modrec, Qt offscreen, and Qt's
    settings and runtime files under tmp_path (a generated QT flowgraph keeps its geometry in
    QSettings)."""
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(SHIM), os.environ.get("PYTHONPATH", "")]),
                QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
                XDG_RUNTIME_DIR=str(runtime), OMP_NUM_THREADS="1")


def test_block_yaml_declares_the_block():
    block = yaml.safe_load((GRC_DIR / "modrec_classifier.block.yml").read_text())
    assert block["id"] == "modrec_classifier"
    assert block["category"] == "[Modulation Recognition]"
    assert block["file_format"] == 1
    assert block["templates"]["imports"] == "from gnuradio import modrec"
    assert block["templates"]["make"].startswith("modrec.classifier(")
    params = {p["id"]: p for p in block["parameters"]}
    # every public argument of the block, and nothing else (the YAML cannot drift from the
    # signature); a private one (``_core``: which core, for tests and benchmarks) is not for GRC
    from gnuradio.modrec.classifier import classifier

    public = {name for name in inspect.signature(classifier.__init__).parameters if not name.startswith("_")}
    assert set(params) == public - {"self"}
    assert all("dtype" in p and "default" in p for p in params.values())
    msg_out = [o for o in block["outputs"] if o["domain"] == "message"]
    assert msg_out == [{"domain": "message", "id": "classification", "optional": True}]
    # Min Confidence is live: a slider bound to it calls the block's setter
    assert block["templates"]["callbacks"] == ["set_min_confidence(${min_confidence})"]
    tree = yaml.safe_load((GRC_DIR / "modrec.tree.yml").read_text())
    # One category; every block listed has its .block.yml (the sink is checked in its own test).
    assert list(tree) == ["[Modulation Recognition]"] and "modrec_classifier" in tree["[Modulation Recognition]"]
    assert all((GRC_DIR / f"{b}.block.yml").is_file() for b in tree["[Modulation Recognition]"])


def test_sink_yaml_declares_the_block():
    block = yaml.safe_load((GRC_DIR / "modrec_classification_sink.block.yml").read_text())
    assert block["id"] == "modrec_classification_sink" and block["file_format"] == 1
    assert block["templates"]["imports"] == "from gnuradio import modrec"
    params = {p["id"]: p for p in block["parameters"]}
    # every argument of the block (and the QT GUI hint), each passed on by name
    from gnuradio.modrec.classification_sink import classification_sink

    arguments = set(inspect.signature(classification_sink.__init__).parameters) - {"self"}
    assert set(params) == arguments | {"gui_hint"}
    make = block["templates"]["make"]
    assert all(f"{name}=${{{name}}}" in make for name in arguments), make
    assert params["tag_key"]["default"] == "modrec" == inspect.signature(classification_sink).parameters[
        "tag_key"].default
    # one way in: the classifier's output stream, whose tags it reads; no message port
    assert block["inputs"] == [{"label": "in", "domain": "stream", "dtype": "complex"}]
    assert "outputs" not in block
    assert block["templates"]["callbacks"] == ["set_update_rate(${update_rate})"]


def test_the_examples_are_there():
    assert {p.stem for p in EXAMPLES} >= {"classifier_demo", "classify_recording_to_sigmf", "simulated_live_view",
                                          "recording_live_view", "sdr_live_view"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_follows_the_house_rules(example):
    fg = _flowgraph(example)
    options = fg["options"]["parameters"]
    assert len(options.get("description", "")) > 80, "say what the flowgraph shows in its description"
    names = {b["name"]: b for b in fg["blocks"]}
    modrec_blocks = [b for b in fg["blocks"] if b["id"].startswith("modrec_")]
    assert modrec_blocks
    # the model left empty: the shipped default, directly or through a parameter whose value is empty
    models = set()
    for block in modrec_blocks:
        if "model_path" not in block["parameters"]:
            continue
        expr = str(block["parameters"]["model_path"])
        models.add(expr)
        if expr in names:
            assert names[expr]["id"] == "parameter" and names[expr]["parameters"]["value"] == "", expr
            # the label says what empty means, and names no stale default (it once said cnn3.onnx)
            empty_means = names[expr]["parameters"]["label"].split("empty =", 1)[-1]
            assert "shipped" in empty_means and "cnn3" not in empty_means, names[expr]["parameters"]["label"]
        else:
            assert expr in ("", "''", '""'), f"{block['name']}: model_path {expr!r} is not the shipped default"
    assert len(models) <= 1, f"the sink must read the classifier's model: {models}"
    for block in _blocks(fg, "blocks_tag_debug"):  # the classifier tags every frame: print only a few
        params = block["parameters"]
        assert params.get("filter", "") not in ("", '""', "''") or params.get("display") == "False", block["name"]
    if options["generate_options"] != "qt_gui":
        return
    # a QT GUI example: every widget placed, the live view fed by the classifier, a note, no console flood
    for block in fg["blocks"]:
        if block["id"].startswith(("qtgui_", "variable_qtgui_")) or block["id"] == "modrec_classification_sink":
            assert re.fullmatch(r"\d+,\s*\d+,\s*\d+,\s*\d+", str(block["parameters"].get("gui_hint", ""))), \
                f"{block['name']}: no GUI hint (row, col, row span, col span)"
    sinks = _blocks(fg, "modrec_classification_sink")
    classifiers = _blocks(fg, "modrec_classifier")
    assert len(sinks) == 1 and len(classifiers) == 1
    # the view reads the classifier's tags from its output stream (as a frequency sink is fed); a
    # message connection would cost the classifier ~10 % of its throughput, and the sink has no port for one
    sink_inputs = [c for c in fg["connections"] if c[2] == sinks[0]["name"]]
    assert sink_inputs == [[classifiers[0]["name"], "0", sinks[0]["name"], "0"]], sink_inputs
    # the sink reads the tags under the key the classifier writes them with
    assert str(sinks[0]["parameters"].get("tag_key", "modrec")) == str(classifiers[0]["parameters"].get("tag_key",
                                                                                                       "modrec"))
    assert _blocks(fg, "qtgui_freq_sink_x"), "a frequency sink next to the view"
    assert _blocks(fg, "note") and all(n["parameters"]["comment"] for n in _blocks(fg, "note"))
    assert not _blocks(fg, "blocks_message_debug"), "message debug floods the console at thousands of frames/s"


@needs_grcc
@pytest.mark.parametrize("example", _example_params())
def test_every_example_compiles_with_our_blocks(tmp_path, example):
    generated = _compiled(tmp_path, example)
    py_compile.compile(str(generated), doraise=True)
    code = generated.read_text()
    assert "from gnuradio import modrec" in code
    assert "modrec.classifier(" in code


@needs_grcc
@pytest.mark.parametrize("example", _example_params())
def test_every_example_fails_without_our_blocks(tmp_path, example):
    # Guards the test above: it must be our YAML that makes the examples compile. (grcc then says
    # "Port is not connected" rather than naming the missing block: README, "how GRC finds the blocks".)
    result = _grcc(tmp_path, tmp_path, example)
    assert result.returncode != 0 or not (tmp_path / f"{example.stem}.py").exists()


@needs_grcc
def test_generated_example_runs_and_classifies(tmp_path):
    generated = _compiled(tmp_path, EXAMPLE)
    code = generated.read_text()
    assert "modrec.classifier(model_path=model_path, hop=hop, min_confidence=0.5" in code
    assert "hop = int(samp_rate // 2)" in code
    model = fx.save_model(tmp_path / "fixture.onnx", frame_len=32)
    proc = subprocess.Popen(
        [sys.executable, str(generated), "--model-path", model],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_env(tmp_path),
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
    # a readable console: one decision every half second (hop = samp_rate / 2), not thousands
    printed = out.count("MESSAGE DEBUG PRINT")
    assert 1 <= printed <= 8, f"{printed} messages printed in about 2 s:\n{out[-2000:]}"


# Runs a generated QT GUI flowgraph's own main() (QApplication, tb.start(), show, the SIGINT
# handler, tb.stop(), tb.wait(), quit), with its top block subclassed to note what the view shows
# and to send itself SIGINT after SECONDS, as Ctrl-C would.
QT_DRIVER = textwrap.dedent(
    """
    import importlib, os, signal, sys
    out_dir, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    sys.path.insert(0, out_dir)
    flowgraph = importlib.import_module(name)
    from PyQt5 import Qt
    from gnuradio import modrec

    class Probe(getattr(flowgraph, name)):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.sinks = [b for b in vars(self).values() if isinstance(b, modrec.classification_sink)]
            self.shown = set()
            self.watch = Qt.QTimer()
            self.watch.timeout.connect(lambda: self.shown.update(s.qwidget().class_label.text() for s in self.sinks))
            self.watch.start(50)
            Qt.QTimer.singleShot(int(seconds * 1000), self.report)

        def report(self):
            for s in self.sinks:
                print(f"sink {s.model_path} frames={s.frames} repaints={s.qwidget().repaints} "
                      f"bad={s.bad_values} shown={sorted(self.shown - {'-'})}", flush=True)
            print(f"torch imported: {'torch' in sys.modules}", flush=True)
            os.kill(os.getpid(), signal.SIGINT)

    sys.argv = [name] + sys.argv[4:]
    flowgraph.main(top_block_cls=Probe)
    print("main returned", flush=True)
    """
)


def _run_qt_example(tmp_path, example, seconds, *args):
    """Compile ``example``, run it headless for ``seconds`` through QT_DRIVER; (returncode, output)."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    generated = _compiled(out_dir, example)
    proc = subprocess.run(
        [sys.executable, "-c", QT_DRIVER, str(generated.parent), generated.stem, str(seconds), *args],
        capture_output=True, text=True, env=_env(tmp_path), timeout=60,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _view_report(out):
    """frames, repaints, bad tag values and the classes shown, from QT_DRIVER's report line."""
    found = re.search(r"frames=(\d+) repaints=(\d+) bad=(\d+) shown=(\[.*\])", out)
    assert found, out[-3000:]
    return int(found.group(1)), int(found.group(2)), int(found.group(3)), ast.literal_eval(found.group(4))


@needs_grcc
def test_simulated_live_view_runs_headless_and_shows_the_classes_change(tmp_path):
    # 0.5 s per class for 4 s: about eight classes from the simulated transmitter
    rc, out = _run_qt_example(tmp_path, EXAMPLES_DIR / "simulated_live_view.grc", 4.0, "--class-seconds", "0.5")
    assert rc == 0 and "main returned" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    frames, repaints, bad, shown = _view_report(out)
    # 32 kS/s in frames of 128: about 250 decisions a second, repainted at 10 Hz at most
    assert frames > 100 and repaints > 5 and bad == 0, out[-3000:]
    assert len(shown) >= 3, f"the view showed {shown}: the source should switch class every 0.5 s"
    assert "torch imported: False" in out  # the embedded block uses the generator, never torch
    code = (tmp_path / "out" / "simulated_live_view.py").read_text()
    # the sliders act while running: the source's SNR and the classifier's min_confidence
    assert "self.epy_block_0.snr_db = self.snr_db" in code
    assert code.count("self.modrec_classifier_0.set_min_confidence((-1 if self.model_rule else "
                      "self.min_confidence))") == 2  # from the check box and from the slider


@needs_grcc
def test_recording_live_view_runs_headless_on_a_recording(tmp_path):
    from gnuradio.modrec.training.data.generator import synthesize_stream

    # one second of QPSK, one of BPSK, at 32 kS/s and 8 samples per symbol; the file repeats
    rng = np.random.default_rng(5)
    recording = tmp_path / "capture.cfile"
    np.concatenate([synthesize_stream(name, 32768, 15.0, rng) for name in ("QPSK", "BPSK")]) \
        .astype(np.complex64).tofile(recording)
    rc, out = _run_qt_example(tmp_path, EXAMPLES_DIR / "recording_live_view.grc", 4.0,
                              "--input-file", str(recording), "--samp-rate", "32000")
    assert rc == 0 and "main returned" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    frames, repaints, bad, shown = _view_report(out)
    assert frames > 100 and repaints > 5 and bad == 0, out[-3000:]
    assert len(shown) >= 2, f"the view showed {shown}: the recording switches from QPSK to BPSK"


@needs_grcc
@pytest.mark.skipif(not _has_gr_block("soapy_rtlsdr_source"), reason="gr-soapy not installed")
def test_sdr_live_view_selects_a_channel_and_resamples_in_the_classifier(tmp_path):
    # Compiled only: it needs an RTL-SDR to run.
    code = _compiled(tmp_path, EXAMPLES_DIR / "sdr_live_view.grc").read_text()
    assert "dev = 'driver=rtlsdr'" in code and "self.soapy_rtlsdr_source_0.set_sample_rate(0, samp_rate)" in code
    assert "self.samp_rate = samp_rate = 2.4e6" in code
    assert "filter.freq_xlating_fir_filter_ccf(decim, channel_taps, channel_offset, samp_rate)" in code
    # the channel's low-pass taps: half the channel bandwidth, at the receiver's rate
    assert re.search(r"channel_taps = firdes\.low_pass\(1\.0, samp_rate, channel_bw / 2,\s*channel_bw / 4", code)
    assert "sample_rate=channel_rate, symbol_rate=symbol_rate" in code
    # the channel offset is live: its slider retunes the filter
    assert "self.freq_xlating_fir_filter_xxx_0.set_center_freq(self.channel_offset)" in code
