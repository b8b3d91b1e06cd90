"""Sharded, parallel, cached dataset builds and loading.

Layout of a dataset root (pick a cache directory outside the source tree):

    <root>/meta.json                 written last; its presence marks a complete build
    <root>/<split>/shard-00000.npz   x float32 (n, 2, L), y int64 (n,), snr_db float32 (n,)

Every split holds frames_per_class_snr frames for each (class, SNR) pair, shuffled across
shards. Shard k of split s is synthesised from SeedSequence(seed, spawn_key=(crc32(s), k)),
so the bytes do not depend on the number of workers or the order shards finish in, and
splits draw from unrelated streams.
"""

import json
import multiprocessing
import os
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np

from .generator import DEFAULT_CONFIG, GeneratorConfig, generate_labeled
from .source import DataSource, DataSourceError, SplitData

FORMAT_VERSION = 1
META_NAME = "meta.json"
PARTIAL_NAME = "meta.partial.json"
SHARD_FIELDS = ("x", "y", "snr_db")
DEFAULT_SPLITS = {"train": 1000, "val": 100, "test": 200}
DEFAULT_SHARD_FRAMES = 16384
_LAYOUT_KEY = 2**31 - 1  # spawn-key slot for the split's label shuffle, disjoint from shard ids


class DatasetError(RuntimeError):
    """A dataset directory is missing, incomplete or does not match what was asked for."""


def _split_key(split):
    return zlib.crc32(split.encode("utf-8"))


def _split_labels(config, frames_per_class_snr, seed, split):
    """Shuffled (class index, SNR) of every frame of a split, in storage order."""
    n_cls, snrs = len(config.classes), np.asarray(config.snrs_db, dtype=np.float32)
    y = np.repeat(np.arange(n_cls, dtype=np.int64), len(snrs) * frames_per_class_snr)
    s = np.tile(np.repeat(snrs, frames_per_class_snr), n_cls)
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_split_key(split), _LAYOUT_KEY))).permutation(
        y.size
    )
    return y[order], s[order]


def _shard_path(root, split, index):
    return Path(root) / split / f"shard-{index:05d}.npz"


def _make_shard(job):
    """Worker entry: synthesise one shard and write it atomically (tmp file + rename)."""
    config_dict, seed, split, index, y, snr, path = job
    config = GeneratorConfig.from_dict(config_dict)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_split_key(split), index)))
    x = generate_labeled(y, snr, rng, config)
    tmp = Path(path).with_suffix(".tmp.npz")
    np.savez(tmp, x=x, y=y.astype(np.int64), snr_db=snr.astype(np.float32))
    os.replace(tmp, path)
    return split, index, int(y.size)


def _check_positive_int(name, value, allow_zero=False):
    lo = 0 if allow_zero else 1
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < lo:
        raise ValueError(f"{name}: expected an integer >= {lo}, got {value!r}")


