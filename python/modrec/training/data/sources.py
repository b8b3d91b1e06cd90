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

Files have no splits of their own: source.py says how they are split (the DataSource base).
"""

from pathlib import Path

from .dataset import SyntheticSource
from .radioml import RadioML2016Source, RadioML2018Source
from .sigmf_source import SigMFSource
from .source import DEFAULT_SPLIT_SCHEME, DEFAULT_SPLIT_SEED, DataSource, DataSourceError

KINDS = ("synthetic", "rml2016", "rml2018", "sigmf")

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# pickle protocol 2+ starts with PROTO (0x80); protocols 0/1 of a dict start with MARK '(' or '}'
_PICKLE_STARTS = (b"\x80", b"(", b"}")


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
        return RadioML2016Source(path, **file_options)
    if kind == "rml2018":
        return RadioML2018Source(path, **file_options, **extra)
    return SigMFSource(path, **file_options, **extra)


def run_source(training_data):
    """The source a training run read, from its checkpoint's ``training["data"]``: the recorded
    source, or (runs from before sources existed) the synthetic dataset's root."""
    return training_data.get("source") or f"synthetic:{training_data['root']}"


def read_split(source, split):
    """One split of a source (spec string, record dict or DataSource) as SplitData."""
    return open_source(source).load(split)
