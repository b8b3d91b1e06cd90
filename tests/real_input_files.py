"""Files in the layouts of the field's datasets, made by the tests (the real ones are not here).

* ``write_rml2016``: a RadioML 2016.10a-style pickle as Python 2's cPickle wrote it (protocol 2,
  keys and the arrays' raw bytes as Python 2 ``str``, arrays naming
  ``numpy.core.multiarray._reconstruct``), so the loader meets what the real file holds.
* ``write_rml2018``: a RadioML 2018.01A-style HDF5 (X (N, L, 2) float32, Y one-hot, Z (N, 1)),
  ordered by class then SNR like the real file.
* ``write_labelled_sigmf``: a cf32 SigMF recording whose annotations label back-to-back runs
  of frames of one class.

Frames come from the synthetic generator at RadioML's 8 samples per symbol, so shipped models
recognise them at high SNR.
"""

import pickle
import struct

import numpy as np

from gnuradio.modrec.training.data.generator import DEFAULT_CONFIG, GeneratorConfig, generate_frames


class _Python2Pickler(pickle._Pickler):
    """Writes ``str`` and ``bytes`` as Python 2 ``str`` opcodes (what cPickle emitted)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = _save_py2_str
    dispatch[bytes] = _save_py2_str


def frames(class_name, n, snr_db, rng, frame_len=128):
    cfg = DEFAULT_CONFIG if frame_len == DEFAULT_CONFIG.frame_len else GeneratorConfig(
        **{**DEFAULT_CONFIG.to_dict(), "frame_len": frame_len})
    c = generate_frames(class_name, n, snr_db, rng, cfg)
    return np.stack([c.real, c.imag], axis=1).astype(np.float32)  # (n, 2, L)


def rml2016_dict(classes, snrs, per_key, seed=0, frame_len=128):
    rng = np.random.default_rng(seed)
    return {(c, int(s)): frames(c, per_key, s, rng, frame_len) for c in classes for s in snrs}


def write_rml2016(path, classes, snrs, per_key, seed=0, data=None):
    data = rml2016_dict(classes, snrs, per_key, seed) if data is None else data
    with open(path, "wb") as fh:
        _Python2Pickler(fh, protocol=2).dump(data)
    return data


def write_rml2018(path, classes, snrs, per_key, seed=0, frame_len=1024, n_columns=None):
    """Returns (x (N, 2, L), y (N,), snr (N,)) in file order."""
    import h5py

    rng = np.random.default_rng(seed)
    xs, ys, zs = [], [], []
    for k, c in enumerate(classes):
        for s in snrs:
            xs.append(frames(c, per_key, s, rng, frame_len))
            ys.append(np.full(per_key, k))
            zs.append(np.full(per_key, s))
    x, y, z = np.concatenate(xs), np.concatenate(ys), np.concatenate(zs)
    onehot = np.zeros((y.size, n_columns or len(classes)), np.int64)
    onehot[np.arange(y.size), y] = 1
    with h5py.File(path, "w") as f:
        f["X"] = x.transpose(0, 2, 1)
        f["Y"] = onehot
        f["Z"] = z.reshape(-1, 1).astype(np.int64)
    return x, y, z


def write_labelled_sigmf(base, runs, seed=0, frame_len=128, sample_rate=1e6, snr_db=20):
    """Recording ``base``.sigmf-data/-meta: for each (class, n_frames) in ``runs`` that many frames
    back to back, annotated as one segment. Returns (x (N, 2, L), labels list) in file order."""
    from sigmf import SigMFFile

    rng = np.random.default_rng(seed)
    parts, labels, annotations, start = [], [], [], 0
    for cls, n in runs:
        f = frames(cls, n, snr_db, rng, frame_len)
        parts.append(f)
        labels += [cls] * n
        annotations.append((start, n * frame_len, cls))
        start += n * frame_len
    x = np.concatenate(parts)
    stream = (x[:, 0, :] + 1j * x[:, 1, :]).astype(np.complex64).ravel()
    stream.tofile(f"{base}.sigmf-data")
    meta = SigMFFile(data_file=f"{base}.sigmf-data",
                     global_info={"core:datatype": "cf32_le", "core:sample_rate": sample_rate, "core:version": "1.0.0"})
    meta.add_capture(0, metadata={"core:frequency": 100e6})
    for s, count, cls in annotations:
        meta.add_annotation(s, count, metadata={"core:label": cls})
    meta.tofile(f"{base}.sigmf-meta")
    return x, labels
