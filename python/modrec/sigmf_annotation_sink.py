"""A sink that turns the classifier's stream tags into a SigMF metadata file with annotations."""

import dataclasses
import math
import os
import tempfile

import numpy as np
import pmt
from gnuradio import gr

from .runtime.annotations import (
    Decision,
    check_meta_path,
    check_not_foreign,
    dataset_name,
    merge_decisions,
    write_annotations,
)
from .keepalive import flowgraph_owned
from .pmt_values import pmt_int, pmt_real
from .runtime.recording import SUPPORTED_DATATYPES

_FIELDS = ("class", "frame_len", "confidence")


class sigmf_annotation_sink(flowgraph_owned, gr.sync_block):
    """Writes the classifier's decisions on a complex64 stream as SigMF annotations.

    Input: one complex64 stream, normally the output of ``modrec.classifier``. Every sample is
    consumed (sample counts, from 0 at start, are the annotated recording's sample indices).
    Each work() reads the tags with key ``tag_key`` in its window; a tag becomes a
    :class:`~gnuradio.modrec.runtime.annotations.Decision`: start = the tag's offset (samples),
    length = ``frame_len`` (samples), label = ``class``, confidence = ``confidence``. A tag whose
    value is not a dict holding ``class`` (symbol or string), ``frame_len`` (integer >= 1) and
    ``confidence`` (finite number in [0, 1]) is skipped and counted (``skipped_tags``); the first
    such tag of a run logs a warning. A broken model's NaN confidence is skipped that way too.

    When the flowgraph stops (the end of a finite stream, or tb.stop()), stop() merges
    consecutive frames of one class (``merge_decisions`` with max_gap 0: back-to-back or
    overlapping frames merge, a gap or another class starts a new annotation; ``unknown``
    segments are kept) and writes ``meta_path`` with ``write_annotations``: global
    ``core:sample_rate`` = sample_rate (Hz), ``core:datatype`` = datatype, the ``modrec``
    extension declared in ``core:extensions``; one capture at sample 0 (with ``core:frequency`` =
    center_frequency in Hz unless it is 0, which leaves the frequency out as unknown); one
    annotation per segment with ``core:sample_start``/``core:sample_count`` (samples),
    ``core:label`` (the class), ``modrec:confidence`` (mean over the frames), ``modrec:frames``
    and, when model_name is not empty, ``modrec:model``. The write is atomic (temporary file +
    os.replace); an existing meta_path is replaced. Each start() begins a new recording:
    after stop(), a start() (a new tb.start(), or tb.lock()/unlock(), which restarts item
    counters at 0 in GNU Radio 3.10) clears the collected decisions and the next stop() writes
    the file anew, describing only that run.

    data_path: optional, the file the same samples are written to (e.g. by a File Sink), in
    meta_path's directory; a name other than ``<base>.sigmf-data`` is named in ``core:dataset``
    (a SigMF Non-Conforming Dataset). This block never opens it.

    Raises ValueError from the constructor for: meta_path empty or not ``*.sigmf-meta``,
    sample_rate not > 0, tag_key empty, datatype empty, center_frequency not finite, a data_path
    outside meta_path's directory; OSError when meta_path's directory does not exist or is not
    writable (checked by creating and removing a temporary file there). A failed write in
    stop() is logged, kept in ``last_error``, and stop() returns False.
    """

    def __init__(
        self,
        meta_path,
        sample_rate,
        tag_key="modrec",
        data_path="",
        datatype="cf32_le",
        center_frequency=0.0,
        model_name="",
    ):
        if not meta_path:
            raise ValueError(f"meta_path: expected a non-empty path ending in .sigmf-meta, got {meta_path!r}")
        meta = check_meta_path(meta_path)
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)):
            raise ValueError(f"sample_rate: expected a number > 0 (Hz), got {sample_rate!r}")
        if not (math.isfinite(float(sample_rate)) and float(sample_rate) > 0):
            raise ValueError(f"sample_rate: expected a finite number > 0 (Hz), got {sample_rate!r}")
        if not isinstance(tag_key, str) or not tag_key.strip():
            raise ValueError(f"tag_key: expected a non-blank string, got {tag_key!r}")
        if datatype not in SUPPORTED_DATATYPES:
            raise ValueError(f"datatype: expected a complex SigMF core:datatype, one of {', '.join(SUPPORTED_DATATYPES)} "
                             f"(a File Sink of complex samples writes cf32_le), got {datatype!r}")
        if isinstance(center_frequency, bool) or not isinstance(center_frequency, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(center_frequency)):
            raise ValueError(f"center_frequency: expected a finite number (Hz), got {center_frequency!r}")
        if model_name is None:
            model_name = ""
        if not isinstance(model_name, str):
            raise ValueError(f"model_name: expected a string, got {model_name!r}")
        if data_path is None:
            data_path = ""
        if not isinstance(data_path, (str, os.PathLike)):
            raise ValueError(f"data_path: expected a path or empty, got {data_path!r}")
        data_path = os.fspath(data_path)
        if data_path:
            # Same-directory and not-the-metadata checks, with the error write_annotations would give.
            dataset_name(meta, data_path)
        check_not_foreign(meta)
        _check_writable(meta)
        try:
            import sigmf  # noqa: F401  (fail now, not when the flowgraph stops)
        except ImportError as exc:
            raise ImportError(f"sigmf_annotation_sink needs the 'sigmf' package (requirements/runtime.txt): {exc}") from exc

        gr.sync_block.__init__(self, name="modrec_sigmf_annotation_sink", in_sig=[np.complex64], out_sig=None)
        self.meta_path = str(meta)
        self.sample_rate = float(sample_rate)
        self.tag_key = tag_key
        self.data_path = data_path
        self.datatype = datatype
        self.center_frequency = float(center_frequency)
        self.model_name = model_name
        self._key = pmt.intern(tag_key)
        self._fields = {name: pmt.intern(name) for name in _FIELDS}
        self._log = gr.logger("modrec_sigmf_annotation_sink")
        self.last_error = None
        self.writes = 0  # files written so far (one per stop() after a start())
        self._reset()

    def _reset(self):
        self._decisions = []
        self._samples = 0
        self._skipped = 0
        self._warned = False

    @property
    def decisions(self):
        """The decisions collected since the last start(), in arrival order (list of Decision)."""
        return list(self._decisions)

    @property
    def samples_seen(self):
        """Samples consumed since the last start() (the annotated recording's length)."""
        return self._samples

    @property
    def skipped_tags(self):
        """Tags with our key skipped since the last start() because their value was malformed."""
        return self._skipped

    def start(self):
        # Every start begins a recording at item 0 (GNU Radio 3.10 restarts offsets on
        # lock()/unlock() too): decisions from a previous run would point at the wrong samples.
        self._reset()
        return True

    def work(self, input_items, output_items):
        n = len(input_items[0])
        if n:
            for tag in self.get_tags_in_window(0, 0, n, self._key):
                decision = self._decision(tag.offset, tag.value)
                if decision is not None:
                    self._decisions.append(decision)
        self._samples = self.nitems_read(0) + n
        return n

    def _decision(self, offset, value):
        try:
            if not pmt.is_dict(value) or pmt.is_null(value):
                raise ValueError("not a dict")
            f = self._fields
            label = pmt.dict_ref(value, f["class"], pmt.PMT_NIL)
            if pmt.is_symbol(label) and not pmt.is_null(label) and not pmt.is_bool(label):
                label = pmt.symbol_to_string(label)
            else:
                raise ValueError("class is not a symbol")
            frame_len = _frame_len(pmt.dict_ref(value, f["frame_len"], pmt.PMT_NIL))
            confidence = pmt_real(pmt.dict_ref(value, f["confidence"], pmt.PMT_NIL))
            if confidence is None:
                raise ValueError("confidence is not a number")
            return Decision(start=int(offset), length=frame_len, label=label, confidence=confidence)
        except (ValueError, TypeError, RuntimeError) as exc:
            self._skipped += 1
            if not self._warned:
                self._warned = True
                self._log.warn(
                    f"{self.meta_path}: skipping tag '{self.tag_key}' at sample {offset}: expected a dict with "
                    f"class (symbol), frame_len (integer >= 1), confidence (number in [0, 1]) as "
                    f"modrec.classifier writes, found {pmt.write_string(value)[:200]} ({exc}); further "
                    f"malformed tags are counted in skipped_tags"
                )
            return None

    def stop(self):
        # A resampled frame may span past the last sample (the resampler pads the end with zeros):
        # an annotation ends with the recording.
        decisions = [d if d.end <= self._samples else dataclasses.replace(d, length=self._samples - d.start)
                     for d in self._decisions if d.start < self._samples]
        segments = merge_decisions(decisions, max_gap=0)
        try:
            write_annotations(
                self.meta_path,
                segments,
                self.sample_rate,
                self.model_name,
                data_path=self.data_path or None,
                datatype=self.datatype,
                center_frequency=self.center_frequency if self.center_frequency != 0.0 else None,
            )
        except Exception as exc:  # never let an exception escape into the scheduler thread
            self.last_error = exc
            self._log.error(f"{self.meta_path}: writing the SigMF annotations failed: {exc}")
            return False
        self.last_error = None
        self.writes += 1
        if self._skipped:
            self._log.warn(f"{self.meta_path}: {self._skipped} malformed '{self.tag_key}' tags were skipped")
        return True


def _frame_len(value):
    number = pmt_int(value)
    if number is None:
        raise ValueError("frame_len is not an integer")
    if number < 1:
        raise ValueError(f"frame_len {number} < 1")
    return number


def _check_writable(meta):
    directory = meta.parent if str(meta.parent) else "."
    if not os.path.isdir(directory):
        raise OSError(f"meta_path: directory {str(directory)!r} of {str(meta)!r} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{meta.name}.", suffix=".probe", dir=directory)
    except OSError as exc:
        raise OSError(f"meta_path: directory {str(directory)!r} of {str(meta)!r} is not writable: {exc}") from exc
    os.close(fd)
    os.unlink(probe)
