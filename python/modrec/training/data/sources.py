"""Data sources: one interface for every place that reads frames (train, evaluate, distil, prune,
early-exit training and evaluation, report).

A source is named by a spec string, ``KIND:PATH``, or a bare PATH whose kind is detected from the
file (its first bytes, or a directory's ``meta.json``):

    synthetic:DIR   a dataset built by ``modrec data`` (sharded .npz, splits train/val/test)
    rml2016:FILE    RadioML 2016.10a / 2016.10b / 2016.04c pickle (radioml.py)
    rml2018:FILE    RadioML 2018.01A HDF5 (radioml.py), read in chunks
    sigmf:PATH      a SigMF recording whose annotations label segments (sigmf_source.py)

Every source answers the same questions: ``classes``, ``frame_len``, ``samples_per_symbol``,
``splits`` (name -> frame count), ``load(split)`` (one split in memory as SplitData) and
``iter_split(split, frames)`` (the split in chunks of at most ``frames`` frames, memory bounded).
``record()`` is a JSON-able dict that ``open_source`` turns back into the same source (a
checkpoint stores it so export and evaluation re-read exactly the training data).

Files have no splits of their own. A file source splits its frames by ``split`` (percentages
"train/val/test", e.g. "60/20/20", or "train/test", e.g. "50/50", the split O'Shea et al. used
for RadioML 2016), stratified per (class, SNR): in every (class, SNR) group the frames are
permuted by a generator seeded with (seed, class name, SNR), then cut in that order, so the
split depends on the seed and the file's content, not on the order of the groups in the file
or on the other groups. ``limit`` > 0 keeps at most that many frames of each group (the first
of the same permutation) before cutting. The split ``all`` is every frame of the file, unsplit.
"""

import zlib
from pathlib import Path

import numpy as np

from .dataset import SplitData

ALL_SPLIT = "all"
DEFAULT_SPLIT_SCHEME = "60/20/20"
DEFAULT_SPLIT_SEED = 2016
KINDS = ("synthetic", "rml2016", "rml2018", "sigmf")

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# pickle protocol 2+ starts with PROTO (0x80); protocols 0/1 of a dict start with MARK '(' or '}'
_PICKLE_STARTS = (b"\x80", b"(", b"}")


class DataSourceError(ValueError):
    """A data file or spec is unusable; the message names the file, the field, expected vs found."""


# ----------------------------------------------------------------------------- split schemes


def parse_split_scheme(text):
    """"60/20/20" -> {"train": 0.6, "val": 0.2, "test": 0.2}; "50/50" -> {"train": 0.5, "test": 0.5}.

    Percentages must be positive and sum to 100. Raises DataSourceError otherwise.
    """
    parts = str(text).split("/")
    names = {2: ("train", "test"), 3: ("train", "val", "test")}.get(len(parts))
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = None
    if names is None or values is None or any(v <= 0 for v in values) or abs(sum(values) - 100) > 1e-6:
        raise DataSourceError(
            f"data split {text!r}: expected 'train/val/test' or 'train/test' percentages that are > 0 and "
            f"sum to 100, e.g. '60/20/20' or '50/50'"
        )
    return {name: v / 100.0 for name, v in zip(names, values)}


def _group_seed(seed, class_name, snr_db):
    snr_key = int(round(float(snr_db) * 1000)) % 2**32 if np.isfinite(snr_db) else 2**32 - 1
    return np.random.SeedSequence(int(seed), spawn_key=(zlib.crc32(str(class_name).encode("utf-8")), snr_key))


def assign_splits(labels, snr_db, classes, scheme, seed, limit=0):
    """Split index of every frame (int8 (N,); -1 = left out by ``limit``), stratified per (class, SNR).

    labels int (N,) indices into ``classes``; snr_db float (N,) (NaN = unknown, one group per
    class); scheme a dict from parse_split_scheme; seed int; limit frames per group (0 = all).
    """
    labels = np.asarray(labels, np.int64)
    snr = np.asarray(snr_db, np.float64)
    snr_group = np.where(np.isfinite(snr), snr, np.inf)  # NaNs sort together, after every SNR
    out = np.full(labels.shape, -1, np.int8)
    fractions = np.cumsum(list(scheme.values()))
    order = np.lexsort((snr_group, labels))
    if order.size == 0:
        return out
    keys = np.stack([labels[order], snr_group[order]], axis=1)
    breaks = np.flatnonzero(np.any(keys[1:] != keys[:-1], axis=1)) + 1
    for group in np.split(order, breaks):
        label, snr_value = int(labels[group[0]]), float(snr[group[0]])
        rng = np.random.default_rng(_group_seed(seed, classes[label], snr_value))
        group = group[rng.permutation(group.size)]
        if limit:
            group = group[:limit]
        bounds = np.floor(fractions * group.size + 1e-9).astype(np.int64)
        bounds[-1] = group.size
        start = 0
        for index, stop in enumerate(bounds):
            out[group[start:stop]] = index
            start = stop
    return out


