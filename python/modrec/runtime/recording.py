"""Users' recordings: SigMF or raw I/Q files, read in bounded pieces as complex64.

A recording may be far larger than memory, so nothing here reads a whole file: ``read`` and
``iter_chunks`` fetch only the samples asked for. Everything about a file (format, sizes,
annotations) is checked once in ``open_recording`` so a bad file fails before any work is done,
with a RecordingError naming the file, the field, what was expected and what was found.

Fixed-point samples are scaled to [-1, 1) exactly as the sigmf package's autoscale does
(float32: subtract 2**(bits-1) if unsigned, then multiply by 2**-(bits-1)), so a raw file and
the same bytes described by SigMF metadata read identically, bit for bit.
"""

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sigmf.error import SigMFError
from sigmf.sigmffile import fromfile, get_dataset_filename_from_metadata, get_sigmf_filenames

from .framing import complex_to_iq, frame_starts


class RecordingError(ValueError):
    """A recording cannot be used; the message names the file, the field, expected and found."""


# Complex datatypes (SigMF names) -> numpy dtype of one component (I or Q). SigMF requires an
# endianness suffix on multi-byte types; 8-bit types have none.
_COMPONENT_DTYPES = {
    "cf64_le": "<f8", "cf64_be": ">f8", "cf32_le": "<f4", "cf32_be": ">f4",
    "ci32_le": "<i4", "ci32_be": ">i4", "ci16_le": "<i2", "ci16_be": ">i2", "ci8": "i1",
    "cu32_le": "<u4", "cu32_be": ">u4", "cu16_le": "<u2", "cu16_be": ">u2", "cu8": "u1",
}
SUPPORTED_DATATYPES = tuple(_COMPONENT_DTYPES)

# GNU Radio's file sink writes gr_complex, i.e. cf32 in the host's (little-endian) byte order.
_RAW_DEFAULT_DATATYPE = {".cfile": "cf32_le"}
_SIGMF_SUFFIXES = (".sigmf-meta", ".sigmf-data")
_UNSUPPORTED_SIGMF_SUFFIXES = (".sigmf", ".sigmf-collection")

# sigmf warns about these while opening; open_recording raises errors for them instead.
_SIGMF_WARNINGS_WE_CHECK = ("Data source does not contain an integer", "Data source ends before")


@dataclass(frozen=True)
class Segment:
    """A labelled stretch of a recording: samples [start, start + count), both in samples.

    ``index`` is the annotation's position in the metadata's ``annotations`` list, kept for error
    messages; it takes no part in equality.
    """

    start: int
    count: int
    label: str
    index: int = field(default=-1, compare=False)


def _component_dtype(datatype, source, flag_hint=""):
    """numpy dtype of one I or Q component of ``datatype``; RecordingError if unsupported."""
    if not isinstance(datatype, str):
        raise RecordingError(f"{source}: datatype should be a SigMF datatype string, found {datatype!r}{flag_hint}")
    if datatype in _COMPONENT_DTYPES:
        return np.dtype(_COMPONENT_DTYPES[datatype])
    if datatype[:1] == "r":
        raise RecordingError(
            f"{source}: datatype {datatype!r} is real (non-complex); gr-modrec needs complex I/Q, "
            f"expected one of {', '.join(SUPPORTED_DATATYPES)}{flag_hint}"
        )
    raise RecordingError(
        f"{source}: datatype {datatype!r} is not supported, expected one of "
        f"{', '.join(SUPPORTED_DATATYPES)}{flag_hint}"
    )


def _scale_components(components):
    """Interleaved I/Q components (any supported dtype) -> complex64, scaled like sigmf autoscale."""
    data = components.astype(np.float32)
    if components.dtype.kind in "iu":
        bits = components.dtype.itemsize * 8
        if components.dtype.kind == "u":
            data -= 2 ** (bits - 1)
        data *= 2 ** -(bits - 1)
    return data.view(np.complex64)