def _expected_meta(config, splits, seed, shard_frames):
    counts, shards = {}, {}
    per_class_snr = {}
    for split, fpcs in splits.items():
        n = fpcs * len(config.classes) * len(config.snrs_db)
        counts[split] = n
        shards[split] = -(-n // shard_frames) if n else 0
        per_class_snr[split] = fpcs
    return {
        "format_version": FORMAT_VERSION,
        "classes": list(config.classes),
        "frame_len": config.frame_len,
        "samples_per_symbol": config.samples_per_symbol,
        "snrs_db": [float(s) for s in config.snrs_db],
        "seed": seed,
        "shard_frames": shard_frames,
        "frames_per_class_snr": per_class_snr,
        "counts": counts,
        "shards": shards,
        "config": config.to_dict(),
        "x_layout": "float32 (N, 2, frame_len); row 0 = I, row 1 = Q",
        "snr_definition": "mean received signal power over the frame / complex noise power per sample",
    }


def _meta_diff(a, b):
    return sorted(k for k in set(a) | set(b) if json.dumps(a.get(k), sort_keys=True) != json.dumps(b.get(k), sort_keys=True))


def _progress(total, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="shard", file=sys.stderr)


def build_dataset(
    root,
    config=None,
    frames_per_class_snr=None,
    seed=0,
    splits=None,
    workers=1,
    shard_frames=DEFAULT_SHARD_FRAMES,
    overwrite=False,
    progress=True,
    mp_context="spawn",
):
    """Build (or reuse) a sharded dataset under ``root``; returns the meta dict.

    splits    {split name: frames per (class, SNR)}; default {"train": frames_per_class_snr
              or 1000, "val": 100, "test": 200}. A None entry takes frames_per_class_snr;
              frames_per_class_snr, when given with splits, must equal splits["train"].
    workers   processes; 1 runs in this process. Output is identical for any value.
    overwrite rebuild when ``root`` holds a different dataset (otherwise DatasetError).
    A complete dataset whose meta matches is reused without synthesising anything.
    """
    config = DEFAULT_CONFIG if config is None else config
    if not isinstance(config, GeneratorConfig):
        raise TypeError(f"config: expected GeneratorConfig or None, got {type(config).__name__}")
    if splits is None:
        splits = dict(DEFAULT_SPLITS)
        if frames_per_class_snr is not None:
            splits["train"] = frames_per_class_snr
    if not isinstance(splits, dict) or not splits:
        raise ValueError(f"splits: expected a non-empty dict of split name -> frames per (class, SNR), got {splits!r}")
    splits = dict(splits)
    for name, fpcs in splits.items():
        if fpcs is None:
            if frames_per_class_snr is None:
                raise ValueError(f"splits[{name!r}]: None means frames_per_class_snr, which was not given")
            splits[name] = frames_per_class_snr
    if frames_per_class_snr is not None and splits.get("train", frames_per_class_snr) != frames_per_class_snr:
        raise ValueError(
            f"frames_per_class_snr: expected the same value as splits['train'] ({splits['train']}), "
            f"got {frames_per_class_snr}; give the per-split counts in splits only"
        )
    for name, fpcs in splits.items():
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise ValueError(f"splits: expected plain directory names, got {name!r}")
        _check_positive_int(f"splits[{name!r}]", fpcs, allow_zero=True)
    _check_positive_int("seed", seed, allow_zero=True)
    _check_positive_int("workers", workers)
    _check_positive_int("shard_frames", shard_frames)

    root = Path(root)
    _warn_if_in_source_tree(root)
    meta = _expected_meta(config, splits, int(seed), int(shard_frames))
    meta_path = root / META_NAME
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        diff = _meta_diff(old, meta)
        if not diff and _shards_present(root, meta):
            print(f"modrec data: reusing complete dataset at {root}", file=sys.stderr)
            return old
        if diff and not overwrite:
            raise DatasetError(
                f"{root} holds a different dataset (fields differ: {', '.join(diff) or 'shard files'}); "
                "pick another directory or pass overwrite=True (--overwrite) to rebuild it"
            )
        meta_path.unlink()
    partial_path = root / PARTIAL_NAME
    if partial_path.exists() and _meta_diff(json.loads(partial_path.read_text()), meta):
        if not overwrite:
            raise DatasetError(
                f"{root} holds an unfinished build of a different dataset; "
                "pick another directory or pass overwrite=True (--overwrite)"
            )
        partial_path.unlink()
    if overwrite or not partial_path.exists():
        for split in _list_split_dirs(root):
            shutil.rmtree(root / split)
    root.mkdir(parents=True, exist_ok=True)
    partial_path.write_text(json.dumps(meta, indent=2, sort_keys=True))

    jobs = []
    cfg_dict = config.to_dict()
    for split, fpcs in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        y, snr = _split_labels(config, fpcs, int(seed), split)
        for index in range(meta["shards"][split]):
            path = _shard_path(root, split, index)
            if path.exists():
                continue  # finished by an interrupted build of this same dataset (atomic writes)
            sl = slice(index * shard_frames, (index + 1) * shard_frames)
            jobs.append((cfg_dict, int(seed), split, index, y[sl], snr[sl], str(path)))

    bar = _progress(len(jobs), f"building {root.name}", progress)
    try:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                _make_shard(job)
                if bar:
                    bar.update(1)
        else:
            ctx = multiprocessing.get_context(mp_context)
            with _single_threaded_env(), ctx.Pool(min(workers, len(jobs))) as pool:
                for _ in pool.imap_unordered(_make_shard, jobs):
                    if bar:
                        bar.update(1)
    finally:
        if bar:
            bar.close()
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True))
    partial_path.unlink()
    return meta


class _single_threaded_env:
    """Workers are the parallelism; BLAS/OpenMP threads inside them would oversubscribe."""

    _VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

    def __enter__(self):
        self._old = {k: os.environ.get(k) for k in self._VARS}
        for k in self._VARS:
            os.environ[k] = "1"

    def __exit__(self, *exc):
        for k, v in self._old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _warn_if_in_source_tree(root):
    # Datasets are hundreds of MB: inside a git checkout they end up in status and backups.
    checkout = Path(__file__).resolve().parents[4]
    if (checkout / ".git").exists():
        try:
            root.resolve().relative_to(checkout)
        except ValueError:
            return
        print(f"modrec data: warning: {root} is inside the source tree {checkout}; prefer a cache directory", file=sys.stderr)


def _list_split_dirs(root):
    if not root.is_dir():
        return []
    return [p.name for p in root.iterdir() if p.is_dir() and any(p.glob("shard-*.npz"))]


def _shards_present(root, meta):
    return all(_shard_path(root, s, i).exists() for s, n in meta["shards"].items() for i in range(n))


