"""The first hour with `modrec`: shipped models found by name everywhere a model is taken, no file
replaced without --force, every option documented, `modrec --version` and `modrec models`."""

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import onnx_fixtures as fx
from gnuradio.modrec import __version__, contract
from gnuradio.modrec.runtime import (DEFAULT_MODEL_NAME, OnnxModel, default_model_path, onnx_model, resolve_model,
                                     shipped_models)
from gnuradio.modrec.training import cli
from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.data.__main__ import _parser as data_parser
from test_train_eval_export import L as DATASET_FRAME_LEN
from test_train_eval_export import train_tiny_checkpoint

MODELS = ROOT / "models"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "OMP_NUM_THREADS": "1"}


def _subparsers(parser):
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub


def _subcommands(parser):
    """{name: parser} of the modrec parser's subcommands."""
    return dict(_subparsers(parser).choices)


def _options(parser):
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


# ----------------------------------------------------------------------------- the parser


def test_every_option_of_every_subcommand_has_help():
    parser = cli._parser()
    commands = _subcommands(parser)
    # `modrec data` is parsed by the dataset builder's own parser (main hands it over)
    parsers = {"modrec": parser, **commands, "data": data_parser("modrec data")}
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}" for name, p in parsers.items() for a in _options(p)
               if not (a.help or "").strip()]
    assert not missing, f"options without help: {missing}"
    assert sum(len(_options(p)) for p in parsers.values()) > 100  # the walk saw the options
    undocumented = [a.dest for a in _subparsers(parser)._choices_actions if not (a.help or "").strip()]
    assert not undocumented, f"subcommands without help: {undocumented}"
    # and `modrec CMD --help` opens with that line too
    bare = [name for name, p in commands.items() if not (p.description or "").strip()]
    assert not bare, f"subcommands whose --help has no description: {bare}"


