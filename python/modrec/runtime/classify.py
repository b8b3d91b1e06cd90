"""``modrec classify``: what is in this capture? A model run over a whole recording.

The recording is read in bounded chunks (``Recording.iter_chunks``) and framed by the classifier
block's own framer, which resamples to the model's samples per symbol when the symbol rate is
given (``framing.ResampledFramer``); frames start at 0, hop, 2*hop, ... at the model's rate and
are classified in batches. Per-frame
results are kept as compact arrays (37 bytes a frame, not one Python object each) and
merged into segments batch by batch, so memory stays bounded by the chunk size, not the file.

numpy, onnxruntime, sigmf and tqdm only (matplotlib lazily, for the timeline plot); no torch.
"""

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import contract
from .annotations import META_EXT, Decision, merge_decisions, write_annotations
from .decisions import MODEL_RULE, check_min_confidence, classify_frames, decision_labels
from .framing import ResampledFramer, StreamFramer
from .load import load_model
from .onnx_model import resolve_model
from .oversampling import OversamplingMonitor
from .recording import open_recording
from .resample import resample_ratio_for

OUTPUT_TAG = ".modrec"  # default outputs: <base>.modrec.sigmf-meta and <base>.modrec.png


@dataclass
class RecordingClassification:
    """What ``classify_recording`` found.

    recording: the opened ``recording.Recording``. model_path (str), model_name (the file's
    stem, written as ``modrec:model``), architecture (metadata), classes (tuple of str).
    frame_len, hop: samples at the model's rate (after resampling). model_samples_per_symbol:
    the metadata's ``samples_per_symbol``. symbol_rate: Hz or None. resample: ``(up, down)``,
    ``(1, 1)`` when the samples were not resampled. min_confidence: the rejection threshold
    (decisions.MODEL_RULE: the model's own). labels_by_index: the label of each class index
    (the noise class as ``noise``) and ``unknown`` last, so index -1 names it.

    Per frame, in start order, offsets IN INPUT SAMPLES of the recording:
    ``starts`` int64 (N,), ``lengths`` int64 (N,), ``class_index`` int64 (N,) (index into
    ``classes``; -1 for ``unknown``), ``confidence`` float32 (N,) (top probability in [0, 1];
    0 for a frame holding NaN/Inf), ``snr_db`` float32 (N,) (the model's SNR estimate, dB; NaN
    when it has none), ``sps_estimate`` float32 (N,) and ``sps_mismatch`` bool (N,) (the
    stream's estimated samples per symbol where the frame ends, NaN when none, and whether it
    is far from the model's: ``oversampling.OversamplingMonitor``; NaN and False throughout
    when the check is off). ``segments``: list of ``annotations.Segment`` (input
    samples), as ``merge_decisions(self.decisions)``. elapsed_s: wall time of the run (s).
    chunk_samples: the read size used, which ``write_outputs`` reuses for the plot's pass.
    """

    recording: object
    model_path: str
    model_name: str
    architecture: str
    classes: tuple
    frame_len: int
    hop: int
    model_samples_per_symbol: int
    symbol_rate: object
    resample: tuple
    min_confidence: float
    labels_by_index: tuple
    starts: np.ndarray
    lengths: np.ndarray
    class_index: np.ndarray
    confidence: np.ndarray
    snr_db: np.ndarray
    sps_estimate: np.ndarray
    sps_mismatch: np.ndarray
    segments: list = field(default_factory=list)
    elapsed_s: float = 0.0
    chunk_samples: int = 1 << 20

    @property
    def sample_rate(self):
        """The recording's sample rate, Hz (float)."""
        return self.recording.sample_rate

    @property
    def n_frames(self):
        """Number of frames classified (int)."""
        return int(self.starts.shape[0])

    @property
    def frames_per_s(self):
        """Frames classified per second of wall time (float; nan when no time passed)."""
        return self.n_frames / self.elapsed_s if self.elapsed_s > 0 else math.nan

    @property
    def labels(self):
        """Per-frame class names (list of str; ``unknown`` for rejected frames)."""
        return [self.labels_by_index[i] for i in self.class_index.tolist()]

    @property
    def decisions(self):
        """Per-frame ``annotations.Decision`` list, built on demand (one object per frame)."""
        return _decisions(self.labels_by_index, self.starts, self.lengths, self.class_index, self.confidence)


