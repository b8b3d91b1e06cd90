"""RadioML datasets as data sources (see sources.py for the interface and the split rule).

RadioML 2016.10a / 2016.10b / 2016.04c (T. J. O'Shea and N. West, "Radio Machine Learning
Dataset Generation with GNU Radio", Proc. GNU Radio Conference, 2016): one pickle holding
``{(modulation, snr_db): float32 array (N, 2, 128)}``, row 0 = I, row 1 = Q, 8 samples per
symbol for the digital classes. 10a has 11 classes, 10b 10 (no AM-SSB): the class list is the
file's own, sorted (which for 10a is the usual RadioML 2016 order). Loaded whole (10b is 1.2 GB)
through a restricted unpickler (safe_pickle.py).

RadioML 2018.01A (O'Shea, Roy, Clancy, IEEE JSTSP 2018): one HDF5 file with ``X`` float32
(N, 1024, 2), ``Y`` one-hot (N, 24), ``Z`` SNR in dB (N, 1). 2.5 M frames are 21 GB, so it is
never read whole: labels and SNRs are read in chunks, frames only for the rows asked for, one
chunk of the file at a time. The class of each column of Y is classes.RADIOML2018_CLASSES (the
corrected order; the file's classes.txt is wrong, see there) unless ``classes`` says otherwise.
"""

import warnings

import numpy as np

from ...classes import RADIOML2018_CLASSES, RADIOML2018_CLASSES_TXT, canonical_class_name
from .safe_pickle import load_restricted
from .source import DataSource, DataSourceError

RML2016_SAMPLES_PER_SYMBOL = 8  # O'Shea & West 2016, sec. 3: digital signals at 8 samples per symbol
_CHUNK_ROWS = 4096  # RadioML 2018 rows read per HDF5 access at most: 32 MB of X at frame_len 1024


