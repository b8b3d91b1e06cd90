"""The modulation classifier block: a complex64 pass-through that tags every frame it classifies."""

import threading
from collections import deque

import numpy as np
import pmt
from gnuradio import gr

from .classes import UNKNOWN_CLASS
from .keepalive import flowgraph_owned
from .runtime import StreamFramer, load_model, resolve_model
from .runtime.decisions import MODEL_RULE, check_min_confidence, classify_frames, decision_labels
from .runtime.framing import ResampledFramer
from .runtime.oversampling import OversamplingMonitor, SymbolRateLine, estimator_constants
from .runtime.resample import resample_ratio_for

CLASSIFICATION_PORT = "classification"

# The most frames the C++ core gathers into one batch while it is behind the stream (a work()
# call starting within 1 ms of the last one's return; for at most 10 ms: lib/classifier_core_impl.cc).
# A block that keeps up classifies each call's frames (about 32 with GNU Radio's default buffers)
# at once. ONNX Runtime's own frames/s is flat from 16 frames per call up on the AMD machine
# (apps/bench_ort_settings.py), but the per-call costs around it (Python, numpy, pybind11, thread
# switches) are not: measured on one core with the default model (2026-11-30, best of 3), always
# gathering 256 ran 4.6 % faster than gathering none. (The model then runs a batch in slices of
# runtime.onnx_model.RUN_FRAMES: gathering 64 instead ran no faster on the Xeon VM, whose ONNX
# Runtime is fastest at 32-64 frames a call: docs/BENCHMARKS.md.) Gathering whenever the input
# buffer was a quarter full was rejected: a throttled 32 kS/s stream comes in chunks that large
# too, and the demo's live view then repainted twice in 3 s (tests/test_demo.py); so was enlarging
# the input buffer (a history of 32k samples), which made the throttle's bursts as large.
BATCH_FRAMES = 256

# forecast() waits for news from the end-of-stream probe in slices of this length; the wait
# itself only ends on news (new input or end of stream), so correctness never hangs on a timeout.
_PROBE_WAIT_S = 0.2


class _StreamWatch:
    """What the end-of-stream probe has seen of the shared input: item count and whether it ended."""

    def __init__(self):
        self._cond = threading.Condition()
        self.reset()

    def reset(self):
        with self._cond:
            self.seen = 0
            self.ended = False

    def note_seen(self, count):
        with self._cond:
            self.seen = count
            self._cond.notify_all()

    def note_end(self):
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def wait_past(self, offset, timeout):
        """Block until the probe saw more than ``offset`` items or the stream ended."""
        with self._cond:
            self._cond.wait_for(lambda: self.ended or self.seen > offset, timeout)
            return self.ended, self.seen


def compiled_estimate():
    """A new C++ symbol-rate estimator (lib/symbol_rate_estimator.cc, about ten times the numpy
    one's speed) as a function with runtime.oversampling.estimate_samples_per_symbol's signature:
    (samples complex64 (N,), interpolated_by=1) -> SymbolRateLine. It keeps FFT plans and work
    buffers: one per thread (one per block)."""
    from .modrec_python import symbol_rate_estimator

    estimator = symbol_rate_estimator(**estimator_constants())

    def estimate(samples, interpolated_by=1):
        return SymbolRateLine(*estimator.estimate(samples, interpolated_by))

    return estimate


class _EndOfStreamProbe(flowgraph_owned, gr.sync_block):
    """Sink on the classifier's input that reports when the upstream stream has ended.

    GNU Radio gives a Python block no end-of-stream signal, but a sink's stop() runs in its own
    thread right after its input is finished and fully read, which is exactly that signal.
    """

    def __init__(self, watch):
        gr.sync_block.__init__(self, name="modrec_classifier_eos_probe", in_sig=[np.complex64], out_sig=None)
        self._watch = watch

    def start(self):
        self._watch.reset()
        return True

    def work(self, input_items, output_items):
        n = len(input_items[0])
        self._watch.note_seen(self.nitems_read(0) + n)
        return n

    def stop(self):
        self._watch.note_end()
        return True


