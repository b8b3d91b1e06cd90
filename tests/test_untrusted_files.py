"""Files from elsewhere never run code: checkpoints, dataset shards and teacher caches.

A checkpoint is a pickle (in torch's zip), and so is an object array in an .npz: unpickled in
full, either imports and calls whatever it names. Each file planted here reduces to
``os.system("touch MARKER")``; the first tests show that a full unpickle does run it (so the
others can fail), the rest that every way gr-modrec opens such a file refuses it, names the file,
and leaves no MARKER.
"""

import importlib.util
import io
import os
import pickle
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gnuradio.modrec.training.checkpoint_io import UnsafeCheckpointError, load_checkpoint_file
from gnuradio.modrec.training.cli import main
from gnuradio.modrec.training.data.dataset import DatasetError, iter_shards, load_split
from gnuradio.modrec.training.checkpoint import load_checkpoint

from test_train_eval_export import write_dataset

ROOT = Path(__file__).resolve().parents[1]
PACK_RUNS = ROOT / "scripts" / "pack_runs.py"
SYSTEM = f"{os.system.__module__}.system"  # the global the planted pickles name (posix.system on Linux)


class _Touch:
    """Unpickles as os.system("touch MARKER")."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "MARKER"


@pytest.fixture
def planted(tmp_path, marker):
    """A checkpoint-shaped file (the keys load_checkpoint looks for) whose model_name runs a command."""
    path = tmp_path / "planted" / "best.pt"
    path.parent.mkdir()
    torch.save({"model_name": _Touch(marker), "model_cfg": {}, "state_dict": {}}, path)
    return path


def _refused(path):
    return rf"{path}: refused to load global '{SYSTEM}'.*may run code when loaded"


def _yaml(tmp_path, epochs=2):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "experiment": "untrusted",
        "data": {"name": "tiny", "frames_per_class_snr": {"train": 40, "val": 10, "test": 10}},
        "model": {"name": "cnn3", "cfg": {"channels": [8, 16, 16], "hidden": 16}},
        "train": {"epochs": epochs, "batch_size": 32},
    }))
    return path


def _train_args(tmp_path, dataset, out, *extra):
    return ["train", "--config", str(_yaml(tmp_path)), "--device", "cpu", "--threads", "1", "--data-root", str(dataset),
            "--out", str(out), "--no-progress", *extra]


def _nothing_left_allowed():
    """checkpoint_io's allow-list is for each load only: none of it is left allowed globally (torch's
    own modules, torch.distributed's among them, register theirs with add_safe_globals)."""
    left = {repr(g) for g in torch.serialization.get_safe_globals()}
    assert not left & {repr(g) for g in (torch.torch_version.TorchVersion, np.ndarray, np.dtype)}, left
    assert not any("_reconstruct" in g for g in left), left


