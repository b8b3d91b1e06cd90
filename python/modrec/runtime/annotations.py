"""Classifier decisions -> merged segments -> SigMF annotations (a ``.sigmf-meta`` file).

numpy-free and GNU Radio-free: the standard library plus the ``sigmf`` package (1.14.0, the
standard's reference implementation), which is imported only by :func:`write_annotations`.
Offsets and lengths are in samples of the annotated recording (sample 0 = its first sample).

Extension namespace: every annotation carries ``modrec:confidence``, ``modrec:frames`` and (when
a model name is given) ``modrec:model`` next to the core fields, and the global object declares
the namespace in ``core:extensions`` as ``{"name": "modrec", "version": "1.0.0", "optional":
true}``. This is the form SigMF v1.2.6 prescribes: its schema (sigmf package ``schema-meta.json``,
``properties.global.properties["core:extensions"]``) says Extension Objects "MUST contain the three
key/value pairs" name, version, optional "and MUST NOT contain any other fields"; keys of an
extension are ``<namespace>:<name>``; and sigmf-python's validator warns (and says it will later
fail) when a namespace is used without being declared there. ``optional: true`` because a reader
that does not know ``modrec`` loses nothing it needs: the class is also in ``core:label``.
"""

import math
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..classes import UNKNOWN_CLASS

EXTENSION_NAME = "modrec"
EXTENSION_VERSION = "1.0.0"
# The core:extensions entry declaring our namespace (see the module docstring for the spec text).
MODREC_EXTENSION = {"name": EXTENSION_NAME, "version": EXTENSION_VERSION, "optional": True}

META_EXT = ".sigmf-meta"
DATA_EXT = ".sigmf-data"

__all__ = [
    "DATA_EXT",
    "Decision",
    "EXTENSION_NAME",
    "EXTENSION_VERSION",
    "META_EXT",
    "MODREC_EXTENSION",
    "Segment",
    "UNKNOWN_CLASS",
    "annotation_metadata",
    "check_meta_path",
    "merge_decisions",
    "write_annotations",
]


def _is_int(value):
    # bool is an int subclass, numpy integers are not: accept ints and anything with __index__.
    if isinstance(value, bool):
        return False
    try:
        value.__index__()
    except (AttributeError, TypeError):
        return False
    return True


def _check_label(label, where):
    if not isinstance(label, str) or not label:
        raise ValueError(f"{where}.label: expected a non-empty string, got {label!r}")