class _Decider:
    """What both cores ask of Python: a batch of frames' decisions (model, open-set rules, the
    oversampling check) and the oversampling check's view of the framed samples. The Python core
    builds its tags from ``decide``; the C++ core (lib/classifier_core_impl.cc) calls ``classify``
    once per batch and ``observe`` once per chunk, and builds the tags itself."""

    def __init__(self, model, min_confidence, monitor, rates):
        self.model = model
        self.min_confidence = min_confidence
        self._monitor = monitor  # OversamplingMonitor on the framed (model-rate) stream, or None
        self._rates = rates  # (sample_rate, symbol_rate) in Hz as given (0: not given), for the log
        self._warned = False  # a wrong-oversampling warning stands (logged once, until a match)
        self._log = gr.logger("modrec_classifier")
        self.failed_frames = 0  # frames the model raised on (tagged unknown): see decide
        self._failed_calls = 0

    def reset(self):
        """A new run (every start): the oversampling check starts over."""
        if self._monitor is not None:
            self._monitor.reset()
            self._warned = False

    def observe(self, framed):
        """Samples taken in (model rate); None: a new run begins (the C++ core's start)."""
        if framed is None:
            self.reset()
        elif self._monitor is not None and self._monitor.observe(framed):
            self._log_oversampling()

    def _log_oversampling(self):
        """A warning when a mismatch starts, a note when an estimate matches again; windows with no
        line (NaN) change nothing, so the log does not flap with a line at the edge of detection."""
        monitor, model_sps = self._monitor, self.model.samples_per_symbol
        if monitor.mismatch and not self._warned:
            self._warned = True
            sample_rate, symbol_rate = self._rates
            if symbol_rate:
                advice = (f"with the symbol_rate given ({symbol_rate:g} Hz) it should be {model_sps}: the symbol "
                          f"rate looks like {symbol_rate * model_sps / monitor.estimate:g} Hz")
            elif sample_rate:
                advice = (f"give the block symbol_rate (it looks like {sample_rate / monitor.estimate:g} Hz at "
                          f"{sample_rate:g} samples/s) to resample the stream to {model_sps} samples per symbol")
            else:
                advice = f"give the block sample_rate and symbol_rate to resample it to {model_sps} samples per symbol"
            self._log.warn(f"the stream looks like {monitor.estimate:.1f} samples per symbol (a symbol-rate line "
                           f"{monitor.strength:.0f} times its floor), the model expects {model_sps}: frames are "
                           f"tagged '{UNKNOWN_CLASS}' (sps_mismatch) until it matches; {advice}")
        elif self._warned and not monitor.mismatch and np.isfinite(monitor.estimate):
            self._warned = False
            self._log.info(f"the stream now looks like {monitor.estimate:.1f} samples per symbol, close to the "
                           f"model's {model_sps}: frames are classified again")

    def decide(self, frames):
        """(probs, exits, index, confidence, snr_db, sps_estimate or None, mismatch or None) for
        complex frames (K, frame_len); a model error tags the frames unknown (logged)."""
        model = self.model
        sps_estimate = mismatch = None
        n = len(frames)
        if self._monitor is not None:
            sps_estimate, mismatch = self._monitor.judge(n)
        try:
            decided = classify_frames(model, frames, self.min_confidence, mismatch)
            return (decided.probs, decided.exits, decided.index, decided.confidence, decided.snr_db,
                    sps_estimate, mismatch)
        except Exception as err:  # noqa: BLE001 -- whatever the model raises, samples keep flowing
            # An exception out of general_work kills the block's thread and hangs the flowgraph
            # with samples inside. The frames are tagged unknown (confidence 0), as bad samples are.
            self.failed_frames += n
            self._failed_calls += 1
            if self._failed_calls in (1, 10, 100) or self._failed_calls % 1000 == 0:  # the log stays readable
                self._log.error(f"{model.path}: classifying {n} frame(s) failed ({err}); they are tagged "
                                f"'{UNKNOWN_CLASS}' and the samples flow on ({self.failed_frames} frames so far)")
            return (np.zeros((n, model.n_classes), dtype=np.float32), np.full(n, -1), np.full(n, -1),
                    np.zeros(n, dtype=np.float32), np.full(n, np.nan, dtype=np.float32), sps_estimate, mismatch)

    def classify(self, frames):
        """decide() in the C++ core's order: (index, confidence, probs, exits, snr_db,
        sps_estimate, sps_mismatch)."""
        probs, exits, index, confidence, snr, sps_estimate, mismatch = self.decide(frames)
        return index, confidence, probs, exits, snr, sps_estimate, mismatch