def _decisions(names, starts, lengths, class_index, confidence):
    return [
        Decision(s, n, names[i], c)
        for s, n, i, c in zip(starts.tolist(), lengths.tolist(), class_index.tolist(), confidence.tolist())
    ]


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def classify_recording(path, model_path=None, datatype=None, sample_rate=None, symbol_rate=None, hop=None,
                       min_confidence=MODEL_RULE, threads=1, batch_frames=1024, chunk_samples=1 << 20, progress=True,
                       check_oversampling=True):
    """Classify every frame of a recording and merge the frames into class segments.

    path: a SigMF recording (``.sigmf-meta``, ``.sigmf-data`` or their base) or a raw I/Q file;
    datatype (SigMF name, e.g. ``cf32_le``, ``ci16_le``, ``ci8``, ``cu8``) and sample_rate (Hz)
    describe a raw file and must agree with SigMF metadata (see ``recording.open_recording``).
    model_path: a contract ``.onnx`` or a shipped model's name (``onnx_model.resolve_model``; default
    the shipped default model); threads: onnxruntime intra-op threads.

    The model expects signals at its metadata's ``samples_per_symbol`` (8 for the shipped
    models). With ``symbol_rate`` (Hz) the samples are resampled by ``resample_ratio_for(
    sample_rate, symbol_rate, samples_per_symbol)`` before framing; without it they are framed
    as they are, and a capture at another oversampling is classified less reliably.

    Frames of ``frame_len`` samples (metadata) start at 0, hop, 2*hop, ... samples at the model's
    rate (``hop`` default ``frame_len``; smaller overlaps frames, larger leaves gaps); a trailing
    partial frame is not classified. Framing and resampling are the classifier block's own
    (``framing.StreamFramer`` / ``framing.ResampledFramer``): a resampled frame starting at
    model-rate sample s starts at input sample ``floor(s * down / up)`` and spans
    ``ceil(frame_len * down / up)`` input samples. As in the classifier block, a frame whose top probability is below
    ``min_confidence`` (in [0, 1]) is ``unknown`` (its confidence kept), and a frame holding
    NaN/Inf samples is not run through the model: ``unknown`` with confidence 0. With
    ``check_oversampling`` the samples per symbol of the framed stream is estimated as the
    classifier block does (``oversampling.OversamplingMonitor``), and a frame where it is far
    from the model's is ``unknown``.

    Memory is bounded: ``chunk_samples`` input samples are read at a time (the peak is about
    2-3 times their complex64 size), at most ``batch_frames`` frames go to the model per call,
    and each frame's result takes 37 bytes. progress: a tqdm bar on stderr.

    Returns a RecordingClassification. Raises RecordingError (a ValueError) for a recording that
    cannot be read, ContractError (a ValueError) for a model that breaks the contract,
    FileNotFoundError for a missing model, ValueError for bad arguments.
    """
    began = time.perf_counter()
    hop = None if hop is None else _check_int("hop", hop, 0)
    min_confidence = check_min_confidence(min_confidence)
    threads = _check_int("threads", threads, 1)
    batch_frames = _check_int("batch_frames", batch_frames, 1)
    chunk_samples = _check_int("chunk_samples", chunk_samples, 1)

    recording = open_recording(path, datatype=datatype, sample_rate=sample_rate)
    model_path = resolve_model(model_path)
    model = load_model(model_path, threads=threads)
    frame_len = model.frame_len
    hop = hop or frame_len  # None or 0: back-to-back frames, as in the classifier block
    up, down = (1, 1)
    if symbol_rate is not None:
        up, down = resample_ratio_for(recording.sample_rate, symbol_rate, model.samples_per_symbol)

    # The classifier block's own framer: the command line and a flowgraph cut (and resample) a
    # recording identically, so they give the same decisions at the same offsets.
    if (up, down) == (1, 1):
        framer = StreamFramer(frame_len, hop)
    else:
        framer = ResampledFramer(frame_len, hop, up, down)

    from tqdm import tqdm

    monitor = (OversamplingMonitor(model.samples_per_symbol, frame_len, hop, interpolated_by=up)
               if check_oversampling else None)
    arrays = {"starts": [], "lengths": [], "class_index": [], "confidence": [], "snr_db": [], "sps_estimate": [],
              "sps_mismatch": []}
    labels = tuple(decision_labels(model))
    merger = _SegmentMerger()

    def classify(starts, frames):
        for s in range(0, len(starts), batch_frames):
            in_start = starts[s : s + batch_frames]
            if monitor is not None:
                estimate, mismatch = monitor.judge(len(in_start))
            else:
                estimate, mismatch = np.full(len(in_start), np.nan, np.float32), np.zeros(len(in_start), bool)
            index, confidence, snr = _classify(model, frames[s : s + batch_frames], min_confidence, mismatch)
            # a resampled frame's span may reach past the last sample (resample_poly pads with zeros)
            in_len = np.minimum(framer.frame_span, recording.n_samples - in_start).astype(np.int64)
            for key, value in (("starts", in_start), ("lengths", in_len), ("class_index", index),
                               ("confidence", confidence), ("snr_db", snr), ("sps_estimate", estimate),
                               ("sps_mismatch", mismatch)):
                arrays[key].append(value)
            merger.add(_decisions(labels, in_start, in_len, index, confidence))

    with tqdm(total=recording.n_samples, unit="S", unit_scale=True, desc=f"classify {Path(recording.path).name}",
              file=sys.stderr, disable=not progress, leave=False) as bar:
        for _, chunk in recording.iter_chunks(chunk_samples):
            framed = framer.push(chunk)
            if monitor is not None:
                monitor.observe(framed)
            classify(*framer.take_complete())
            framer.pop(framer.releasable() - framer.start)  # what no later frame needs
            bar.update(chunk.shape[0])
            del chunk, framed  # not alive during the next read
        classify(*framer.finish())

    def joined(key, dtype):
        return np.concatenate(arrays[key]).astype(dtype, copy=False) if arrays[key] else np.zeros(0, dtype)

    return RecordingClassification(
        recording=recording, model_path=model_path, model_name=Path(model_path).stem,
        architecture=str(model.metadata.get(contract.ARCHITECTURE, "")), classes=tuple(model.classes),
        frame_len=frame_len, hop=hop, model_samples_per_symbol=model.samples_per_symbol,
        symbol_rate=None if symbol_rate is None else float(symbol_rate), resample=(up, down),
        min_confidence=min_confidence, labels_by_index=labels, starts=joined("starts", np.int64),
        lengths=joined("lengths", np.int64), class_index=joined("class_index", np.int64),
        confidence=joined("confidence", np.float32), snr_db=joined("snr_db", np.float32),
        sps_estimate=joined("sps_estimate", np.float32), sps_mismatch=joined("sps_mismatch", bool),
        segments=merger.finish(), elapsed_s=time.perf_counter() - began, chunk_samples=chunk_samples,
    )