def read_meta(root):
    """meta.json of a complete dataset, or DatasetError saying what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset directory {root} does not exist; build it first (build_dataset or the CLI)")
    meta_path = root / META_NAME
    if not meta_path.exists():
        extra = " (an unfinished build is there: run the build again to finish it)" if (root / PARTIAL_NAME).exists() else ""
        raise DatasetError(f"{root} has no {META_NAME}, so it is not a complete dataset{extra}")
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{meta_path}: format_version expected {FORMAT_VERSION}, got {meta.get('format_version')!r}; rebuild the dataset"
        )
    return meta


def load_split(root, split):
    """Concatenate the shards of one split into a SplitData."""
    meta = read_meta(root)
    shards = list(iter_shards(root, split))
    L = meta["frame_len"]
    if shards:
        x = np.concatenate([s.x for s in shards])
        y = np.concatenate([s.y for s in shards])
        snr = np.concatenate([s.snr_db for s in shards])
    else:
        x, y, snr = np.zeros((0, 2, L), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)
    if x.shape[1:] != (2, L) or y.shape != (x.shape[0],) or snr.shape != y.shape:
        raise DatasetError(
            f"{root}/{split}: inconsistent shapes x {x.shape}, y {y.shape}, snr_db {snr.shape}; expected (N, 2, {L}), (N,), (N,)"
        )
    if x.shape[0] != meta["counts"][split]:
        raise DatasetError(f"{root}/{split}: {x.shape[0]} frames, meta.json expects {meta['counts'][split]}")
    return SplitData(x=x, y=y, snr_db=snr, meta=meta)


def iter_shards(root, split):
    """The shards of one split in order, one SplitData each (one shard in memory at a time)."""
    meta = read_meta(root)
    if split not in meta["shards"]:
        raise DatasetError(f"{root}: no split {split!r}; expected one of {sorted(meta['shards'])}")
    for index in range(meta["shards"][split]):
        path = _shard_path(root, split, index)
        if not path.exists():
            raise DatasetError(f"{path} is missing; the dataset is damaged, rebuild it with overwrite")
        x, y, snr = _read_shard(path)
        yield SplitData(x=x, y=y.astype(np.int64, copy=False), snr_db=snr.astype(np.float32, copy=False), meta=meta)


def _read_shard(path):
    """x, y, snr_db of one shard. Never unpickles: an object array in an .npz is a pickle, which
    runs code as it loads, and a shard holds only numbers (allow_pickle=False, numpy's default,
    said here so that no edit turns it on)."""
    try:
        with np.load(path, allow_pickle=False) as shard:
            missing = [k for k in SHARD_FIELDS if k not in shard.files]
            if missing:
                raise DatasetError(f"{path}: missing field(s) {missing}; expected {list(SHARD_FIELDS)}")
            return tuple(shard[k] for k in SHARD_FIELDS)
    except ValueError as err:
        if "allow_pickle" not in str(err):
            raise DatasetError(f"{path}: not a readable shard ({err}); rebuild the dataset with overwrite") from None
        raise DatasetError(f"{path}: refused to load: it holds pickled objects (an object array), which may run code "
                           f"when loaded; a shard holds only the numeric arrays {', '.join(SHARD_FIELDS)}, so this file "
                           f"was not written by the dataset builder or has been altered. Rebuild the dataset.") from None


class SyntheticSource(DataSource):
    """A dataset directory built by ``modrec data`` / build_dataset: its own train/val/test splits."""

    kind = "synthetic"

    def __init__(self, path, scheme=None, seed=None, limit=0):
        self.path = Path(path)
        self._meta = read_meta(self.path)
        for name, value in (("split", scheme), ("limit", limit or None)):
            if value is not None:
                raise DataSourceError(f"{self.path}: a synthetic dataset has its own splits; {name} {value!r} applies "
                                      f"to files (RadioML, SigMF) only")
        self.classes = tuple(self._meta["classes"])
        self.frame_len = int(self._meta["frame_len"])
        self.samples_per_symbol = self._meta.get("samples_per_symbol")
        self.scheme_text, self.seed, self.limit = None, self._meta.get("seed"), 0

    def record(self):
        return {"source": f"{self.kind}:{self.path.resolve()}"}

    @property
    def meta(self):
        return self._meta

    @property
    def splits(self):
        return dict(self._meta["counts"])

    def load(self, split):
        return load_split(self.path, split)

    def iter_split(self, split, frames=65536):
        # The shards are the chunks: a split is read one shard file at a time.
        data = self.load(split) if self._meta["shards"].get(split, 0) <= 1 else None
        if data is not None:
            for s in range(0, len(data), frames):
                yield SplitData(data.x[s : s + frames], data.y[s : s + frames], data.snr_db[s : s + frames], data.meta)
            return
        for shard in iter_shards(self.path, split):
            for s in range(0, len(shard), frames):
                yield SplitData(shard.x[s : s + frames], shard.y[s : s + frames], shard.snr_db[s : s + frames], shard.meta)