class Recording:
    """An opened recording (see ``open_recording``).

    Attributes: ``path`` (as given), ``data_path`` (str), ``meta_path`` (str or None for raw),
    ``datatype`` (SigMF name), ``sample_rate`` (Hz, float), ``center_frequency`` (Hz, float, or
    None), ``n_samples`` (int, complex samples), ``annotations`` (list of Segment, labelled only),
    ``global_info`` (dict, the SigMF global object; {} for raw).
    """

    def __init__(self, path, data_path, meta_path, datatype, sample_rate, n_samples, reader,
                 center_frequency=None, annotations=(), global_info=None):
        self.path = path
        self.data_path = data_path
        self.meta_path = meta_path
        self.datatype = datatype
        self.sample_rate = float(sample_rate)
        self.center_frequency = None if center_frequency is None else float(center_frequency)
        self.n_samples = int(n_samples)
        self.annotations = list(annotations)
        self.global_info = dict(global_info or {})
        self._reader = reader

    @property
    def labelled(self):
        """True when at least one annotation carries ``core:label``."""
        return bool(self.annotations)

    @property
    def duration(self):
        """Length in seconds."""
        return self.n_samples / self.sample_rate

    def read(self, start, count):
        """Samples [start, start + count) as complex64 (count,); RecordingError outside the file."""
        if isinstance(start, bool) or int(start) != start or isinstance(count, bool) or int(count) != count:
            raise RecordingError(f"{self.data_path}: read(start, count) needs integers, found {start!r}, {count!r}")
        start, count = int(start), int(count)
        if start < 0 or count < 0 or start + count > self.n_samples:
            raise RecordingError(
                f"{self.data_path}: read of samples [{start}, {start + count}) is outside the "
                f"recording's [0, {self.n_samples})"
            )
        if count == 0:
            return np.zeros(0, dtype=np.complex64)
        return np.ascontiguousarray(self._reader(start, count), dtype=np.complex64)

    def iter_chunks(self, chunk_samples, overlap=0):
        """Yield ``(start, complex64 (n,))`` covering the file in order, n <= chunk_samples.

        Consecutive chunks share ``overlap`` samples (0 <= overlap < chunk_samples), so a framer
        with hop < frame_len sees every frame; the last chunk ends at the last sample. Only one
        chunk is in memory at a time. ValueError for bad sizes (raised at the call, not on first
        iteration).
        """
        if isinstance(chunk_samples, bool) or int(chunk_samples) != chunk_samples or chunk_samples < 1:
            raise ValueError(f"chunk_samples must be an integer >= 1, got {chunk_samples!r}")
        if isinstance(overlap, bool) or int(overlap) != overlap or not 0 <= overlap < chunk_samples:
            raise ValueError(f"overlap must be an integer in [0, chunk_samples={chunk_samples}), got {overlap!r}")
        return self._chunks(int(chunk_samples), int(overlap))

    def _chunks(self, chunk, overlap):
        start = 0
        while start < self.n_samples:
            count = min(chunk, self.n_samples - start)
            yield start, self.read(start, count)
            if start + count >= self.n_samples:
                return
            start += chunk - overlap

    def __repr__(self):
        return (
            f"Recording({self.path!r}, datatype={self.datatype!r}, sample_rate={self.sample_rate:g}, "
            f"n_samples={self.n_samples}, labelled_segments={len(self.annotations)})"
        )


def open_recording(path, datatype=None, sample_rate=None, require_rate=True):
    """Open a SigMF recording or a raw I/Q capture for bounded reading.

    SigMF: ``path`` is a ``.sigmf-meta``, a ``.sigmf-data`` or their base name (``path`` +
    ``.sigmf-meta`` exists). A non-conforming dataset named by ``core:dataset`` is followed and
    wins over <base>.sigmf-data, as in sigmf. ``datatype`` / ``sample_rate`` may be given but must
    then agree with the metadata. ``core:sample_rate`` is optional in SigMF: when the metadata
    lacks it, ``sample_rate`` supplies it; with neither, RecordingError, unless ``require_rate``
    is False (reading labelled frames needs no rate), when ``sample_rate`` is NaN.

    Raw (anything else): ``datatype`` (a SigMF complex datatype, one of SUPPORTED_DATATYPES) and
    ``sample_rate`` (Hz) come from the caller; ``.cfile`` defaults to cf32_le.

    Raises RecordingError (a ValueError) naming the file and field for: a missing file, a
    missing/unsupported/real datatype, more than one channel, a missing or non-positive sample
    rate, a data size that is not a whole number of samples, or a bad annotation.
    """
    given = os.fspath(path)
    p = Path(given)
    if p.suffix in _UNSUPPORTED_SIGMF_SUFFIXES:
        raise RecordingError(
            f"{given}: SigMF archives and collections are not read directly; expected a .sigmf-meta "
            f"or .sigmf-data (extract an archive with `tar xf {p.name}`)"
        )
    companion_meta = Path(given + ".sigmf-meta")
    if p.suffix in _SIGMF_SUFFIXES or companion_meta.is_file():
        return _open_sigmf(given, datatype, sample_rate, require_rate)
    if not p.is_file():
        raise RecordingError(f"{given}: file does not exist (nor does {companion_meta.name})")
    return _open_raw(given, datatype, sample_rate)