def _classify(model, frames, min_confidence, wrong_oversampling):
    """(class index int64 (K,), -1 = unknown; confidence float32 (K,); SNR estimate float32 (K,),
    NaN where none) as the classifier block says."""
    decided = classify_frames(model, frames, min_confidence, wrong_oversampling)
    # Decision needs a finite confidence in [0, 1]: a broken model's NaN becomes 0 (its frame is
    # unknown already) and float32 rounding above 1 becomes 1.
    confidence = np.where(np.isfinite(decided.confidence), np.clip(decided.confidence, 0.0, 1.0), 0.0)
    return decided.index, confidence.astype(np.float32), decided.snr_db


class _SegmentMerger:
    """``merge_decisions`` over batches of in-order frames, holding only the open segment.

    Each batch is merged by merge_decisions; its first segment joins the previous batch's last
    one under merge_decisions' rule (same label, starts at or before its end). That equals
    merging everything at once because frame ends never decrease along the frames.
    """

    def __init__(self):
        self._done = []
        self._open = None

    def add(self, decisions):
        segments = merge_decisions(decisions)
        if not segments:
            return
        head = segments[0]
        prev = self._open
        if prev is not None and head.label == prev.label and head.start <= prev.end:
            frames = prev.frames + head.frames
            segments[0] = replace(
                prev, count=max(prev.end, head.end) - prev.start, frames=frames,
                mean_confidence=(prev.mean_confidence * prev.frames + head.mean_confidence * head.frames) / frames,
            )
        elif prev is not None:
            self._done.append(prev)
        self._done.extend(segments[:-1])
        self._open = segments[-1]

    def finish(self):
        return self._done + ([self._open] if self._open is not None else [])


def format_segments(result):
    """The segments as a text table: start (s), duration (s), class, mean confidence, frames.

    Times are input samples / the recording's sample rate (Hz). Returns a str (no trailing
    newline); a note instead of rows when the recording holds no complete frame.
    """
    rate = result.sample_rate
    if not result.segments:
        return (f"no complete frame: the recording has {result.recording.n_samples} samples, a frame needs "
                f"{result.frame_len} at the model's rate")
    rows = [(f"{s.start / rate:.6f}", f"{s.count / rate:.6f}", s.label, f"{s.mean_confidence:.3f}", str(s.frames))
            for s in result.segments]
    return _text_table(("start (s)", "duration (s)", "class", "confidence", "frames"), rows, left=(2,))