def _check_confidence(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ValueError(f"{where}: expected a number in [0, 1], got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{where}: expected a finite number in [0, 1], got {value!r}")
    return value


@dataclass(frozen=True)
class Decision:
    """One classified frame.

    start: first sample of the frame (int >= 0, samples); length: frame length (int >= 1,
    samples); label: class name (non-empty str; ``"unknown"`` for a rejected frame);
    confidence: top class probability (finite float in [0, 1]).
    Raises ValueError (naming the field, expected vs found) for anything else.
    """

    start: int
    length: int
    label: str
    confidence: float

    def __post_init__(self):
        if not _is_int(self.start) or self.start < 0:
            raise ValueError(f"Decision.start: expected an integer >= 0 (samples), got {self.start!r}")
        if not _is_int(self.length) or self.length < 1:
            raise ValueError(f"Decision.length: expected an integer >= 1 (samples), got {self.length!r}")
        _check_label(self.label, "Decision")
        object.__setattr__(self, "start", int(self.start))
        object.__setattr__(self, "length", int(self.length))
        object.__setattr__(self, "confidence", _check_confidence(self.confidence, "Decision.confidence"))

    @property
    def end(self):
        """One past the last sample of the frame (samples)."""
        return self.start + self.length


@dataclass(frozen=True)
class Segment:
    """Consecutive frames of one class merged: samples [start, start + count).

    start (int, samples), count (int, samples), label (str), mean_confidence (float, the
    unweighted mean of the frames' confidences), frames (int, number of frames merged).
    """

    start: int
    count: int
    label: str
    mean_confidence: float
    frames: int

    @property
    def end(self):
        """One past the last sample of the segment (samples)."""
        return self.start + self.count


def merge_decisions(decisions, max_gap=0):
    """Merge consecutive same-class decisions into segments.

    decisions: iterable of :class:`Decision`, any order (sorted here by start, then length).
    A decision joins the current segment when it has the same label and starts at or before
    the segment's end + ``max_gap`` (int >= 0, samples): back-to-back frames (gap 0) and
    overlapping ones (hop < frame_len) merge; a gap wider than ``max_gap`` or a different label
    starts a new segment. A segment spans from its first frame's start to the furthest frame
    end, so with overlapping frames of different classes, segments may overlap (SigMF allows
    overlapping annotations). Segments labelled ``"unknown"`` (``classes.UNKNOWN_CLASS``: the
    classifier was not confident) are kept: they say the model looked there and did not
    decide, which differs from no annotation (not classified at all).

    Returns a list of :class:`Segment` sorted by start. Raises ValueError for a non-Decision
    item or a bad ``max_gap``.
    """
    if not _is_int(max_gap) or max_gap < 0:
        raise ValueError(f"max_gap: expected an integer >= 0 (samples), got {max_gap!r}")
    items = list(decisions)
    for i, d in enumerate(items):
        if not isinstance(d, Decision):
            raise ValueError(f"decisions[{i}]: expected a Decision, got {type(d).__name__}")
    items.sort(key=lambda d: (d.start, d.length))

    segments = []
    cur = None  # [start, end, label, confidence sum, frames]
    for d in items:
        if cur is not None and d.label == cur[2] and d.start <= cur[1] + max_gap:
            cur[1] = max(cur[1], d.end)
            cur[3] += d.confidence
            cur[4] += 1
            continue
        if cur is not None:
            segments.append(_segment(cur))
        cur = [d.start, d.end, d.label, d.confidence, 1]
    if cur is not None:
        segments.append(_segment(cur))
    return segments


def _segment(cur):
    start, end, label, conf_sum, frames = cur
    return Segment(start=start, count=end - start, label=label, mean_confidence=conf_sum / frames, frames=frames)


def _check_sample_rate(sample_rate):
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) and not hasattr(sample_rate, "__float__"):
        raise ValueError(f"sample_rate: expected a number > 0 (Hz), got {sample_rate!r}")
    value = float(sample_rate)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"sample_rate: expected a finite number > 0 (Hz), got {sample_rate!r}")
    return value


def annotation_metadata(segments, sample_rate, model_name):
    """The SigMF pieces describing ``segments``.

    segments: iterable of :class:`Segment` (e.g. from :func:`merge_decisions`); sample_rate:
    Hz (> 0); model_name: str written as ``modrec:model`` (empty or None leaves it out).

    Returns ``{"global": {...}, "annotations": [...]}``: the global fields ``core:sample_rate``
    and ``core:extensions`` (the modrec declaration, :data:`MODREC_EXTENSION`), and one
    annotation dict per segment, sorted by start as SigMF requires: ``core:sample_start``,
    ``core:sample_count`` (samples), ``core:label`` (the class), ``modrec:confidence`` (mean
    top probability over the merged frames), ``modrec:frames`` (frames merged) and
    ``modrec:model``. Raises ValueError for a bad sample_rate, model_name or segment.
    """
    rate = _check_sample_rate(sample_rate)
    if model_name is not None and not isinstance(model_name, str):
        raise ValueError(f"model_name: expected a string or None, got {model_name!r}")
    segments = list(segments)
    for i, seg in enumerate(segments):
        if not isinstance(seg, Segment):
            raise ValueError(f"segments[{i}]: expected a Segment, got {type(seg).__name__}")
    annotations = []
    for i, seg in enumerate(sorted(segments, key=lambda s: (s.start, s.count))):
        if not _is_int(seg.start) or seg.start < 0 or not _is_int(seg.count) or seg.count < 0:
            raise ValueError(f"segments[{i}]: expected start >= 0 and count >= 0 (samples), got {seg!r}")
        _check_label(seg.label, f"segments[{i}]")
        ann = {
            "core:sample_start": int(seg.start),
            "core:sample_count": int(seg.count),
            "core:label": seg.label,
            "modrec:confidence": _check_confidence(seg.mean_confidence, f"segments[{i}].mean_confidence"),
            "modrec:frames": int(seg.frames),
        }
        if model_name:
            ann["modrec:model"] = model_name
        annotations.append(ann)
    return {"global": {"core:sample_rate": rate, "core:extensions": [dict(MODREC_EXTENSION)]}, "annotations": annotations}


