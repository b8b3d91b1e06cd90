"""Every option takes effect or is refused, naming itself (issue 19.4): the export opset, thread
counts, and the command line's numeric ranges."""

import os

import onnx
import pytest

from gnuradio.modrec.runtime import OnnxModel
from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.config import ConfigError, config_from_dict
from test_train_eval_export import train_tiny_checkpoint

import onnx_fixtures as fx


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return train_tiny_checkpoint(tmp_path_factory.mktemp("opt"))


def _opset(path):
    return [o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx")][0]


@pytest.mark.parametrize("flags", [[], ["--legacy"]], ids=["dynamo", "torchscript"])
def test_the_export_opset_is_the_one_written(checkpoint, tmp_path, flags, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out), "--opset", "13", *flags]) == 0
    assert _opset(out) == 13
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "bad.onnx"), "--opset", "99",
                 *flags]) == 2
    assert "opset 99" in capsys.readouterr().err and not (tmp_path / "bad.onnx").exists()


@pytest.mark.parametrize("argv, option", [
    (["train", "--config", "x.yaml", "--threads", "-1"], "--threads"),
    (["train", "--config", "x.yaml", "--epochs", "0"], "--epochs"),
    (["train", "--config", "x.yaml", "--stop-after", "0"], "--stop-after"),
    (["train", "--config", "x.yaml", "--lr", "-0.1"], "--lr"),
    (["export", "--checkpoint", "x.pt", "--out", "y.onnx", "--opset", "3"], "--opset"),
    (["export", "--checkpoint", "x.pt", "--out", "y.onnx", "--samples-per-symbol", "0"], "--samples-per-symbol"),
    (["evaluate", "--onnx", "m.onnx", "--out", "o", "--limit", "-5"], "--limit"),
    (["classify", "x.cfile", "--rate", "nan"], "--rate"),
    (["classify", "x.cfile", "--rate", "1e6", "--symbol-rate", "0"], "--symbol-rate"),
    (["classify", "x.cfile", "--threads", "0"], "--threads"),
    (["classify", "x.cfile", "--hop", "-1"], "--hop"),
])
def test_out_of_range_options_are_refused_by_name(argv, option, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and f"argument {option}" in capsys.readouterr().err


def test_thread_counts_beyond_the_cores_are_refused(tmp_path):
    cores = len(os.sched_getaffinity(0))
    path = fx.save_model(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=rf"threads must be at most the {cores} core\(s\).*got 2000"):
        OnnxModel(path, threads=2000)
    assert OnnxModel(path, threads=cores).threads == cores
    with pytest.raises(ConfigError, match=r"field 'train.threads' expected 0 \(all cores\) to"):
        config_from_dict({"train": {"threads": 2000}})
    with pytest.raises(ConfigError, match=r"field 'data.workers'"):
        config_from_dict({"data": {"workers": -1}})