def format_class_shares(result):
    """What the recording holds, per decision label: its share of the frames, the frames, the
    time its segments span (s: their samples / the sample rate), the mean confidence. Most frames
    first. A str
    (no trailing newline); empty when no frame was classified. The segment table can run to
    thousands of rows on a long capture; this is the summary a reader looks for first."""
    if not result.segments:
        return ""
    frames, samples, confidence = {}, {}, {}
    for seg in result.segments:
        frames[seg.label] = frames.get(seg.label, 0) + seg.frames
        samples[seg.label] = samples.get(seg.label, 0) + seg.count
        confidence[seg.label] = confidence.get(seg.label, 0.0) + seg.mean_confidence * seg.frames
    total = sum(frames.values())
    rows = [(label, f"{100.0 * n / total:.1f} %", str(n), f"{samples[label] / result.sample_rate:.3f}",
             f"{confidence[label] / n:.3f}")
            for label, n in sorted(frames.items(), key=lambda item: (-item[1], item[0]))]
    return _text_table(("class", "share", "frames", "time (s)", "confidence"), rows, left=(0,))


def _text_table(header, rows, left):
    """Plain-text table of str cells: columns as wide as their widest cell, the ``left`` ones
    left-aligned (text) and the rest right-aligned (numbers), a dashed rule under the header."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    align = [str.ljust if i in left else str.rjust for i in range(len(header))]
    lines = ["  ".join(a(c, w) for a, c, w in zip(align, row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def default_output_base(recording):
    """``<base>.modrec`` beside the recording (a str without extension).

    SigMF: ``<base>`` is the recording's own base name (``foo.sigmf-meta`` -> ``foo.modrec``);
    raw: the data file's full name (``cap.ci16`` -> ``cap.ci16.modrec``), so two captures that
    differ only in extension do not share outputs.
    """
    if recording.meta_path is not None:
        return recording.meta_path[: -len(META_EXT)] + OUTPUT_TAG
    return recording.data_path + OUTPUT_TAG


def write_outputs(result, meta_out=None, plot=None):
    """Write the segments as SigMF annotations and (unless ``plot`` is False) a timeline PNG.

    meta_out: a ``.sigmf-meta`` path; default ``<base>.modrec.sigmf-meta`` beside the recording
    (``default_output_base``). A separate file because the recording's own ``.sigmf-meta`` and
    data file are never touched (its annotations, checksums and tools stay as they were), yet it
    is a complete SigMF recording of its own: its global object is the recording's (SigMF) or
    datatype + sample rate (raw), its captures are copied, and it names the recording's data file
    in ``core:dataset`` (a SigMF Non-Conforming Dataset), so sigmf opens it with the samples.
    That needs the same directory as the data file; elsewhere the file carries no
    ``core:dataset`` and is metadata only. Annotation starts are absolute SigMF indices (the
    recording's ``core:offset`` added).

    plot: a PNG path, default ``<base>.modrec.png``; False for none. See ``timeline.plot_timeline``.

    Returns ``{"meta": Path, "plot": Path or None}``. Raises ValueError when meta_out is not a
    ``<name>.sigmf-meta`` or is the recording's own metadata file, or when sigmf rejects the
    metadata; OSError when a file cannot be written.
    """
    recording = result.recording
    base = default_output_base(recording)
    meta_out = Path(base + META_EXT if meta_out is None else os.fspath(meta_out))
    if recording.meta_path is not None and meta_out.resolve() == Path(recording.meta_path).resolve():
        raise ValueError(f"meta_out: {meta_out} is the recording's own metadata file; expected another "
                         f".sigmf-meta (default {base + META_EXT}), the recording is never modified")
    same_dir = meta_out.parent.resolve() == Path(recording.data_path).parent.resolve()
    base_global = dict(recording.global_info) if recording.meta_path is not None else {}
    if not same_dir:
        base_global.pop("core:dataset", None)  # a file name, only meaningful in the data's directory
    offset = int(base_global.get("core:offset", 0) or 0)
    segments = [replace(s, start=s.start + offset) for s in result.segments] if offset else result.segments
    captures = _captures(recording)
    written = write_annotations(
        meta_out, segments, recording.sample_rate, result.model_name,
        data_path=recording.data_path if same_dir else None, datatype=recording.datatype,
        base_global=base_global, captures=captures or None,
    )
    out = {"meta": written, "plot": None}
    if plot is not False:
        from .timeline import plot_timeline

        out["plot"] = plot_timeline(result, base + ".png" if plot is None else plot)
    return out


def _captures(recording):
    """The recording's SigMF captures, as written (open_recording has checked them); [] for raw."""
    if recording.meta_path is None:
        return []
    with open(recording.meta_path, encoding="utf-8") as fp:
        return list(json.load(fp).get("captures", []))

