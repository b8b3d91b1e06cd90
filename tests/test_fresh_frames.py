"""Fresh training frames every epoch (data.fresh_frames, training/data/fresh.py)."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from gnuradio.modrec.training.checkpoint import load_checkpoint
from gnuradio.modrec.training.config import ConfigError, config_from_dict
from gnuradio.modrec.training.data.dataset import build_dataset, load_split
from gnuradio.modrec.training.data.fresh import FreshFrames
from gnuradio.modrec.training.data.generator import DEFAULT_CONFIG
from gnuradio.modrec.training.train import train

from test_train_eval_export import write_dataset

_GEN = dataclasses.replace(DEFAULT_CONFIG, snrs_db=(0.0, 10.0, 20.0))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A generator-made dataset: 11 classes x 3 SNRs, 6 train frames each."""
    root = tmp_path_factory.mktemp("fresh") / "data"
    build_dataset(root, _GEN, seed=7, splits={"train": 6, "val": 2, "test": 2}, workers=1, progress=False)
    return root


def _cfg(root, run_dir, epochs=3, **data):
    return config_from_dict({"experiment": "fresh", "seed": 0, "output_dir": str(run_dir),
                             "data": {"root": str(root), "fresh_frames": True, "fresh_workers": 0, **data},
                             "model": {"name": "cnn3", "cfg": {"channels": [8, 16, 16], "hidden": 16}},
                             "train": {"epochs": epochs, "batch_size": 64, "device": "cpu", "threads": 1}},
                            source="test.yaml")


def test_an_epoch_s_frames_depend_on_the_seed_and_epoch_only(generated):
    train_split = load_split(generated, "train")
    args = (_GEN, train_split.y, train_split.snr_db, 7)
    inline = FreshFrames(*args, workers=0, shard_frames=50)
    one, two = inline.frames(1), inline.frames(2)
    assert one.shape == train_split.x.shape and one.dtype == np.float32 and np.isfinite(one).all()
    assert not np.array_equal(one, two) and not np.array_equal(one, train_split.x)
    np.testing.assert_array_equal(inline.frames(1), one)  # asked again: the same frames
    with FreshFrames(*args, workers=2, shard_frames=50) as ahead:
        np.testing.assert_array_equal(ahead.frames(1), one)  # any number of workers
        np.testing.assert_array_equal(ahead.frames(2), two)  # generated ahead while epoch 1 trained
        np.testing.assert_array_equal(ahead.frames(5), inline.frames(5))  # a jump (a resumed run)
    # the labels are the split's: each class keeps its own signal (a tone-like AM-DSB carrier vs
    # constant-envelope FSK at 20 dB differ in envelope spread on fresh frames as on stored ones)
    classes = list(train_split.meta["classes"])

    def spread(x, name):
        rows = (train_split.y == classes.index(name)) & (train_split.snr_db == 20.0)
        env = np.hypot(x[rows, 0], x[rows, 1])
        return float(np.mean(env.std(axis=1) / env.mean(axis=1)))

    for x in (train_split.x, one, two):
        assert spread(x, "CPFSK") < 0.5 * spread(x, "QAM16")
    with pytest.raises(ValueError, match="epoch 0 trains on the stored split"):
        inline.frames(0)
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        FreshFrames(_GEN, train_split.y, train_split.snr_db[:-1], 7)


def test_each_epoch_trains_on_new_frames_and_a_resumed_run_matches(generated, tmp_path, monkeypatch):
    asked = []
    original = FreshFrames.frames
    monkeypatch.setattr(FreshFrames, "frames", lambda self, epoch: asked.append(epoch) or original(self, epoch))
    fresh = train(_cfg(generated, tmp_path / "fresh"), progress=False, log=lambda *a: None)
    assert asked == [1, 2]  # epoch 0 trains on the stored split
    history = json.loads((fresh / "history.json").read_text())
    n = len(load_split(generated, "train"))
    assert [h["frames_seen"] for h in history] == [n, 2 * n, 3 * n]

    raw = _cfg(generated, tmp_path / "stored")
    raw.data.fresh_frames = False
    stored = train(raw, progress=False, log=lambda *a: None)
    a, b = load_checkpoint(fresh / "last.pt")["state_dict"], load_checkpoint(stored / "last.pt")["state_dict"]
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the new frames changed what was learnt

    # interrupted after epoch 2 and resumed (with workers generating ahead): epoch 3's frames
    # are the ones the uninterrupted run had, bit for bit
    split = _cfg(generated, tmp_path / "split", fresh_workers=1)
    train(split, progress=False, stop_after_epochs=2, log=lambda *a: None)
    train(split, resume=True, progress=False, log=lambda *a: None)
    c = load_checkpoint(tmp_path / "split" / "last.pt")["state_dict"]
    for k in a:
        assert torch.equal(a[k], c[k]), k


def test_fresh_frames_need_the_generator(tmp_path):
    with pytest.raises(ConfigError, match="data.fresh_frames.*file"):
        config_from_dict({"data": {"source": "rml2016:/x.pkl", "fresh_frames": True}})
    with pytest.raises(ConfigError, match="data.fresh_frames.*cache_teacher"):
        config_from_dict({"data": {"fresh_frames": True}, "model": {"name": "cnn3"},
                          "distill": {"method": "kd", "teacher": {"checkpoint": "t.pt"}, "cache_teacher": True}})
    with pytest.raises(ConfigError, match="data.fresh_workers"):
        config_from_dict({"data": {"fresh_workers": -1}})
    hand_made = tmp_path / "hand"
    write_dataset(hand_made)  # no generator config in its meta
    with pytest.raises(ValueError, match="data.fresh_frames needs a dataset made by the generator"):
        train(_cfg(hand_made, tmp_path / "run"), progress=False, log=lambda *a: None)