# ----------------------------------------------------------------------------- the interface


class DataSource:
    """Base of every source. Subclasses set ``kind``, ``path``, ``classes``, ``frame_len``,
    ``samples_per_symbol`` (int, or None when the data does not say) and implement ``_labels()``
    (y int64 (N,), snr_db float (N,) of every frame in file order) and ``_read(rows)`` (float32
    (len(rows), 2, frame_len) frames of sorted file rows), or override load/iter_split."""

    kind = "?"

    def __init__(self, path, scheme=DEFAULT_SPLIT_SCHEME, seed=DEFAULT_SPLIT_SEED, limit=0):
        self.path = Path(path)
        self.scheme_text = str(scheme)
        self.scheme = parse_split_scheme(scheme)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DataSourceError(f"{self.path}: split seed expected an integer >= 0, got {seed!r}")
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0:
            raise DataSourceError(f"{self.path}: limit expected an integer >= 0 (frames per class and SNR), got {limit!r}")
        self.seed, self.limit = int(seed), int(limit)
        self._assignment = None

    # --- what subclasses provide
    def _labels(self):
        raise NotImplementedError

    def _read(self, rows):
        raise NotImplementedError

    # --- derived
    @property
    def spec(self):
        return f"{self.kind}:{self.path}"

    def record(self):
        """JSON-able dict that open_source(**record) turns back into this source."""
        return {"source": f"{self.kind}:{self.path.resolve()}", "split": self.scheme_text, "seed": self.seed,
                "limit": self.limit}

    @property
    def meta(self):
        return {"format": self.kind, "source": str(self.path), "classes": list(self.classes), "frame_len": self.frame_len,
                "samples_per_symbol": self.samples_per_symbol, "split": self.scheme_text, "seed": self.seed,
                "limit": self.limit, "counts": self.splits,
                "x_layout": "float32 (N, 2, frame_len); row 0 = I, row 1 = Q"}

    def _split_rows(self, split):
        y, snr = self._labels()
        if split == ALL_SPLIT:
            return np.arange(y.size, dtype=np.int64)
        if split not in self.scheme:
            raise DataSourceError(
                f"{self.path}: no split {split!r} with data split {self.scheme_text!r}; expected one of "
                f"{', '.join(list(self.scheme) + [ALL_SPLIT])}"
                + (" (training needs a val split: use e.g. '60/20/20')" if split == "val" else "")
            )
        if self._assignment is None:
            self._assignment = assign_splits(y, snr, self.classes, self.scheme, self.seed, self.limit)
        return np.flatnonzero(self._assignment == list(self.scheme).index(split))

    @property
    def splits(self):
        """{split name: frames} for every split of the scheme, plus ``all``."""
        out = {name: int(self._split_rows(name).size) for name in self.scheme}
        out[ALL_SPLIT] = int(self._labels()[0].size)
        return out

    def _split_data(self, rows):
        y, snr = self._labels()
        return SplitData(x=self._read(rows), y=y[rows].astype(np.int64), snr_db=snr[rows].astype(np.float32),
                         meta=self.meta)

    def load(self, split):
        """One split in memory as SplitData (x float32 (N, 2, frame_len), y int64, snr_db float32)."""
        return self._split_data(self._split_rows(split))

    def iter_split(self, split, frames=65536):
        """The split in order, as SplitData chunks of at most ``frames`` frames (memory bounded)."""
        rows = self._split_rows(split)
        for s in range(0, rows.size, frames):
            yield self._split_data(rows[s : s + frames])

    def __repr__(self):
        return f"{type(self).__name__}({self.spec!r}, classes={len(self.classes)}, frame_len={self.frame_len})"


class SyntheticSource(DataSource):
    """A dataset directory built by ``modrec data`` / build_dataset: its own train/val/test splits."""

    kind = "synthetic"

    def __init__(self, path, scheme=None, seed=None, limit=0):
        from .dataset import read_meta

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
        from .dataset import load_split

        return load_split(self.path, split)

    def iter_split(self, split, frames=65536):
        # The shards are the chunks: a split is read one shard file at a time.
        data = self.load(split) if self._meta["shards"].get(split, 0) <= 1 else None
        if data is not None:
            for s in range(0, len(data), frames):
                yield SplitData(data.x[s : s + frames], data.y[s : s + frames], data.snr_db[s : s + frames], data.meta)
            return
        from .dataset import iter_shards

        for shard in iter_shards(self.path, split):
            for s in range(0, len(shard), frames):
                yield SplitData(shard.x[s : s + frames], shard.y[s : s + frames], shard.snr_db[s : s + frames], shard.meta)


