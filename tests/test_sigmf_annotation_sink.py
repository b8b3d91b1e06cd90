"""The SigMF Annotation Sink's GRC description and the classify_recording_to_sigmf example: grcc
compiles it with our blocks, and the generated flowgraph annotates a recording it is given."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from sigmf import sigmffile

from gnuradio.modrec.runtime.annotations import MODREC_EXTENSION
from gnuradio.modrec.training.data import synthesize
from test_grc import GRCC, _grcc as grcc

ROOT = Path(__file__).resolve().parents[1]
GRC_DIR = ROOT / "grc"
EXAMPLE = ROOT / "apps" / "examples" / "classify_recording_to_sigmf.grc"
FRAME_LEN = 128  # the shipped default model's
N_FRAMES = 40

needs_grcc = pytest.mark.skipif(GRCC is None, reason="grcc (GNU Radio Companion compiler) not installed")


def _grcc(out_dir, blocks_path):
    return grcc(out_dir, blocks_path, EXAMPLE)


def test_block_yaml_declares_the_sink():
    block = yaml.safe_load((GRC_DIR / "modrec_sigmf_annotation_sink.block.yml").read_text())
    assert block["id"] == "modrec_sigmf_annotation_sink"
    assert block["category"] == "[Modulation Recognition]"
    assert block["flags"] == ["python"]
    assert block["file_format"] == 1
    assert block["templates"]["imports"] == "from gnuradio import modrec"
    assert block["templates"]["make"].startswith("modrec.sigmf_annotation_sink(")
    params = {p["id"]: p for p in block["parameters"]}
    # The GRC parameters are exactly the constructor's arguments, each passed by name.
    assert list(params) == ["meta_path", "sample_rate", "tag_key", "data_path", "datatype", "center_frequency", "model_name"]
    assert all("dtype" in p and "default" in p for p in params.values())
    assert all(f"{name}=${{{name}}}" in block["templates"]["make"] for name in params)
    assert block["inputs"] == [{"domain": "stream", "dtype": "complex"}]
    assert "outputs" not in block
    doc = block["documentation"]
    for field in ("core:sample_start", "core:sample_count", "core:label", "modrec:confidence", "modrec:frames",
                  "modrec:model", "core:extensions", "core:dataset", "Hz", "samples"):
        assert field in doc, field
    tree = yaml.safe_load((GRC_DIR / "modrec.tree.yml").read_text())
    assert "modrec_sigmf_annotation_sink" in tree["[Modulation Recognition]"]


@needs_grcc
def test_example_fails_without_our_blocks(tmp_path):
    result = _grcc(tmp_path, tmp_path)
    assert result.returncode != 0 or not (tmp_path / "classify_recording_to_sigmf.py").exists()


@needs_grcc
def test_generated_example_annotates_a_recording(tmp_path):
    out = tmp_path / "gen"
    result = _grcc(out, GRC_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    generated = out / "classify_recording_to_sigmf.py"
    code = generated.read_text()
    assert "modrec.sigmf_annotation_sink(meta_path=meta_path, sample_rate=samp_rate" in code
    assert "generate_options" not in code and "Qt" not in code

    # 40 QPSK frames at high SNR, back to back, plus a partial frame that is not classified.
    frames = synthesize("QPSK", N_FRAMES, 18.0, rng=np.random.default_rng(0))
    samples = np.concatenate([frames.ravel(), frames[0, :50]]).astype(np.complex64)
    recording = tmp_path / "capture.cfile"
    samples.tofile(recording)
    before = recording.read_bytes()

    # The source-tree shim from conftest.py must win over any installed gr-modrec.
    shim = ROOT / "build" / "pytest_modules"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run(
        [sys.executable, str(generated), "--input-file", str(recording), "--samp-rate", "1M", "--center-freq", "2.4G"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr

    meta = tmp_path / "capture.cfile.modrec.sigmf-meta"
    assert meta.is_file(), sorted(p.name for p in tmp_path.iterdir())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        handle = sigmffile.fromfile(meta)
        handle.validate()
    glob = handle.get_global_info()
    assert glob["core:dataset"] == "capture.cfile" and handle.data_file == recording
    assert (glob["core:sample_rate"], glob["core:datatype"]) == (1e6, "cf32_le")
    assert MODREC_EXTENSION in glob["core:extensions"]
    assert handle.get_captures() == [{"core:sample_start": 0, "core:frequency": 2.4e9}]
    anns = handle.get_annotations()
    # The annotations tile exactly the classified frames, merged (neighbours differ in class).
    assert anns[0]["core:sample_start"] == 0
    for a, b in zip(anns, anns[1:]):
        assert a["core:sample_start"] + a["core:sample_count"] == b["core:sample_start"]
        assert a["core:label"] != b["core:label"]
    assert anns[-1]["core:sample_start"] + anns[-1]["core:sample_count"] == N_FRAMES * FRAME_LEN
    assert sum(a["modrec:frames"] for a in anns) == N_FRAMES
    assert all(a["modrec:model"] == "gr-modrec default model" for a in anns)
    # A clean QPSK recording: the classifier says QPSK for most of it.
    qpsk = sum(a["modrec:frames"] for a in anns if a["core:label"] == "QPSK")
    assert qpsk >= N_FRAMES // 2, [(a["core:label"], a["modrec:frames"]) for a in anns]
    assert recording.read_bytes() == before

    # A SigMF recording keeps its own metadata: the annotations go beside it, and a symbol rate
    # (here the model's own 8 samples per symbol at 1 MS/s) is passed to the classifier.
    samples.tofile(tmp_path / "own.sigmf-data")
    own_meta = tmp_path / "own.sigmf-meta"
    own_meta.write_text('{"global": {"core:datatype": "cf32_le", "core:sample_rate": 1e6, "core:version": "1.0.0"}, '
                        '"captures": [{"core:sample_start": 0}], "annotations": [{"core:sample_start": 0, '
                        '"core:sample_count": 128, "core:label": "truth"}]}')
    own_before = own_meta.read_bytes()
    run = subprocess.run(
        [sys.executable, str(generated), "--input-file", str(tmp_path / "own.sigmf-data"), "--samp-rate", "1M",
         "--symbol-rate", "125k"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert own_meta.read_bytes() == own_before
    written = sigmffile.fromfile(tmp_path / "own.modrec.sigmf-meta")
    assert sum(a["modrec:frames"] for a in written.get_annotations()) == N_FRAMES


def test_the_sink_refuses_to_replace_a_recordings_metadata_and_bad_datatypes(tmp_path):
    from gnuradio import modrec

    foreign = tmp_path / "rec.sigmf-meta"
    foreign.write_text('{"global": {"core:datatype": "cf32_le", "core:sample_rate": 1e6}, "captures": [], "annotations": []}')
    with pytest.raises(ValueError, match=r"rec.sigmf-meta' exists and was not written by gr-modrec"):
        modrec.sigmf_annotation_sink(str(foreign), 1e6)
    with pytest.raises(ValueError, match=r"datatype: expected a complex SigMF core:datatype.*got 'complex'"):
        modrec.sigmf_annotation_sink(str(tmp_path / "new.sigmf-meta"), 1e6, datatype="complex")