class _ClassifierCore(flowgraph_owned, gr.basic_block):
    """Pass-through that holds samples back until the frames starting in them are classified."""

    def __init__(self, decider, framer, tag_key, watch):
        gr.basic_block.__init__(
            self, name="modrec_classifier_core", in_sig=[np.complex64], out_sig=[np.complex64]
        )
        self._decider = decider
        model = decider.model
        self._key = pmt.intern(tag_key)
        self._srcid = pmt.intern("modrec_classifier")
        self._watch = watch
        self._framer = framer  # ResampledFramer for a resampled stream; StreamFramer when asked for (tests)
        # The scheduler would shift propagated tags by our output lag; we re-emit them ourselves
        # at their original offsets when the samples they sit on are released.
        self.set_tag_propagation_policy(gr.TPP_DONT)
        self._port = pmt.intern(CLASSIFICATION_PORT)
        self.message_port_register_out(self._port)
        self._pending_tags = deque()  # (offset, key, value, srcid), offsets ascending
        # Samples held at a stop (lock()/unlock() or tb.stop()), sent first at the next start, with
        # the tags that sit on them (offset relative to the kept samples): see stop().
        self._carry = np.zeros(0, dtype=np.complex64)
        self._carry_tags = []
        self._shift = 0
        self.items_in = self.items_out = 0  # samples taken in and sent out, over every run
        # Interned once: work() builds one dict per frame, thousands per second.
        self._fields = {name: pmt.intern(name)
                        for name in ("class", "index", "confidence", "probs", "frame_len", "frame_start", "exit",
                                     "snr_db", "sps_estimate", "sps_mismatch")}
        # plain and early-exit models answer alike (a plain model: one exit, index 0); the tags
        # name the exit a frame took only where there is a choice
        self._tag_exit = model.n_exits > 1
        # the model's classes (its noise class as "noise"), "unknown" last: index -1 picks it
        self._class_symbols = [pmt.intern(name) for name in decision_labels(model)]
        self._tag_snr = model.has_snr  # a version-2 model that estimates each frame's SNR
        # stream samples a frame covers: the model's frame_len, or its span at the stream's rate
        self._frame_len_pmt = pmt.from_long(framer.frame_span)

    def start(self):
        # Every start, including the restart of tb.lock()/unlock(), begins at item 0: GNU Radio
        # 3.10 rebuilds block details and buffers then, so offsets restart and samples still in
        # the old buffers are gone for every block. What this block held at the stop is not
        # lost: it leaves first (stop() kept it), and the new run's offsets follow it.
        self._framer.reset()
        self._decider.reset()
        self._shift = 0  # output offset - input offset in this run: the carried samples sent so far
        return True

    def stop(self):
        # Samples held behind an incomplete frame (and the tags of frames classified in them)
        # would vanish with the framer at the next start: keep them to send first then. At the
        # end of a stream the framer has already flushed everything, so nothing is kept.
        framer = self._framer
        if len(framer):
            base, kept = framer.start, len(self._carry)  # tags: offsets into self._carry
            self._carry_tags += [(kept + offset - base, key, value, srcid)
                                 for offset, key, value, srcid in self._pending_tags]
            self._carry = np.concatenate([self._carry, framer.pop(len(framer))])
        self._pending_tags.clear()
        return True

    def _send_carry(self, out):
        """Send samples kept at the last stop (before anything of this run); returns how many."""
        n = min(len(out), len(self._carry))
        out[:n] = self._carry[:n]
        first = self.nitems_written(0)
        keep = []
        for rel, key, value, srcid in sorted(self._carry_tags, key=lambda t: t[0]):
            if rel < n:
                self.add_item_tag(0, first + rel, key, value, srcid)
            else:
                keep.append((rel - n, key, value, srcid))
        self._carry_tags = keep
        self._carry = self._carry[n:]
        self._shift += n
        self.items_out += n
        return n

    def forecast(self, noutput_items, ninputs):
        if len(self._carry):
            return [0]  # samples kept at the last stop go out first, no input needed
        framer = self._framer
        if len(framer) == 0:
            return [1]
        if framer.releasable() > framer.start:
            return [0]
        # Everything buffered is held back behind an incomplete frame: only new input or the end
        # of the stream can move us. Ask the probe which it is, so that at end of stream we get a
        # final general_work() call to flush instead of the scheduler retiring us with samples
        # still inside.
        read = self.nitems_read(0)
        while True:
            ended, seen = self._watch.wait_past(read, _PROBE_WAIT_S)
            if ended and seen <= read:
                return [0]
            if seen > read:
                return [1]
            # Nothing new yet: returning now would let the scheduler retire us at end of stream
            # before the probe reports it, dropping the held tail. The probe's stop() runs both at
            # end of stream and on tb.stop(), so this wait always ends.

    def general_work(self, input_items, output_items):
        inp = input_items[0]
        out = output_items[0]
        if len(self._carry):
            return self._send_carry(out)
        framer = self._framer
        read_before = self.nitems_read(0)

        # Bounded intake: noutput + frame_len buffered always lets at least noutput items go.
        take = min(len(inp), max(0, len(out) + framer.hold_len - len(framer)))
        if take:
            for tag in self.get_tags_in_window(0, 0, take):
                self._pending_tags.append((tag.offset, tag.key, tag.value, tag.srcid))
            self._decider.observe(framer.push(inp[:take]))
            self.consume(0, take)
            self.items_in += take

        starts, frames = framer.take_complete()
        if len(starts):
            self._classify(starts, frames)

        end_of_stream = self._watch.ended and read_before + take >= self._watch.seen
        if end_of_stream:
            # a resampler's last outputs complete the last frames; a plain framer has none
            starts, frames = framer.finish()
            if len(starts):
                self._classify(starts, frames)
        n = min(len(out), framer.releasable(end_of_stream) - framer.start)
        if n <= 0:
            return 0
        out[:n] = framer.pop(n)
        self.items_out += n
        released_to = framer.start
        tags = self._pending_tags
        if tags:
            ready = [t for t in tags if t[0] < released_to]
            if ready:
                self._pending_tags = deque(t for t in tags if t[0] >= released_to)
                for offset, key, value, srcid in sorted(ready, key=lambda t: t[0]):
                    self.add_item_tag(0, offset + self._shift, key, value, srcid)
        return n

    def _classify(self, starts, frames):
        probs, exits, index, confidence, snr, sps_estimate, mismatch = self._decider.decide(frames)
        n_classes = self._decider.model.n_classes
        f = self._fields
        for k, start in enumerate(starts):
            idx = int(index[k])
            value = pmt.make_dict()
            value = pmt.dict_add(value, f["class"], self._class_symbols[idx])
            value = pmt.dict_add(value, f["index"], pmt.from_long(idx))
            value = pmt.dict_add(value, f["confidence"], pmt.from_double(float(confidence[k])))
            value = pmt.dict_add(value, f["probs"], pmt.init_f32vector(n_classes, probs[k].tolist()))
            value = pmt.dict_add(value, f["frame_len"], self._frame_len_pmt)
            value = pmt.dict_add(value, f["frame_start"], pmt.from_uint64(int(start) + self._shift))
            if self._tag_exit:
                value = pmt.dict_add(value, f["exit"], pmt.from_long(int(exits[k])))
            if self._tag_snr:
                value = pmt.dict_add(value, f["snr_db"], pmt.from_double(float(snr[k])))
            if mismatch is not None:
                value = pmt.dict_add(value, f["sps_estimate"], pmt.from_double(float(sps_estimate[k])))
                value = pmt.dict_add(value, f["sps_mismatch"], pmt.from_bool(bool(mismatch[k])))
            self._pending_tags.append((int(start), self._key, value, self._srcid))
            self.message_port_pub(self._port, value)