def available_memory_bytes():
    """MemAvailable of /proc/meminfo (Linux), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _check_fits(path, n_frames, frame_len, what):
    need = n_frames * 2 * frame_len * 4
    free = available_memory_bytes()
    if free is not None and need > 0.6 * free:
        raise DataSourceError(
            f"{path}: {what} holds {n_frames:,} frames = {need / 2**30:.1f} GiB in memory, but only "
            f"{free / 2**30:.1f} GiB are available; keep fewer frames per (class, SNR) with data.limit "
            f"(--limit), or score it with modrec evaluate, which streams"
        )


class RadioML2016Source(DataSource):
    """RadioML 2016.10a / 10b / 04c pickle. All frames in memory (file order: keys sorted)."""

    kind = "rml2016"

    def __init__(self, path, scheme, seed, limit=0):
        super().__init__(path, scheme, seed, limit)
        if not self.path.is_file():
            raise DataSourceError(f"{self.path}: RadioML 2016 file not found")
        raw = load_restricted(self.path)
        if not isinstance(raw, dict) or not raw:
            raise DataSourceError(f"{self.path}: expected a non-empty dict {{(modulation, snr_db): array (N, 2, 128)}}, "
                                  f"found {type(raw).__name__}{' (empty)' if isinstance(raw, dict) else ''}")
        entries = {}
        frame_len = None
        for key, value in raw.items():
            if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], (str, bytes))
                    and isinstance(key[1], (int, np.integer)) and not isinstance(key[1], bool)):
                raise DataSourceError(f"{self.path}: key {key!r}: expected (modulation name, integer SNR in dB)")
            mod = key[0].decode("latin1") if isinstance(key[0], bytes) else key[0]
            if not isinstance(value, np.ndarray) or value.ndim != 3 or value.shape[1] != 2:
                shape = getattr(value, "shape", type(value).__name__)
                raise DataSourceError(f"{self.path}: entry {key!r}: expected an array (N, 2, frame_len), found {shape}")
            if not np.issubdtype(value.dtype, np.floating):
                raise DataSourceError(f"{self.path}: entry {key!r}: expected float32 frames, found dtype {value.dtype}")
            if frame_len is None:
                frame_len = value.shape[2]
            elif value.shape[2] != frame_len:
                raise DataSourceError(f"{self.path}: entry {key!r}: frames of {value.shape[2]} samples, but earlier "
                                      f"entries have {frame_len}; every frame must have the same length")
            entries[(mod, int(key[1]))] = value
        self.classes = tuple(sorted({mod for mod, _ in entries}))
        self.frame_len = int(frame_len)
        self.samples_per_symbol = RML2016_SAMPLES_PER_SYMBOL
        keys = sorted(entries, key=lambda k: (self.classes.index(k[0]), k[1]))
        counts = [entries[k].shape[0] for k in keys]
        self._x = np.concatenate([np.asarray(entries[k], np.float32) for k in keys]) if keys else None
        self._y = np.repeat([self.classes.index(k[0]) for k in keys], counts).astype(np.int64)
        self._snr = np.repeat([float(k[1]) for k in keys], counts).astype(np.float32)
        del raw, entries

    def _labels(self):
        return self._y, self._snr

    def _read(self, rows):
        return self._x[rows]


class RadioML2018Source(DataSource):
    """RadioML 2018.01A HDF5 (X (N, 1024, 2), Y one-hot (N, C), Z (N, 1)); frames read in chunks."""

    kind = "rml2018"

    def __init__(self, path, scheme, seed, limit=0, classes=None, samples_per_symbol=None):
        super().__init__(path, scheme, seed, limit)
        import h5py

        if not self.path.is_file():
            raise DataSourceError(f"{self.path}: RadioML 2018 file not found")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise DataSourceError(f"{self.path}: not a readable HDF5 file ({err})") from None
        f = self._file
        missing = [name for name in ("X", "Y", "Z") if name not in f]
        if missing:
            raise DataSourceError(f"{self.path}: lacks dataset(s) {', '.join(missing)}; RadioML 2018.01A has X (N, 1024, 2), "
                                  f"Y (N, 24), Z (N, 1); found {', '.join(sorted(f.keys())) or 'none'}")
        x, y, z = f["X"], f["Y"], f["Z"]
        if x.ndim != 3 or x.shape[2] != 2:
            raise DataSourceError(f"{self.path}: dataset X: expected shape (N, frame_len, 2), found {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise DataSourceError(f"{self.path}: dataset X: expected float32, found dtype {x.dtype}")
        n = x.shape[0]
        if y.ndim != 2 or y.shape[0] != n:
            raise DataSourceError(f"{self.path}: dataset Y: expected shape ({n}, n_classes) (one-hot), found {y.shape}")
        if z.shape not in ((n, 1), (n,)):
            raise DataSourceError(f"{self.path}: dataset Z: expected shape ({n}, 1) (SNR in dB), found {z.shape}")
        self.classes = tuple(RADIOML2018_CLASSES if classes is None else classes)
        if len(self.classes) != y.shape[1]:
            raise DataSourceError(
                f"{self.path}: dataset Y has {y.shape[1]} columns, but the class list has {len(self.classes)} names "
                f"{list(self.classes)}; give one name per column of Y with data.classes (--classes)"
            )
        keys = [canonical_class_name(c) for c in self.classes]
        twins = sorted({c for c, k in zip(self.classes, keys) if keys.count(k) > 1})
        if twins:
            raise DataSourceError(f"{self.path}: the class list names one class twice ({', '.join(twins)}: names are "
                                  f"matched across spellings, 16QAM = QAM16); give each column of Y its own class")
        if self.classes == tuple(RADIOML2018_CLASSES_TXT):
            warnings.warn(f"{self.path}: the class list is the order of the classes.txt shipped with RadioML 2018.01A, "
                          f"which does not match the data (radioML/dataset issue #25); the default order is the "
                          f"corrected one (classes.RADIOML2018_CLASSES)", stacklevel=2)
        self.frame_len = int(x.shape[1])
        self.samples_per_symbol = samples_per_symbol
        self._n = n
        self._y = self._z = None

    def record(self):
        rec = super().record()
        if self.classes != tuple(RADIOML2018_CLASSES):
            rec["classes"] = list(self.classes)
        if self.samples_per_symbol is not None:
            rec["samples_per_symbol"] = self.samples_per_symbol
        return rec

    def _labels(self):
        if self._y is None:
            y_ds, z_ds = self._file["Y"], self._file["Z"]
            labels = np.empty(self._n, np.int64)
            for s in range(0, self._n, _CHUNK_ROWS):
                block = np.asarray(y_ds[s : s + _CHUNK_ROWS])
                hot = block.argmax(axis=1)
                bad = np.flatnonzero((block.sum(axis=1) != 1) | (block[np.arange(block.shape[0]), hot] != 1))
                if bad.size:
                    raise DataSourceError(f"{self.path}: dataset Y row {s + int(bad[0])}: expected a one-hot row "
                                          f"(one 1, the rest 0), found {block[bad[0]].tolist()}")
                labels[s : s + block.shape[0]] = hot
            self._y = labels
            self._z = np.asarray(z_ds[:], np.float32).reshape(self._n)
        return self._y, self._z

    def load(self, split):
        rows = self._split_rows(split)
        _check_fits(self.path, rows.size, self.frame_len, f"split {split!r}")
        return self._split_data(rows)

    def _read(self, rows):
        """Frames of sorted rows, reading only the file chunks that hold them."""
        out = np.empty((rows.size, 2, self.frame_len), np.float32)
        x_ds = self._file["X"]
        done = 0
        while done < rows.size:
            first = int(rows[done])
            take = int(np.searchsorted(rows, first + _CHUNK_ROWS, side="left")) - done
            wanted = rows[done : done + take] - first
            block = np.asarray(x_ds[first : first + int(wanted[-1]) + 1], np.float32)  # (rows, frame_len, 2)
            if wanted.size != block.shape[0]:  # rows of other splits in between
                block = block[wanted]
            out[done : done + take] = block.transpose(0, 2, 1)
            done += take
        return out

    def close(self):
        self._file.close()

