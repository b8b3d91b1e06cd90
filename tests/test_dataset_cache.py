"""Sharded dataset build: layout, round trip, worker independence, reuse and mismatch errors."""

import json

import numpy as np
import pytest

from gnuradio.modrec.training.data import DatasetError, GeneratorConfig, build_dataset, load_split, read_meta
from gnuradio.modrec.training.data.__main__ import main as cli_main

CFG = GeneratorConfig(classes=("BPSK", "QPSK", "AM-DSB"), snrs_db=(0, 10))
SPLITS = {"train": 6, "val": 2, "test": 3}


def _build(root, workers=1, **kw):
    args = dict(seed=3, splits=SPLITS, workers=workers, shard_frames=7, progress=False)
    args.update(kw)
    return build_dataset(root, CFG, **args)


def test_round_trip_layout_and_labels(tmp_path):
    root = tmp_path / "ds"
    meta = _build(root)
    assert meta["counts"] == {"train": 36, "val": 12, "test": 18}
    assert (root / "train" / "shard-00000.npz").exists() and (root / "train" / "shard-00005.npz").exists()
    on_disk = json.loads((root / "meta.json").read_text())
    for key in ("classes", "frame_len", "samples_per_symbol", "snrs_db", "seed", "config", "counts", "format_version"):
        assert key in on_disk
    assert on_disk["classes"] == ["BPSK", "QPSK", "AM-DSB"]
    train = load_split(root, "train")
    assert train.x.shape == (36, 2, 128) and train.x.dtype == np.float32
    assert train.y.dtype == np.int64 and train.snr_db.dtype == np.float32
    assert train.meta["seed"] == 3 and len(train) == 36 and train.classes == CFG.classes
    # Balanced over (class, SNR), shuffled across shards.
    pairs, counts = np.unique(np.stack([train.y, train.snr_db.astype(int)]), axis=1, return_counts=True)
    assert pairs.shape[1] == 6 and np.all(counts == 6)
    assert not np.all(np.diff(train.y) >= 0)
    # Splits come from unrelated streams.
    val = load_split(root, "val")
    assert not np.allclose(val.x[:5], train.x[:5])


def test_worker_count_does_not_change_bytes(tmp_path):
    _build(tmp_path / "one", workers=1)
    _build(tmp_path / "two", workers=2)
    for split in SPLITS:
        a, b = load_split(tmp_path / "one", split), load_split(tmp_path / "two", split)
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.snr_db, b.snr_db)


def test_reuse_mismatch_and_overwrite(tmp_path, capsys):
    root = tmp_path / "ds"
    _build(root)
    first = load_split(root, "test").x
    mtime = (root / "test" / "shard-00000.npz").stat().st_mtime_ns
    _build(root)
    assert "reusing" in capsys.readouterr().err
    assert (root / "test" / "shard-00000.npz").stat().st_mtime_ns == mtime
    with pytest.raises(DatasetError, match="seed"):
        _build(root, seed=4)
    _build(root, seed=4, overwrite=True)
    assert read_meta(root)["seed"] == 4
    assert not np.allclose(load_split(root, "test").x, first)


def test_interrupted_build_is_finished(tmp_path):
    root = tmp_path / "ds"
    _build(root)
    reference = load_split(root, "train").x
    (root / "meta.json").rename(root / "meta.partial.json")
    (root / "train" / "shard-00002.npz").unlink()
    with pytest.raises(DatasetError, match="no meta.json"):
        load_split(root, "train")
    _build(root)
    np.testing.assert_array_equal(load_split(root, "train").x, reference)


def test_load_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_split(tmp_path / "nothing", "train")
    root = tmp_path / "ds"
    _build(root)
    with pytest.raises(DatasetError, match="no split 'holdout'"):
        load_split(root, "holdout")
    shard = root / "val" / "shard-00000.npz"
    with np.load(shard) as z:
        np.savez(shard, x=z["x"], y=z["y"])
    with pytest.raises(DatasetError, match=r"missing field\(s\) \['snr_db'\]"):
        load_split(root, "val")


def test_build_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="workers"):
        build_dataset(tmp_path / "a", CFG, splits=SPLITS, workers=0, progress=False)
    with pytest.raises(ValueError, match="splits"):
        build_dataset(tmp_path / "a", CFG, splits={"train": -1}, progress=False)


def test_cli(tmp_path, capsys):
    root = tmp_path / "cli"
    argv = [
        "--out", str(root), "--frames-per-class-snr", "2", "--val-frames-per-class-snr", "1",
        "--test-frames-per-class-snr", "1", "--seed", "0", "--workers", "1", "--classes", "QPSK,WBFM",
        "--snrs", "0,10", "--no-progress",
    ]
    assert cli_main(argv) == 0
    assert load_split(root, "train").x.shape == (8, 2, 128)
    assert cli_main(argv[:-5] + ["--classes", "OOK", "--no-progress"]) == 2
    assert "GeneratorConfig.classes" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli_main(["--help"])
    assert exc.value.code == 0


def test_frames_per_class_snr_with_splits(tmp_path):
    meta = build_dataset(tmp_path / "a", CFG, 2, 1, splits={"train": 2, "val": None}, progress=False)
    assert meta["counts"] == {"train": 12, "val": 12}
    with pytest.raises(ValueError, match="frames_per_class_snr"):
        build_dataset(tmp_path / "b", CFG, 3, 1, splits={"train": 2}, progress=False)