def _pack_runs_module():
    spec = importlib.util.spec_from_file_location("pack_runs_under_test", PACK_RUNS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- the planted files do run code


def test_the_planted_checkpoint_runs_code_when_fully_unpickled(planted, marker):
    torch.load(planted, weights_only=False)
    assert marker.is_file()
    marker.unlink()
    with zipfile.ZipFile(planted) as z:  # the same with plain pickle on the zip's data.pkl
        pickle.loads(z.read(next(n for n in z.namelist() if n.endswith("/data.pkl"))))
    assert marker.is_file()


def test_the_planted_shard_runs_code_when_unpickled(tmp_path, marker):
    np.savez(tmp_path / "shard.npz", x=np.array([_Touch(marker)], dtype=object))
    with np.load(tmp_path / "shard.npz", allow_pickle=True) as z:
        z["x"]
    assert marker.is_file()


# ----------------------------------------------------------------------------- checkpoints: refused, nothing runs


def test_load_checkpoint_refuses_a_planted_checkpoint(planted, marker):
    for load in (load_checkpoint, load_checkpoint_file):
        with pytest.raises(UnsafeCheckpointError, match=_refused(planted)):
            load(planted)
    with pytest.raises(pickle.UnpicklingError):  # also what torch's own refusal is
        load_checkpoint(planted)
    assert not marker.exists()
    _nothing_left_allowed()


def test_a_legacy_format_checkpoint_is_refused_too(tmp_path, marker):
    path = tmp_path / "legacy.pt"
    torch.save({"model_name": _Touch(marker)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError, match=_refused(path)):
        load_checkpoint(path)
    assert not marker.exists()


def test_an_object_array_in_a_checkpoint_is_refused(tmp_path, marker):
    path = tmp_path / "objects.pt"
    torch.save({"model_name": "cnn3", "model_cfg": {}, "state_dict": {}, "keys": np.array([_Touch(marker)], dtype=object)}, path)
    with pytest.raises(UnsafeCheckpointError, match=rf"{path}: refused to load it \(.*object"):
        load_checkpoint(path)
    assert not marker.exists()


def test_modrec_evaluate_refuses_a_planted_checkpoint(planted, marker, tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(planted), "--out", str(tmp_path / "eval"), "--no-latency"]) == 2
    err = capsys.readouterr().err
    assert str(planted) in err and f"refused to load global '{SYSTEM}'" in err
    assert not marker.exists()


def test_modrec_export_refuses_a_planted_checkpoint(planted, marker, tmp_path, capsys):
    onnx_path = tmp_path / "out.onnx"
    assert main(["export", "--checkpoint", str(planted), "--out", str(onnx_path), "--legacy"]) == 2
    err = capsys.readouterr().err
    assert str(planted) in err and f"refused to load global '{SYSTEM}'" in err
    assert not marker.exists() and not onnx_path.exists()


def test_modrec_train_resume_refuses_a_planted_last_pt(planted, marker, dataset, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    last = run / "last.pt"
    last.write_bytes(planted.read_bytes())
    assert main(_train_args(tmp_path, dataset, run, "--resume")) == 2
    err = capsys.readouterr().err
    assert str(last) in err and f"refused to load global '{SYSTEM}'" in err
    assert not marker.exists() and not (run / "best.pt").exists()


def test_pack_runs_refuses_a_planted_checkpoint(planted, marker, tmp_path):
    pack_runs = _pack_runs_module()
    for load in (pack_runs.load_checkpoint_file, pack_runs.slim_checkpoint):
        with pytest.raises(ValueError, match=_refused(planted)):
            load(planted)
    assert not marker.exists()

    # the script itself, on a runs directory holding the planted file as a run's best.pt
    result = subprocess.run([sys.executable, str(PACK_RUNS), "--runs", str(planted.parent.parent),
                             "--out", str(tmp_path / "packed")], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert f"{planted}: refused to load global '{SYSTEM}'" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


# ----------------------------------------------------------------------------- .npz files: no pickles


def test_a_shard_with_an_object_array_is_refused(tmp_path, marker):
    root = write_dataset(tmp_path / "data")
    shard = root / "train" / "shard-00001.npz"
    with np.load(shard) as z:
        good = {k: z[k] for k in z.files}
    np.savez(shard, **{**good, "x": np.array([_Touch(marker)] * len(good["x"]), dtype=object)})
    for read in (lambda: load_split(root, "train"), lambda: list(iter_shards(root, "train"))):
        with pytest.raises(DatasetError, match=rf"{shard}: refused to load: it holds pickled objects.*may run code"):
            read()
    assert not marker.exists()
    assert len(load_split(root, "val").x) == 60  # the other splits still read


def test_a_teacher_cache_with_an_object_array_is_refused_and_replaced(tmp_path, marker):
    from gnuradio.modrec.training.distill.teacher_cache import cache_key, teacher_outputs

    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 8, 3))
    x, y = torch.randn(5, 2, 8), torch.zeros(5, dtype=torch.int64)
    args = dict(teacher_sha256="t", meta={"classes": ["A", "B", "C"]}, y=y, cache_dir=tmp_path / "cache")
    path = tmp_path / "cache" / f"{cache_key('t', args['meta'], 'train', x, y)}.npz"
    path.parent.mkdir()
    np.savez(path, logits=np.array([_Touch(marker)] * 5, dtype=object))
    logs = []
    logits, _, hit = teacher_outputs(teacher, x, log=logs.append, **args)
    assert not hit and logits.shape == (5, 3) and not marker.exists()
    assert any(f"refused cache {path}" in m and "pickled objects" in m for m in logs), logs
    with np.load(path, allow_pickle=False) as z:  # replaced by the recomputed, plain outputs
        assert z["logits"].dtype == np.float32


# ----------------------------------------------------------------------------- real checkpoints still work


def test_a_real_checkpoint_loads_resumes_and_exports(dataset, tmp_path):
    run = tmp_path / "run"
    assert main(_train_args(tmp_path, dataset, run, "--stop-after", "1")) == 0
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["epoch"] == 1
    for key in ("optimizer", "scheduler", "rng", "config", "history", "meta", "training", "state_dict"):
        assert key in ckpt, key
    assert type(ckpt["training"]["invocations"][0]["torch"]) is str  # a plain str, no torch class to allow

    assert main(_train_args(tmp_path, dataset, run, "--resume")) == 0
    resumed = load_checkpoint(run / "last.pt")
    assert resumed["epoch"] == 2 and [r["epochs"] for r in resumed["training"]["invocations"]] == [[1, 1], [2, 2]]

    onnx_path = tmp_path / "real.onnx"
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(onnx_path), "--legacy"]) == 0
    assert onnx_path.is_file()

    slim = _pack_runs_module().slim_checkpoint(run / "best.pt")
    assert not {"optimizer", "scheduler", "rng"} & set(torch.load(io.BytesIO(slim), weights_only=True))

    # written before torch's version was stored as a plain str: torch.__version__ is a TorchVersion
    ckpt["training"]["invocations"][0]["torch"] = torch.__version__
    torch.save(ckpt, tmp_path / "older.pt")
    assert load_checkpoint(tmp_path / "older.pt")["training"]["invocations"][0]["torch"] == torch.__version__
    _nothing_left_allowed()


def test_numpy_arrays_under_either_numpy_load_without_module_aliases(tmp_path):
    """Arrays named numpy._core (numpy 2) or numpy.core (numpy 1) load under this numpy, and no
    alias is left in sys.modules (one there makes onnx's exporters take numpy 1 for numpy 2)."""
    payload = {"model_name": "cnn3", "model_cfg": {}, "state_dict": {}, "keys": np.arange(3, dtype=np.uint32),
               "f": np.ones((2, 2), np.float32)}
    buf = io.BytesIO()  # the legacy format: a plain pickle, so renaming a module leaves no zip offsets stale
    torch.save(payload, buf, _use_new_zipfile_serialization=False, pickle_protocol=2)
    own = np.ndarray.__reduce__(np.arange(1))[0].__module__
    had = {name: name in sys.modules for name in ("numpy._core", "numpy._core.multiarray")}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        data = buf.getvalue().replace(own.encode(), module.encode())
        (tmp_path / "np.pt").write_bytes(data)
        ckpt = load_checkpoint(tmp_path / "np.pt")
        assert list(ckpt["keys"]) == [0, 1, 2] and ckpt["f"].dtype == np.float32
        assert {name: name in sys.modules for name in had} == had
