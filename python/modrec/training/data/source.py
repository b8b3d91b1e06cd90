"""What every data source is: SplitData, the DataSource interface, split schemes and errors.

The interface is described in sources.py, which opens a source by name; each kind of source
(dataset.py, radioml.py, sigmf_source.py) builds on this module and nothing above it.

Files have no splits of their own. A file source splits its frames by ``split`` (percentages
"train/val/test", e.g. "60/20/20", or "train/test", e.g. "50/50", the split O'Shea et al. used
for RadioML 2016), stratified per (class, SNR): in every (class, SNR) group the frames are
permuted by a generator seeded with (seed, class name, SNR), then cut in that order, so the
split depends on the seed and the file's content, not on the order of the groups in the file
or on the other groups. ``limit`` > 0 keeps at most that many frames of each group (the first
of the same permutation) before cutting. The split ``all`` is every frame of the file, unsplit.
"""

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict

import numpy as np

ALL_SPLIT = "all"
DEFAULT_SPLIT_SCHEME = "60/20/20"
DEFAULT_SPLIT_SEED = 2016



@dataclass
class SplitData:
    """One split in memory: x float32 (N, 2, L), y int64 (N,), snr_db float32 (N,), meta dict."""

    x: np.ndarray
    y: np.ndarray
    snr_db: np.ndarray
    meta: Dict[str, Any]

    def __len__(self):
        return int(self.y.shape[0])

    @property
    def classes(self):
        return tuple(self.meta["classes"])


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
        if getattr(self, "_counts", None) is None:  # every chunk's meta holds it: count once
            self._counts = {name: int(self._split_rows(name).size) for name in self.scheme}
            self._counts[ALL_SPLIT] = int(self._labels()[0].size)
        return dict(self._counts)

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