def test_every_subcommand_usage_names_modrec_and_the_command(capsys):
    commands = _subcommands(cli._parser())
    assert {"data", "train", "evaluate", "export", "card", "models", "classify"} <= set(commands)
    for name, parser in commands.items():
        assert parser.format_usage().startswith(f"usage: modrec {name}"), parser.format_usage()
    # `modrec data` is answered by the dataset builder's own parser: ask it as a user does
    with pytest.raises(SystemExit) as done:
        main(["data", "--help"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("usage: modrec data ")


def test_version_is_the_package_version_without_gnu_radio():
    # as on a training node: GNU Radio's modules cannot be imported
    code = ("import sys\n"
            "for name in ('pmt', 'gnuradio.gr', 'gnuradio.blocks'): sys.modules[name] = None\n"
            "from gnuradio.modrec.training.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit as e:\n    sys.exit(e.code)\n")
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"modrec (gr-modrec) {__version__}\n"


# ----------------------------------------------------------------------------- modrec models


def test_models_prints_tables(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "{" not in out  # no raw JSON
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("name") and "kind" in line)
    assert header.split() == ["name", "kind", "params", "MFLOPs/frame", "frame_len"]
    assert any(line.split()[:3] == ["cnn3", "classifier", "58,251"] for line in lines)
    assert any(line.split()[:2] == ["signal_detector", "detector"] for line in lines)
    shipped_header = next(line for line in lines if line.startswith("name") and "acc SNR>=0" in line)
    assert shipped_header.split()[-1] == "file"
    cnn3 = next(line for line in lines if line.startswith("cnn3 ") and "%" in line)
    assert cnn3.split()[1:3] == ["cnn3", "classifier"] and cnn3.endswith("cnn3.onnx")
    assert any(line.startswith(f"{DEFAULT_MODEL_NAME[:-len('.onnx')]} *") for line in lines)  # the default, marked
    assert not any(".stage" in line or ".exits" in line for line in lines)


def test_models_json_is_valid_and_complete(capsys):
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["version"] == __version__
    archs = {a["name"]: a for a in listing["architectures"]}
    assert archs["cnn3"]["params"] == 58251 and archs["cnn3"]["default_config"]["frame_len"] == 128
    assert archs["signal_detector"]["kind"] == "detector"
    shipped = {s["name"]: s for s in listing["shipped"]}
    assert os.path.samefile(shipped["cnn3"]["file"], MODELS / "cnn3.onnx")
    assert 0.5 < shipped["cnn3"]["accuracy_snr_ge_0"] < 1 and shipped["cnn3"]["flops"] == 3745152
    assert [name for name, s in shipped.items() if s["default"]] == [DEFAULT_MODEL_NAME[:-len(".onnx")]]
    assert shipped["mobilenet1d_ee"]["kind"].startswith("early-exit")
    assert shipped["ensemble5"]["training"] == "ensemble of 5"  # joined by modrec ensemble, not trained
    assert shipped["mobilenet1d-skd"]["training"] == "skd" and shipped["cnn3"]["training"] == "none"
    assert not any(".stage" in name or ".exits" in name for name in shipped)


# ----------------------------------------------------------------------------- the resolver


def test_shipped_models_are_found_by_name():
    cnn3 = MODELS / "cnn3.onnx"
    assert os.path.samefile(resolve_model("cnn3"), cnn3)
    assert os.path.samefile(resolve_model("cnn3.onnx"), cnn3)
    assert os.path.samefile(resolve_model("mobilenet1d-skd-v2"), MODELS / DEFAULT_MODEL_NAME)
    assert resolve_model("") == resolve_model(None) == default_model_path()
    assert resolve_model(str(cnn3)) == str(cnn3)  # an existing path is itself
    assert "cnn3" in shipped_models() and not any(".stage" in n or ".exits" in n for n in shipped_models())


def test_a_model_directory_comes_first_and_a_file_here_before_a_name(tmp_path, monkeypatch):
    mine = fx.save_model(tmp_path / "cnn3.onnx", frame_len=32)
    monkeypatch.setenv("MODREC_MODEL_DIR", str(tmp_path))
    assert resolve_model("cnn3") == str(mine)
    monkeypatch.delenv("MODREC_MODEL_DIR")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("cnn3.onnx") == "cnn3.onnx"  # the file in the working directory, as given


def test_a_wrong_name_lists_the_shipped_models_and_where_it_looked():
    with pytest.raises(FileNotFoundError) as info:
        resolve_model("cnn4")
    msg = str(info.value)
    assert "model 'cnn4' not found" in msg and "did you mean 'cnn3'?" in msg
    assert "mobilenet1d-skd-v2" in msg and str(MODELS / "cnn4.onnx") in msg and "MODREC_MODEL_DIR" in msg
    # only places that exist are listed (an installed copy's "checkout models/" would be in site-packages)
    listed = [line.strip() for line in msg.splitlines() if line.startswith("  ")]
    assert listed and all(os.path.isdir(os.path.dirname(p)) for p in listed)
    with pytest.raises(FileNotFoundError, match="did you mean 'cnn3'"):
        resolve_model("CNN3")  # a case typo gets the same hint
    with pytest.raises(FileNotFoundError, match=r"(?s)runs/none\.onnx: model file does not exist.*shipped models"):
        resolve_model("runs/none.onnx")


@pytest.mark.parametrize("given, what", [("mobilenet1d_ee.stage0", "stage file 0"),
                                         ("mobilenet1d_ee.stage1.onnx", "stage file 1"),
                                         (str(MODELS / "mobilenet1d_ee.exits.onnx"), "the all-exits file")])
def test_a_stage_file_names_the_entry_file_to_give_instead(given, what):
    with pytest.raises(contract.ContractError) as info:
        resolve_model(given)
    msg = str(info.value)
    assert msg.startswith(f"{given}: {what} of the early-exit model mobilenet1d_ee.onnx, not a model on its own")
    assert f"give {MODELS / 'mobilenet1d_ee.onnx'}" in msg or "give 'mobilenet1d_ee'" in msg


def test_a_renamed_stage_file_is_recognised_by_its_metadata(tmp_path):
    renamed = tmp_path / "first_part.onnx"
    shutil.copyfile(MODELS / "mobilenet1d_ee.stage0.onnx", renamed)
    with pytest.raises(contract.ContractError, match=r"first_part\.onnx: a stage or all-exits file of the "
                                                     r"early-exit model mobilenet1d_ee\.onnx .*load its entry file"):
        OnnxModel(resolve_model(str(renamed)))


# ----------------------------------------------------------------------------- names in commands and blocks


def test_commands_take_model_names(tmp_path, capsys):
    raw = tmp_path / "capture.cfile"
    np.random.default_rng(0).standard_normal(2 * 1024).astype(np.float32).tofile(raw)
    assert main(["classify", str(raw), "--format", "cf32_le", "--rate", "1e6", "--model", "cnn3", "--no-plot",
                 "--no-progress", "--no-oversampling-check", "--meta-out", str(tmp_path / "c.sigmf-meta")]) == 0
    assert f"classified by {resolve_model('cnn3')}" in capsys.readouterr().out
    for argv in (["open-set-eval", "--onnx", "cnn4"], ["evaluate", "--onnx", "cnn4", "--out", str(tmp_path / "e")],
                 ["exits-eval", "--onnx", "mobilenet1d_ee", "--plain", "cnn4", "--data", "x", "--out", "y"],
                 ["from-onnx", "--onnx", "cnn4", "--out", str(tmp_path / "x.pt")]):
        assert main(argv) == 2, argv
        assert "model 'cnn4' not found" in capsys.readouterr().err, argv
    assert main(["open-set-eval", "--onnx", "mobilenet1d_ee.stage0.onnx"]) == 2
    assert "give 'mobilenet1d_ee'" in capsys.readouterr().err


def test_the_classifier_block_takes_a_name():
    from gnuradio import modrec

    block = modrec.classifier("cnn3")
    assert os.path.samefile(block.model_path, MODELS / "cnn3.onnx") and block.frame_len == 128
    with pytest.raises(FileNotFoundError, match="did you mean 'cnn3'"):
        modrec.classifier("cnn4")


def test_the_classification_sink_takes_a_name():
    code = ("import os\nos.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "from PyQt5 import QtWidgets\napp = QtWidgets.QApplication([])\n"
            "from gnuradio import modrec\n"
            "sink = modrec.classification_sink('mobilenet1d-skd-v2')\n"
            "print(sink.model_path)\nprint(','.join(sink.labels))\n")
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    path, labels = done.stdout.split()[-2:]
    assert os.path.samefile(path, MODELS / DEFAULT_MODEL_NAME) and labels.endswith("noise,unknown")


def test_the_demo_refuses_a_wrong_model_name_with_a_usage_error():
    done = subprocess.run([sys.executable, str(ROOT / "apps" / "modrec_demo"), "--model", "cnn4"], env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "--model: model 'cnn4' not found" in done.stderr and "Traceback" not in done.stderr


# ----------------------------------------------------------------------------- no file replaced without --force


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return train_tiny_checkpoint(tmp_path_factory.mktemp("cli"))


def test_export_refuses_to_replace_a_file_without_force(checkpoint, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    export = ["export", "--checkpoint", str(checkpoint), "--out", str(out), "--legacy"]
    assert main(export) == 0
    capsys.readouterr()
    before = out.read_bytes()
    out.write_bytes(b"a file someone wants kept")
    assert main(export) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--force" in err and "--out" in err
    assert out.read_bytes() == b"a file someone wants kept"
    assert main([*export, "--force"]) == 0
    assert len(out.read_bytes()) == len(before) and OnnxModel(out).frame_len == DATASET_FRAME_LEN


def test_the_export_hint_after_training_never_points_at_a_shipped_model(tmp_path, monkeypatch):
    run = tmp_path / "runs" / "exp"
    run.mkdir(parents=True)
    assert cli._export_hint(run, "exp") == f"modrec export --checkpoint {run}/best.pt --out {run}/exp.onnx"
    (run / "exp.onnx").write_bytes(b"x")  # an earlier export of this run: re-exporting replaces it
    assert cli._export_hint(run, "exp").endswith(f"--out {run}/exp.onnx --force")
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("MODREC_MODEL_DIR", str(models))
    assert cli._export_hint(models, "cnn3").endswith("--out runs/cnn3/cnn3.onnx")
    assert "--out models/" not in cli._export_hint(MODELS, "cnn3")


def test_card_and_evaluate_card_and_from_onnx_refuse_to_replace_without_force(tmp_path, capsys):
    summary = {"accuracy": 0.5, "per_snr": [{"snr_db": 0, "n": 10, "accuracy": 0.5}], "classes": ["A", "B"]}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    card = tmp_path / "m.md"
    assert main(["card", "--summary", str(tmp_path / "summary.json"), "--out", str(card)]) == 0
    card.write_text("kept")
    assert main(["card", "--summary", str(tmp_path / "summary.json"), "--out", str(card)]) == 2
    assert f"{card} (--out) already exists" in capsys.readouterr().err and card.read_text() == "kept"
    assert main(["card", "--summary", str(tmp_path / "summary.json"), "--out", str(card), "--force"]) == 0
    assert card.read_text() != "kept"
    # refused before it spends time evaluating
    assert main(["evaluate", "--onnx", "cnn3", "--out", str(tmp_path / "eval"), "--card", str(card)]) == 2
    assert f"{card} (--card) already exists" in capsys.readouterr().err and not (tmp_path / "eval").exists()
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"a training run's own")
    assert main(["from-onnx", "--onnx", "mobilenet1d", "--out", str(checkpoint)]) == 2
    assert "--force" in capsys.readouterr().err and checkpoint.read_bytes() == b"a training run's own"


def test_the_shipped_model_cards_regenerate_with_force():
    """Every `--out models/...` export and `--card models/...` evaluation a shipped page shows
    replaces an existing file, so it says --force; no page suggests writing over one without it."""
    pages = [*MODELS.glob("*.md"), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    for page in pages:
        for line in page.read_text().splitlines():
            for flag, suffix in (("--out", ".onnx"), ("--card", ".md")):
                words = line.split()
                if "modrec" not in line or flag not in words or words.index(flag) + 1 >= len(words):
                    continue
                target = words[words.index(flag) + 1]
                if target.startswith("models/") and target.endswith(suffix) and (ROOT / target).exists():
                    assert "--force" in line, f"{page.name}: {line.strip()}"