# ----------------------------------------------------------------------------- opening


def detect_kind(path):
    """The source kind of ``path`` from its content: a directory with meta.json is synthetic, an HDF5
    signature rml2018, a pickle rml2016, a .sigmf-meta/.sigmf-data (or a base name that has one)
    sigmf. Raises DataSourceError naming the file and its first bytes otherwise."""
    path = Path(path)
    if path.is_dir():
        if (path / "meta.json").is_file():
            return "synthetic"
        raise DataSourceError(f"{path}: a directory without meta.json is not a dataset (expected a directory "
                              f"built by 'modrec data', or a RadioML/SigMF file)")
    if path.suffix in (".sigmf-meta", ".sigmf-data") or Path(str(path) + ".sigmf-meta").is_file():
        return "sigmf"
    if not path.is_file():
        raise DataSourceError(f"{path}: no such file or directory")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(_HDF5_SIGNATURE):
        return "rml2018"
    if head[:1] in _PICKLE_STARTS:
        return "rml2016"
    raise DataSourceError(
        f"{path}: cannot tell the data format from its first bytes {head!r} (expected an HDF5 file: RadioML 2018, "
        f"a pickle: RadioML 2016, a SigMF recording or a dataset directory); name it as KIND:PATH with KIND one of "
        f"{', '.join(KINDS)}"
    )


def split_spec(spec):
    """'KIND:PATH' -> (kind, path); a bare path -> (detected kind, path)."""
    text = str(spec)
    kind, sep, rest = text.partition(":")
    if sep and kind in KINDS:
        return kind, Path(rest).expanduser()
    return detect_kind(Path(text).expanduser()), Path(text).expanduser()


def open_source(source, split=None, seed=None, limit=0, classes=None, frame_len=None, samples_per_symbol=None):
    """A DataSource for ``source``: a DataSource (returned as is), a spec string, or a dict from record().

    split     file sources: the split scheme (default "60/20/20"); see the module docstring
    seed      file sources: the split seed (default 2016)
    limit     file sources: at most this many frames per (class, SNR) (0 = all)
    classes   rml2018: names of Y's columns (default classes.RADIOML2018_CLASSES, the corrected order);
              sigmf: the class list labels must belong to (default: the labels found, sorted)
    frame_len sigmf: samples per frame (default classes.DEFAULT_FRAME_LEN)
    samples_per_symbol  rml2018 / sigmf: the data's oversampling, when known
    Raises DataSourceError (bad spec or file) naming the file, field, expected vs found.
    """
    if isinstance(source, DataSource):
        return source
    if isinstance(source, dict):
        record = dict(source)
        return open_source(record.pop("source"), **record)
    kind, path = split_spec(source)
    file_options = {"scheme": split or DEFAULT_SPLIT_SCHEME, "seed": DEFAULT_SPLIT_SEED if seed is None else seed,
                    "limit": limit or 0}
    extra = {"classes": classes, "frame_len": frame_len, "samples_per_symbol": samples_per_symbol}
    allowed = {"synthetic": (), "rml2016": (), "rml2018": ("classes", "samples_per_symbol"),
               "sigmf": ("classes", "frame_len", "samples_per_symbol")}[kind]
    given = [k for k, v in extra.items() if v is not None and k not in allowed]
    if given:
        raise DataSourceError(f"{path}: option(s) {', '.join(given)} do not apply to a {kind} source "
                              f"(it takes {', '.join(allowed) or 'none of classes, frame_len, samples_per_symbol'})")
    extra = {k: v for k, v in extra.items() if k in allowed and v is not None}
    if kind == "synthetic":
        return SyntheticSource(path, scheme=split, limit=limit or 0)
    if kind == "rml2016":
        from .radioml import RadioML2016Source

        return RadioML2016Source(path, **file_options)
    if kind == "rml2018":
        from .radioml import RadioML2018Source

        return RadioML2018Source(path, **file_options, **extra)
    from .sigmf_source import SigMFSource

    return SigMFSource(path, **file_options, **extra)


def run_source(training_data):
    """The source a training run read, from its checkpoint's ``training["data"]``: the recorded
    source, or (runs from before sources existed) the synthetic dataset's root."""
    return training_data.get("source") or f"synthetic:{training_data['root']}"


def read_split(source, split):
    """One split of a source (spec string, record dict or DataSource) as SplitData."""
    return open_source(source).load(split)