class classifier(flowgraph_owned, gr.hier_block2):
    """Automatic modulation recognition on a complex64 stream; output is the input, bit-exact.

    Frames of ``frame_len`` samples (from the model's metadata) start at absolute stream offsets
    0, hop, 2*hop, ...; ``hop`` 0 means ``frame_len`` (back-to-back frames), smaller values overlap
    frames and larger ones leave unclassified gaps. Every complete frame is classified, all frames
    completed by one work() call in one batched model run, and gets a stream tag at its FIRST sample:
    key ``tag_key``, value a dict with ``class`` (symbol), ``index`` (class index, -1 for unknown),
    ``confidence`` (top probability), ``probs`` (f32vector), ``frame_len`` and ``frame_start``;
    with an early-exit model (metadata ``exits`` > 1 and stage files) also ``exit``, the index of
    the exit the frame left at (-1 for a frame not run through the model; while few frames leave,
    at low SNR, the model runs as the plain network and frames report the final exit); with a
    model that estimates SNR (contract version 2) also ``snr_db``, the frame's estimated
    per-sample SNR in dB (float; NaN for a frame not run through the model). The same dict is
    published on the ``classification`` message port.

    ``noise`` and ``unknown``: a version-2 model may have a noise class (contract.NOISE_CLASS): a
    frame it wins holds no signal and is tagged class ``noise``. ``min_confidence`` -1 (the
    default) applies the model's own rule: its calibrated open-set threshold (a frame whose score
    is above it is ``unknown``: a modulation the model never learnt), or none for a model without
    one, so a version-1 model gives every frame one of its classes as before. A value in [0, 1]
    replaces that rule: a top probability below it (the noise class's included) gives
    ``unknown`` (probs and confidence kept). A
    frame holding NaN/Inf samples is not run through the model: it is tagged ``unknown`` with
    confidence 0 and all-zero probs. All-zero frames are classified normally (the model
    normalises with an epsilon).

    Why the output lags the input: a frame is known only once its last sample arrived, but its
    tag belongs on its first sample, and GNU Radio delivers a tag only if it is added before
    downstream reads that sample (a tag added behind the reader is silently lost). So the core
    block holds back every sample from the start of the oldest frame not yet classified and
    releases it, tags attached, once the frame is classified: at most ``frame_len - 1`` samples
    plus one scheduler chunk. The core is C++ (``lib/classifier_core_impl.cc``) for a stream
    framed as it is, and Python for a stream resampled for ``symbol_rate``. Upstream tags are
    re-emitted at their original offsets. The held-back tail of a finite stream is flushed,
    untagged, at its end instead of being dropped (the C++ core reads the end of stream from its
    input buffer; GNU Radio tells Python blocks nothing about it, so a tiny sink on the same input
    watches for the Python core).

    Model: ``model_path`` is a path to an ``.onnx`` file or a shipped model's name (``cnn3``,
    ``mobilenet1d-skd-v2``; ``runtime.resolve_model``); empty loads the shipped default,
    ``mobilenet1d-skd-v2.onnx``: the distilled student ``mobilenet1d-skd`` joined to the signal
    detector (contract version 2: noise, unknown, ``snr_db``; see ``runtime.default_model_path``);
    ``threads`` is onnxruntime's intra-op thread count.

    Oversampling: a model recognises signals at the samples per symbol it was trained at
    (``samples_per_symbol`` in its metadata, 8 for the shipped students). When ``symbol_rate``
    (Hz, the signal's baud rate) and ``sample_rate`` (Hz, the stream's) are given, the block
    resamples a copy of the stream by ``up/down`` = model sps / (sample_rate / symbol_rate)
    (polyphase, equal to ``scipy.signal.resample_poly``; runtime/resample.py) and frames that
    copy: ``frame_len`` and ``hop`` then count resampled samples, and each frame's tag sits on
    the input sample at the same instant as the frame's first resampled sample,
    ``floor(start * down / up)``, with ``frame_len`` in the tag giving the input samples the
    frame spans. The output is still the input, untouched. This is the same framing and
    resampler as ``modrec classify --symbol-rate``, so a recording gets the same decisions from
    the command line and from a flowgraph (a GNU Radio rational resampler block would filter
    differently, and its tags would come from another block's thread). 0 (the default) for
    ``symbol_rate`` frames the stream as it is.

    Wrong oversampling: with ``check_oversampling`` (the default) the block estimates the
    framed stream's samples per symbol from its symbol-rate line over every 16,384 samples
    (``runtime/oversampling.py``: squared envelope and frequency changes, Gardner 1991). Each
    frame is judged by the last such window ending at or before its end, and its tag gains
    ``sps_estimate`` (float, samples per symbol; NaN when no line was found: analog signals,
    noise, frames ending before the first window's end) and ``sps_mismatch`` (bool: the estimate
    is more than 1.4 times off the model's). A mismatched frame is tagged ``unknown`` (not
    ``noise`` either: its symbol-rate line shows a signal), with its probs and confidence kept,
    and the block logs a warning when a mismatch starts and a note when an estimate matches
    again. Lines a resampler in front makes itself (``symbol_rate``
    given) are not counted. At 10-18 dB it flags most PSK, PAM and QAM frames at 2 and 4 samples
    per symbol, fewer at 16, and fewer FSK and analog ones (analog signals have no symbol rate);
    docs/REAL_INPUTS.md has the figures. ``False`` turns it off.
    """

    def __init__(self, model_path="", hop=0, min_confidence=MODEL_RULE, tag_key="modrec", threads=1,
                 sample_rate=0.0, symbol_rate=0.0, check_oversampling=True, _core="c++"):
        _check_int("hop", hop, minimum=0)
        sample_rate = _check_rate("sample_rate", sample_rate)
        symbol_rate = _check_rate("symbol_rate", symbol_rate)
        if symbol_rate and not sample_rate:
            raise ValueError(f"symbol_rate {symbol_rate:g} Hz needs the stream's sample_rate (Hz) to resample the "
                             f"stream to the model's samples per symbol; got sample_rate 0")
        min_confidence = check_min_confidence(min_confidence)
        if not isinstance(tag_key, str) or not tag_key.strip():
            raise ValueError(f"tag_key must be a non-blank string, got {tag_key!r}")
        _check_int("threads", threads, minimum=1)
        if not isinstance(check_oversampling, (bool, np.bool_)):
            raise ValueError(f"check_oversampling must be True or False, got {check_oversampling!r}")
        if not isinstance(model_path, (str, bytes)) and not hasattr(model_path, "__fspath__"):
            raise ValueError(f"model_path must be a path, a shipped model's name or empty, got {model_path!r}")

        gr.hier_block2.__init__(
            self,
            "modrec_classifier",
            gr.io_signature(1, 1, gr.sizeof_gr_complex),
            gr.io_signature(1, 1, gr.sizeof_gr_complex),
        )
        self.model_path = resolve_model(model_path)
        self.model = load_model(self.model_path, threads=int(threads))
        self.metadata = self.model.metadata
        self.classes = self.model.classes
        self.frame_len = self.model.frame_len
        self.samples_per_symbol = self.model.samples_per_symbol
        self.hop = int(hop) or self.frame_len
        self.tag_key = tag_key
        self.sample_rate, self.symbol_rate = sample_rate, symbol_rate
        # (up, down) when the stream is resampled to the model's samples per symbol, else None
        self.resampling = None
        framer = StreamFramer(self.frame_len, self.hop)
        if symbol_rate:
            up, down = resample_ratio_for(sample_rate, symbol_rate, self.samples_per_symbol)
            if (up, down) != (1, 1):
                self.resampling = (up, down)
                framer = ResampledFramer(self.frame_len, self.hop, up, down)

        self.message_port_register_hier_out(CLASSIFICATION_PORT)
        self.check_oversampling = bool(check_oversampling)
        monitor = (OversamplingMonitor(self.samples_per_symbol, self.frame_len, self.hop,
                                       interpolated_by=self.resampling[0] if self.resampling else 1,
                                       estimate=compiled_estimate())
                   if self.check_oversampling else None)
        self._decider = _Decider(self.model, min_confidence, monitor, (sample_rate, symbol_rate))
        if self.resampling is None and _core == "c++":
            # Framing, tags and messages in C++ (lib/classifier_core_impl.cc): Python runs once per
            # batch of frames, not once per frame (apps/bench_block.py measures the difference).
            # It sees the end of the stream itself, so it needs no probe.
            from .modrec_python import classifier_core

            self._core = classifier_core(
                self.frame_len, self.hop, BATCH_FRAMES, tag_key, decision_labels(self.model), self.model.n_classes,
                self.model.n_exits > 1, self.model.has_snr, monitor is not None, self._decider.classify,
                self._decider.observe if monitor is not None else None)
            self._probe = None
        elif _core in ("c++", "python"):
            # the Python core: a resampled stream (its resampler is numpy), or asked for by name
            self._watch = _StreamWatch()
            self._core = _ClassifierCore(self._decider, framer, tag_key, self._watch)
            self._probe = _EndOfStreamProbe(self._watch)
            self.connect(self, self._probe)
        else:
            raise ValueError(f"_core must be 'c++' or 'python', got {_core!r}")
        self.connect(self, self._core, self)
        self.msg_connect(self._core, CLASSIFICATION_PORT, self, CLASSIFICATION_PORT)

    @property
    def min_confidence(self):
        return self._decider.min_confidence

    def set_min_confidence(self, min_confidence):
        self._decider.min_confidence = check_min_confidence(min_confidence)

    @property
    def failed_frames(self):
        """Frames the model raised on since the block was made (they were tagged unknown)."""
        return self._decider.failed_frames

    def items_in_out(self):
        """(samples taken in, samples sent out) by the core over every run: equal once a stream
        has ended, even across lock()/unlock() and stop()/start()."""
        core = self._core
        if isinstance(core, _ClassifierCore):
            return core.items_in, core.items_out
        return core.items_in(), core.items_out()


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_rate(name, value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of Hz >= 0 (0 = not given), got {value!r}") from None
    if not (value >= 0 and np.isfinite(value)):
        raise ValueError(f"{name} must be a finite number of Hz >= 0 (0 = not given), got {value!r}")
    return value