def check_meta_path(meta_path):
    """Validate a metadata path: returns it as a Path.

    It must end in ``.sigmf-meta`` (sigmf-python derives the dataset and archive names from
    that) and must not be a directory. Raises ValueError otherwise. Does not touch the disk
    beyond a stat.
    """
    if not isinstance(meta_path, (str, os.PathLike)) or not os.fspath(meta_path):
        raise ValueError(f"meta_path: expected a non-empty path ending in {META_EXT!r}, got {meta_path!r}")
    path = Path(os.fspath(meta_path))
    if not path.name.endswith(META_EXT) or path.name == META_EXT:
        raise ValueError(f"meta_path: expected a file name <base>{META_EXT}, got {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"meta_path: {str(path)!r} is a directory, expected a {META_EXT} file")
    return path


def check_not_foreign(meta_path):
    """ValueError when ``meta_path`` exists and was not written by gr-modrec (its global lacks the
    ``modrec`` extension): it is then someone's recording metadata (its annotations, checksums,
    frequency), which writing annotations would replace."""
    path = Path(os.fspath(meta_path))
    if not path.is_file():
        return
    try:
        with open(path, encoding="utf-8") as fp:
            extensions = json.load(fp).get("global", {}).get("core:extensions", [])
    except (OSError, ValueError, AttributeError):
        extensions = []
    if not any(isinstance(e, dict) and e.get("name") == EXTENSION_NAME for e in extensions or []):
        raise ValueError(
            f"meta_path: {str(path)!r} exists and was not written by gr-modrec (no '{EXTENSION_NAME}' entry in "
            f"global core:extensions): it holds a recording's own metadata, which would be replaced; write the "
            f"annotations to another file, e.g. <base>.modrec{META_EXT}"
        )


def dataset_name(meta_path, data_path):
    """core:dataset value for data_path, or None when it follows <base>.sigmf-data."""
    if data_path is None or not os.fspath(data_path):
        return None
    data = Path(os.fspath(data_path))
    if data.name in ("", ".", ".."):
        raise ValueError(f"data_path: expected a file path, got {str(data)!r}")
    meta_dir = os.path.abspath(meta_path.parent)
    data_dir = os.path.abspath(data.parent)
    if meta_dir != data_dir:
        # SigMF core:dataset holds a file name only: "The Dataset file must be in the same
        # directory as the .sigmf-meta file".
        raise ValueError(
            f"data_path: {str(data)!r} must be in the directory of meta_path {str(meta_path)!r} "
            f"(SigMF core:dataset names a file in the metadata's directory), found directory {data_dir!r}"
        )
    if data.resolve() == meta_path.resolve():
        raise ValueError(f"data_path: {str(data)!r} is the metadata file itself")
    conforming = meta_path.name[: -len(META_EXT)] + DATA_EXT
    return None if data.name == conforming else data.name


def write_annotations(
    meta_path,
    segments,
    sample_rate,
    model_name,
    data_path=None,
    datatype="cf32_le",
    base_global=None,
    captures=None,
    center_frequency=None,
):
    """Write a SigMF metadata file annotating a recording with ``segments``; return its Path.

    meta_path: ``<base>.sigmf-meta`` (overwritten if present). segments: iterable of
    :class:`Segment` (samples). sample_rate: Hz (> 0). model_name: ``modrec:model`` (str; empty
    leaves it out). data_path: the recording's samples, in meta_path's directory; a name other
    than ``<base>.sigmf-data`` is a SigMF Non-Conforming Dataset and is named in
    ``core:dataset``; None/empty writes no ``core:dataset`` (the data, if any, is
    ``<base>.sigmf-data``). The data file is never opened (no checksum is computed: any
    ``core:sha512`` comes from ``base_global``), so it may still be being written.
    datatype: SigMF ``core:datatype`` of the samples (default complex64 little-endian).
    base_global: dict, the recording's own global object; all its fields are kept (e.g.
    ``core:author``, ``core:hw``), its ``core:extensions`` get the modrec entry added, and its
    ``core:version`` is rewritten to the sigmf package's spec version. captures: list of capture
    dicts (each with ``core:sample_start``), kept as given; None writes one capture at sample 0,
    with ``core:frequency`` = center_frequency (Hz) unless that is None too.

    The file is validated against the SigMF schema (``sigmf.SigMFFile(..., skip_checksum=True)
    .validate()``) before anything is written, written to a temporary file in the same
    directory and moved over meta_path with os.replace, so readers see the old file or the new
    one, never a partial one. It loads back with ``sigmf.sigmffile.fromfile(meta_path)``.

    Raises ValueError for bad arguments: a meta_path not ending in .sigmf-meta, a data_path in
    another directory, ``core:sample_rate``/``core:datatype`` in base_global that differ from
    sample_rate/datatype, captures together with center_frequency, metadata the schema rejects;
    OSError when the directory is not writable; ImportError without the sigmf package.
    """
    try:
        import sigmf
        from sigmf import SigMFFile
    except ImportError as exc:  # pragma: no cover - sigmf is a runtime requirement
        raise ImportError(f"write_annotations needs the 'sigmf' package (requirements/runtime.txt): {exc}") from exc

    meta_path = check_meta_path(meta_path)
    rate = _check_sample_rate(sample_rate)
    if not isinstance(datatype, str) or not datatype:
        raise ValueError(f"datatype: expected a SigMF core:datatype string such as 'cf32_le', got {datatype!r}")
    dataset = dataset_name(meta_path, data_path)
    pieces = annotation_metadata(segments, rate, model_name)

    if base_global is None:
        base_global = {}
    if not isinstance(base_global, dict):
        raise ValueError(f"base_global: expected a dict (a SigMF global object), got {type(base_global).__name__}")
    glob = dict(base_global)
    for key, ours in (("core:sample_rate", rate), ("core:datatype", datatype)):
        theirs = glob.get(key)
        if theirs is not None and theirs != ours:
            raise ValueError(f"base_global[{key!r}]: the recording says {theirs!r}, the annotations were made with {ours!r}")
        glob[key] = ours
    extensions = [dict(e) for e in glob.get("core:extensions", [])]
    extensions = [e for e in extensions if e.get("name") != EXTENSION_NAME] + pieces["global"]["core:extensions"]
    glob["core:extensions"] = extensions
    if dataset is not None:
        glob["core:dataset"] = dataset
    elif data_path:
        glob.pop("core:dataset", None)  # conforming <base>.sigmf-data: the field must not point elsewhere

    if captures is not None:
        if center_frequency is not None:
            raise ValueError("captures and center_frequency: give one of them, the captures carry core:frequency")
        if not isinstance(captures, (list, tuple)) or not all(
            isinstance(c, dict) and _is_int(c.get("core:sample_start")) for c in captures
        ):
            raise ValueError(f"captures: expected a list of dicts each with an integer 'core:sample_start', got {captures!r}")
        capture_list = [dict(c) for c in captures]
    else:
        capture = {"core:sample_start": 0}
        if center_frequency is not None:
            if isinstance(center_frequency, bool) or not math.isfinite(float(center_frequency)):
                raise ValueError(f"center_frequency: expected a finite number (Hz), got {center_frequency!r}")
            capture["core:frequency"] = float(center_frequency)
        capture_list = [capture]

    metadata = {"global": glob, "captures": capture_list, "annotations": pieces["annotations"]}
    # No data_file: attaching one would memory-map (read) a file that a File Sink may still be
    # filling; skip_checksum keeps sigmf from ever hashing it.
    handle = SigMFFile(metadata=metadata, skip_checksum=True)
    try:
        handle.validate()
    except Exception as exc:  # jsonschema.ValidationError, sigmf errors
        raise ValueError(f"{meta_path}: the SigMF metadata does not validate (sigmf {sigmf.__version__}): {exc}") from exc

    _atomic_write(meta_path, handle)
    return meta_path


def _atomic_write(meta_path, handle):
    tmp = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    # os.open with 0o666 lets the umask decide the mode, like a plain open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fp:
            handle.dump(fp, pretty=True)
            fp.write("\n")
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, meta_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