def _open_raw(given, datatype, sample_rate):
    if datatype is None:
        datatype = _RAW_DEFAULT_DATATYPE.get(Path(given).suffix.lower())
    if datatype is None:
        raise RecordingError(
            f"{given}: raw capture: datatype (sample format) not given; expected a SigMF datatype "
            f"such as cf32_le, ci16_le, ci8 or cu8, found none: give --format"
        )
    component = _component_dtype(datatype, given, flag_hint=" (check --format)")
    if sample_rate is None:
        raise RecordingError(f"{given}: raw capture: sample_rate not given; expected Hz > 0, found none: give --rate")
    _check_rate(sample_rate, given, "sample_rate", " (check --rate)")
    sample_size = 2 * component.itemsize
    size = os.path.getsize(given)
    if size % sample_size:
        raise RecordingError(
            f"{given}: file size {size} bytes is not a whole number of {sample_size}-byte {datatype} "
            f"samples ({size % sample_size} bytes left over: a truncated capture, or the wrong --format)"
        )

    def reader(start, count):
        return _scale_components(np.fromfile(given, dtype=component, count=2 * count, offset=start * sample_size))

    return Recording(given, given, None, datatype, sample_rate, size // sample_size, reader)


def _check_rate(value, source, fieldname, hint=""):
    number = (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, number) or not np.isfinite(value) or value <= 0:
        raise RecordingError(f"{source}: {fieldname} should be a number of Hz > 0, found {value!r}{hint}")


def _open_sigmf(given, datatype, sample_rate, require_rate=True):
    meta_path = get_sigmf_filenames(given)["meta_fn"]
    meta = str(meta_path)
    if not meta_path.is_file():
        raise RecordingError(f"{given}: SigMF metadata file {meta} does not exist")
    try:
        with open(meta_path, encoding="utf-8") as fp:
            metadata = json.load(fp)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RecordingError(f"{meta}: not valid JSON ({err})") from None
    glob = metadata.get("global") if isinstance(metadata, dict) else None
    if not isinstance(glob, dict):
        raise RecordingError(f"{meta}: 'global' should be a JSON object, found {type(glob).__name__}")
    found_type, component, rate = _check_global(glob, meta, datatype, sample_rate, require_rate)
    captures = _json_list(metadata, "captures", meta)
    annotations = _json_list(metadata, "annotations", meta)
    offset = glob.get("core:offset", 0) or 0
    if not _is_int(offset) or offset < 0:
        raise RecordingError(f"{meta}: core:offset should be an integer >= 0, found {offset!r}")
    # sigmf indexes these fields while opening and would fail with a bare KeyError or, for a
    # truncated fixed-point file, a reshape error: check them first. The annotations' end-of-data
    # checks wait for the sample count.
    _segments(annotations, offset, None, meta)
    data_path = _data_file(meta_path, metadata)
    n_samples, header = _sample_count(data_path, captures, glob, meta, found_type, 2 * component.itemsize)

    try:
        with warnings.catch_warnings():
            for message in _SIGMF_WARNINGS_WE_CHECK:
                warnings.filterwarnings("ignore", message=message)
            sf = fromfile(meta, skip_checksum=True, autoscale=True)
    except (SigMFError, OSError, ValueError, KeyError, TypeError) as err:
        raise RecordingError(f"{meta}: sigmf cannot open it ({type(err).__name__}: {err})") from None
    if str(sf.data_file) != data_path or int(getattr(sf, "data_offset", 0) or 0) != header:
        # Only if a sigmf release resolves data files differently: the sizes above would be wrong.
        raise RecordingError(
            f"{meta}: sigmf reads {sf.data_file} from byte {getattr(sf, 'data_offset', 0)}, "
            f"expected {data_path} from byte {header}"
        )
    frequency = captures[0].get("core:frequency") if captures else None
    segments = _segments(annotations, offset, n_samples, meta)
    return Recording(
        given, data_path, meta, found_type, float(rate), n_samples,
        lambda start, count: sf.read_samples(start, count),
        center_frequency=frequency, annotations=segments, global_info=glob,
    )


def _check_global(glob, meta, datatype, sample_rate, require_rate=True):
    """(datatype, component dtype, sample rate) from the global object, checked against flags."""
    found_type = glob.get("core:datatype")
    if found_type is None:
        raise RecordingError(f"{meta}: core:datatype is missing (expected one of {', '.join(SUPPORTED_DATATYPES)})")
    component = _component_dtype(found_type, f"{meta}: core:datatype")
    if datatype is not None and datatype != found_type:
        raise RecordingError(f"{meta}: core:datatype is {found_type!r} but --format gave {datatype!r}")
    channels = glob.get("core:num_channels", 1)
    if channels != 1:
        raise RecordingError(f"{meta}: core:num_channels is {channels!r}; expected 1 (single-channel recordings only)")
    rate = glob.get("core:sample_rate")
    if rate is None:  # optional in SigMF
        if sample_rate is not None:
            _check_rate(sample_rate, meta, "sample_rate", " (check --rate)")
            return found_type, component, sample_rate
        if not require_rate:
            return found_type, component, float("nan")
        raise RecordingError(f"{meta}: core:sample_rate is missing (optional in SigMF, but needed for times and "
                             f"resampling); expected Hz > 0: give it with --rate")
    _check_rate(rate, meta, "core:sample_rate")
    if sample_rate is not None and float(sample_rate) != float(rate):
        raise RecordingError(f"{meta}: core:sample_rate is {rate!r} Hz but --rate gave {sample_rate!r}")
    if glob.get("core:metadata_only"):
        raise RecordingError(f"{meta}: core:metadata_only is true; expected a recording with samples")
    return found_type, component, rate


def _json_list(metadata, key, meta):
    value = metadata.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise RecordingError(f"{meta}: '{key}' should be a JSON list of objects, found {value!r:.80}")
    return value


def _data_file(meta_path, metadata):
    """The data file sigmf will read: ``core:dataset`` (non-conforming) or <base>.sigmf-data."""
    dataset = metadata["global"].get("core:dataset")
    if dataset is not None and not (meta_path.parent / str(dataset)).is_file():
        raise RecordingError(
            f"{meta_path}: core:dataset names {dataset!r}, but {meta_path.parent / str(dataset)} does not exist"
        )
    try:
        with warnings.catch_warnings():
            # sigmf warns when both core:dataset and <base>.sigmf-data exist; core:dataset wins,
            # as open_recording documents.
            warnings.simplefilter("ignore")
            found = get_dataset_filename_from_metadata(meta_path, metadata)
    except SigMFError as err:
        raise RecordingError(f"{meta_path}: core:dataset: {err}") from None
    if found is None:
        expected = get_sigmf_filenames(meta_path)["data_fn"]
        raise RecordingError(f"{meta_path}: data file {expected} does not exist")
    return str(found)


def _sample_count(data_path, captures, glob, meta, datatype, sample_size):
    """(whole samples, header bytes skipped) in the data file, as sigmf will read it."""
    headers = [c.get("core:header_bytes", 0) or 0 for c in captures]
    trailing = glob.get("core:trailing_bytes", 0) or 0
    for value, name in [(h, "core:header_bytes") for h in headers] + [(trailing, "core:trailing_bytes")]:
        if not _is_int(value) or value < 0:
            raise RecordingError(f"{meta}: {name} should be an integer >= 0, found {value!r}")
    # sigmf skips only the first capture's header bytes, and only for a core:dataset file;
    # any other header bytes would be read as samples.
    header = headers[0] if headers and glob.get("core:dataset") is not None else 0
    if sum(headers) != header:
        raise RecordingError(
            f"{meta}: core:header_bytes: expected header bytes only in the first capture of a "
            f"non-conforming dataset (core:dataset); found {headers}"
        )
    size = os.path.getsize(data_path)
    sample_bytes = size - header - trailing
    if sample_bytes < 0 or sample_bytes % sample_size:
        raise RecordingError(
            f"{data_path}: data file size {size} bytes (less {header} header and {trailing} trailing "
            f"bytes) is not a whole number of {sample_size}-byte samples (core:datatype {datatype} "
            f"in {meta}): the file is truncated"
        )
    return sample_bytes // sample_size, header


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _segments(annotations, offset, n_samples, meta):
    """Labelled annotations -> Segments in data-file sample indices, validated.

    SigMF sample indices are absolute (``core:offset`` is the dataset's first), so the offset is
    subtracted. Unlabelled annotations are checked the same way but not returned. With
    ``n_samples`` None only the fields are checked, not the end of the data.
    """
    segments = []
    for i, ann in enumerate(annotations):
        where = f"{meta}: annotation {i}"
        if not isinstance(ann, dict):
            raise RecordingError(f"{where}: should be a JSON object, found {type(ann).__name__}")
        start = ann.get("core:sample_start")
        if not _is_int(start):
            raise RecordingError(f"{where}: core:sample_start should be an integer, found {start!r}")
        start = int(start) - int(offset)
        if start < 0:
            raise RecordingError(
                f"{where}: core:sample_start is {start + offset} (relative to core:offset {offset}: "
                f"{start}); expected >= 0"
            )
        label = ann.get("core:label")
        count = ann.get("core:sample_count")
        if count is None and label is not None:
            raise RecordingError(f"{where}: core:sample_count is missing; a labelled annotation needs it")
        if count is not None:
            if not _is_int(count) or count <= 0:
                raise RecordingError(f"{where}: core:sample_count should be an integer > 0, found {count!r}")
            if n_samples is not None and start + count > n_samples:
                raise RecordingError(
                    f"{where}: core:sample_start {start} + core:sample_count {count} = {start + count} "
                    f"runs past the end of the data ({n_samples} samples)"
                )
        elif n_samples is not None and start > n_samples:
            raise RecordingError(
                f"{where}: core:sample_start {start} is past the end of the data ({n_samples} samples)"
            )
        if label is None:
            continue
        if not isinstance(label, str) or not label:
            raise RecordingError(f"{where}: core:label should be a non-empty string, found {label!r}")
        segments.append(Segment(start, int(count), label, i))
    return segments


def frames_from_segments(recording, frame_len, hop=None, classes=None):
    """Cut every labelled segment into whole frames in the model contract's layout.

    ``frame_len`` and ``hop`` (default ``frame_len``) are in samples; a segment shorter than one
    frame gives none. Returns ``(x, labels, starts)``: ``x`` float32 (N, 2, frame_len) with row 0
    = I and row 1 = Q; ``labels`` a list of N label strings, or int64 (N,) indices into
    ``classes`` when ``classes`` (a sequence of class names) is given; ``starts`` int64 (N,), each
    frame's first sample in the recording.

    Raises RecordingError when the recording has no labelled annotation, when none is long enough
    for a frame (naming the longest), or when a label is not in ``classes`` (naming the label,
    the annotation index and the classes); ValueError for a bad frame_len or hop.
    """
    hop = frame_len if hop is None else hop
    frame_starts(0, frame_len, hop)  # validates both, with the framer's messages
    source = recording.meta_path or recording.data_path
    segments = recording.annotations
    if not segments:
        raise RecordingError(f"{source}: annotations: no annotation carries core:label; expected labelled segments")
    if classes is not None:
        if isinstance(classes, str):
            raise ValueError(f"classes should be a sequence of class names, not the string {classes!r}")
        classes = list(classes)
        for seg in segments:
            if seg.label not in classes:
                raise RecordingError(
                    f"{source}: annotation {seg.index}: core:label {seg.label!r} is not a model class; "
                    f"expected one of {classes}"
                )

    xs, labels, starts = [], [], []
    for seg in segments:
        rel = frame_starts(seg.count, frame_len, hop)
        if rel.shape[0] == 0:
            continue
        # Read only the span the frames cover (it differs from the segment when hop > frame_len
        # or the segment is not a whole number of hops).
        span = recording.read(seg.start, int(rel[-1]) + frame_len)
        frames = span[rel[:, None] + np.arange(frame_len)[None, :]]
        xs.append(complex_to_iq(frames))
        starts.append(seg.start + rel)
        labels += [seg.label] * rel.shape[0]
    if not xs:
        longest = max(segments, key=lambda s: s.count)
        raise RecordingError(
            f"{source}: annotations: no annotation long enough for one frame of {frame_len} samples; "
            f"the longest labelled one (annotation {longest.index}) has core:sample_count {longest.count}"
        )
    if classes is not None:
        labels = np.array([classes.index(label) for label in labels], dtype=np.int64)
    return np.concatenate(xs), labels, np.concatenate(starts).astype(np.int64)
