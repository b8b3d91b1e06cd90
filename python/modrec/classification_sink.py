"""QT GUI Classification Sink: the classifier's decisions, live, as a QT GUI widget."""

import math
import threading
from collections import namedtuple

import numpy as np
import pmt
from gnuradio import gr
from PyQt5 import QtCore, QtGui, QtWidgets

import pyqtgraph as pg  # after PyQt5: pyqtgraph uses the Qt binding already imported (GNU Radio's is PyQt5)

from .classes import NOISE_LABEL, UNKNOWN_CLASS, canonical_class_name
from .keepalive import flowgraph_owned
from .pmt_values import pmt_int, pmt_real
from .runtime import load_model, resolve_model
from .runtime.decisions import decision_labels

MAX_HISTORY_LEN = 100_000  # columns: far more than a screen has pixels
MAX_UPDATE_RATE = 1000.0  # Hz: QTimer's resolution is 1 ms
# Tag values decoded per repaint at most. Decoding one (pmt dict_ref, f32vector -> numpy) costs
# about 30 us, so a repaint spends at most ~0.5 ms on it whatever the frame rate; at 10 Hz that is
# 0.5 % of a core. Values beyond it are counted, not decoded: see _Mailbox. With 64 the connected
# view cost the classifier 4-5 % of its throughput, with 16 2-4 % (apps/bench_block.py, viewed).
MAX_DECODED = 16

# Colours (RGB). Bars: a class, the decided class, the noise class; the decided class when the frame
# was called unknown (the bar the model leaned to, in the unknown colour).
BAR_COLOR = (74, 144, 217)
HIGHLIGHT_COLOR = (255, 159, 28)
NOISE_COLOR = (140, 140, 140)
UNKNOWN_COLOR = (214, 45, 214)


def _lut(top):
    """256 RGB steps from black to ``top``: uint8 (256, 3)."""
    return (np.linspace(0.0, 1.0, 256)[:, None] * np.asarray(top, dtype=np.float64)).round().astype(np.uint8)


# History colour maps, probability 0 -> 1: viridis for the model's signal classes, grey for noise,
# black to magenta for unknown, so the two non-signal rows never read as a modulation.
CLASS_LUT = pg.colormap.get("viridis").getLookupTable(0.0, 1.0, 256, alpha=False).astype(np.uint8)
NOISE_LUT = _lut((255, 255, 255))
UNKNOWN_LUT = _lut(UNKNOWN_COLOR)

# One decoded tag value: probs float32 (C,), index int (-1 = unknown), confidence float, snr_db float
# (NaN allowed) or None when the value has none, sps_estimate float or None, sps_mismatch bool.
_Frame = namedtuple("_Frame", "probs index confidence snr_db sps_estimate sps_mismatch")


class _Mailbox:
    """The one place the scheduler's thread and the GUI thread share, under a lock. ``put()``
    (work(), the scheduler's thread) stores tag values as they came, undecoded; ``take()`` (the
    GUI's timer) takes what came since its last take. Nothing here touches Qt or reads a PMT.

    Bounded, O(1) Python operations per put() plus the values it keeps: of the values put since the
    last take (numbered 0, 1, 2, ... in stream order) it keeps those numbered 0, k, 2k, ..., with
    k = 1 at first and doubled (every other kept value dropped, which leaves exactly the multiples
    of 2k) whenever more than ``capacity`` would be kept; and it keeps the latest value aside. So a
    take hands over at most capacity + 1 values, spread evenly over the interval, the latest last,
    whatever the frame rate: k is the smallest power of two with ceil(count / k) <= capacity. No
    random numbers, so what is shown is reproducible. ``total`` counts every value ever put.
    """

    def __init__(self, capacity=MAX_DECODED - 1):
        if capacity < 1:
            raise ValueError(f"capacity: expected at least 1 value kept, got {capacity!r}")
        self._lock = threading.Lock()
        self._capacity = capacity
        self.total = 0
        self._clear()

    def _clear(self):
        self._kept = []  # values numbered 0, stride, 2 * stride, ... since the last take
        self._stride = 1
        self._count = 0  # values put since the last take
        self._latest = None

    def put(self, tags):
        """Store the ``value`` (a PMT, not read here) of each of ``tags`` (gr.tag_t or anything with a
        ``value``; a sequence, in stream order)."""
        m = len(tags)
        if not m:
            return
        with self._lock:
            count, stride, kept = self._count, self._stride, self._kept
            total = count + m
            while -(-total // stride) > self._capacity:  # ceil(total / stride) would not fit
                del kept[1::2]
                stride *= 2
            # the first of these tags whose number (count + i) is a multiple of stride
            kept += [tag.value for tag in tags[-count % stride::stride]]
            self._stride, self._count = stride, total
            self._latest = tags[-1].value
            self.total += m

    def take(self):
        """(values, frames): at most capacity + 1 of the values put since the last take, in stream
        order, the latest last, and how many were put (frames); None when none came."""
        with self._lock:
            if not self._count:
                return None
            values, frames = self._kept, self._count
            if (frames - 1) % self._stride:  # the latest is not one of the kept
                values.append(self._latest)
            self._clear()
            return values, frames


class _ClassificationView(QtWidgets.QWidget):
    """The widget: current class, confidence and SNR; a bar per shown class; the history strip.

    Lives in the GUI thread. ``refresh()``, its timer's slot, is the only code that decodes and
    draws: it takes the mailbox's values, decodes them with ``decode`` (a value -> _Frame, or None
    for a bad value, which ``decode`` counts and logs) and, when one decoded, adds a history column
    and repaints. ``repaints`` counts those; ``frames`` the frames (tags) it took from the mailbox,
    every one the sink saw up to the last take; ``decoded`` the values it decoded, at most
    MAX_DECODED per refresh. Rows (bars and history) are the shown labels in the model's order,
    the noise class and ``unknown`` last; ``unknown`` has a history row but no bar (it has no
    probability). ``history``: float64 (history_len, rows), the newest column last, NaN where no
    update came yet; ``rows`` and ``bar_rows`` index ``labels``.
    """

    _set_interval = QtCore.pyqtSignal(int)  # queued to the GUI thread when emitted from another

    def __init__(self, mailbox, decode, labels, rows, history_len, interval_ms, title):
        super().__init__()
        self._mailbox = mailbox
        self._decode = decode
        self.labels = labels
        self.rows = rows  # indices into labels, display order
        self.bar_rows = [i for i in rows if labels[i] != UNKNOWN_CLASS]
        self._noise = labels.index(NOISE_LABEL) if NOISE_LABEL in labels else None
        self.repaints = 0  # refresh() calls that drew
        self.frames = 0  # frames (tags) taken from the mailbox, over every refresh
        self.decoded = 0  # tag values decoded (good or bad), over every refresh
        self.history = np.full((history_len, len(rows)), np.nan)  # (time, row); NaN = no update yet
        # each row's colour map, uint8 (rows, 256, 3)
        self._luts = np.stack([UNKNOWN_LUT if labels[i] == UNKNOWN_CLASS else NOISE_LUT if i == self._noise
                               else CLASS_LUT for i in rows])
        self._rows_index = np.asarray(rows)  # picks the shown rows from (probs..., unknown share)

        layout = QtWidgets.QVBoxLayout(self)
        if title:
            self.title_label = QtWidgets.QLabel(title)
            self.title_label.setAlignment(QtCore.Qt.AlignCenter)
            self.title_label.setFont(_font(11, bold=True))
            layout.addWidget(self.title_label)
        header = QtWidgets.QHBoxLayout()
        self.class_label = QtWidgets.QLabel("-")
        self.class_label.setFont(_font(28, bold=True))
        header.addWidget(self.class_label, 1)
        numbers = QtWidgets.QVBoxLayout()
        self.confidence_label = QtWidgets.QLabel("")
        self.confidence_label.setFont(_font(16))
        self.snr_label = QtWidgets.QLabel("")
        self.snr_label.setFont(_font(16))
        self.snr_label.hide()
        self.note_label = QtWidgets.QLabel("")  # a wrong-oversampling warning, when the frame has one
        self.note_label.setStyleSheet(f"color: rgb{UNKNOWN_COLOR}")
        self.note_label.hide()
        for label in (self.confidence_label, self.snr_label, self.note_label):
            label.setAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
            numbers.addWidget(label)
        header.addLayout(numbers)
        layout.addLayout(header)

        self.bar_plot = pg.PlotWidget()
        self._static(self.bar_plot, "probability")
        self.bar_plot.setYRange(0.0, 1.0, padding=0.02)
        self.bar_plot.setXRange(-0.5, len(self.bar_rows) - 0.5, padding=0.02)
        self.bar_plot.getAxis("bottom").setTicks([[(k, labels[i]) for k, i in enumerate(self.bar_rows)], []])
        self.bar_plot.getAxis("bottom").setStyle(tickFont=_font(8))
        self.bar_item = pg.BarGraphItem(x=np.arange(len(self.bar_rows)), height=np.zeros(len(self.bar_rows)),
                                        width=0.8, brushes=self._brushes(None), pen=pg.mkPen(None))
        self.bar_plot.addItem(self.bar_item)
        layout.addWidget(self.bar_plot, 1)

        self.history_plot = pg.PlotWidget()
        self._static(self.history_plot, None)
        self.history_plot.invertY(True)  # first row at the top, as the bars read left to right
        self.history_plot.setLabel("bottom", "updates ago")
        names = self.history_plot.getAxis("left")
        names.setTicks([[(r + 0.5, labels[i]) for r, i in enumerate(rows)], []])
        # room for the longest name now: the axis would widen only after a first paint that drops names
        metrics = QtGui.QFontMetrics(_font(8))
        names.setStyle(tickFont=_font(8), hideOverlappingLabels=False, autoExpandTextSpace=False,
                       tickTextWidth=max(metrics.horizontalAdvance(labels[i]) for i in rows) + 6)
        self.history_image = pg.ImageItem(axisOrder="col-major")  # image[column (time), row]
        self.history_image.setImage(self._rgba(), autoLevels=False)
        self.history_image.setRect(QtCore.QRectF(-history_len, 0, history_len, len(rows)))
        self.history_plot.addItem(self.history_image)
        signal_rows = sum(1 for i in rows if labels[i] not in (NOISE_LABEL, UNKNOWN_CLASS))
        if 0 < signal_rows < len(rows):  # a line between the modulations and noise/unknown
            self.history_plot.addItem(pg.InfiniteLine(pos=signal_rows, angle=0, pen=pg.mkPen("w", width=1)))
        self.history_plot.setXRange(-history_len, 0, padding=0)
        self.history_plot.setYRange(0, len(rows), padding=0)
        layout.addWidget(self.history_plot, 1)
        self.setMinimumSize(360, 320)

        self._timer = QtCore.QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._set_interval.connect(self._timer.setInterval)
        self._timer.start(interval_ms)

    @staticmethod
    def _static(plot, ylabel):
        plot.setMouseEnabled(x=False, y=False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        if ylabel:
            plot.setLabel("left", ylabel)

    def set_interval(self, ms):
        """Repaint period in ms; callable from any thread (the change is queued to the GUI thread)."""
        self._set_interval.emit(int(ms))

    def _brushes(self, frame):
        """One brush per bar: the decided class highlighted (in the unknown colour, on the class
        the model leaned to, when the frame was decided unknown), noise grey."""
        top = None
        if frame is not None:
            top = frame.index if frame.index >= 0 else int(np.argmax(frame.probs)) if frame.probs.any() else None
        brushes = []
        for i in self.bar_rows:
            if i == top:
                color = HIGHLIGHT_COLOR if frame.index >= 0 else UNKNOWN_COLOR
            else:
                color = NOISE_COLOR if i == self._noise else BAR_COLOR
            brushes.append(pg.mkBrush(*color))
        return brushes

    def _rgba(self):
        """The history as an RGBA image, uint8 (history_len, rows, 4); columns with no update transparent."""
        values = self.history
        filled = np.isfinite(values)
        steps = np.clip(np.rint(np.where(filled, values, 0.0) * 255), 0, 255).astype(np.intp)
        rgba = np.zeros(values.shape + (4,), dtype=np.uint8)
        rgba[..., :3] = self._luts[np.arange(values.shape[1])[None, :], steps]
        rgba[..., 3] = np.where(filled, 255, 0)
        return rgba

    def refresh(self):
        """Timer slot: take what work() stored since the last call and decode it (at most MAX_DECODED
        values, spread evenly over the interval, the latest included); when one decoded, add one
        history column (the mean of the decoded frames' probs, and the share of them decided
        unknown) and show the latest decoded frame in the labels and bars. Returns whether it
        repainted. Never raises: bad values are counted and logged by ``decode``."""
        batch = self._mailbox.take()
        if batch is None:
            return False
        values, frames = batch
        self.frames += frames
        self.decoded += len(values)
        decoded = [frame for frame in map(self._decode, values) if frame is not None]
        if not decoded:
            return False
        probs = np.mean([frame.probs for frame in decoded], axis=0, dtype=np.float64)
        unknown = sum(frame.index < 0 for frame in decoded) / len(decoded)
        column = np.append(probs, unknown)[self._rows_index]
        self.history[:-1] = self.history[1:]
        self.history[-1] = column
        self.history_image.setImage(self._rgba(), autoLevels=False)

        frame = decoded[-1]
        self.bar_item.setOpts(height=frame.probs[self.bar_rows], brushes=self._brushes(frame))
        name = self.labels[frame.index]
        color = UNKNOWN_COLOR if frame.index < 0 else NOISE_COLOR if frame.index == self._noise else None
        self.class_label.setStyleSheet(f"color: rgb{color}" if color else "")
        self.class_label.setText(name)
        if frame.index < 0 and frame.probs.any():
            # an unknown frame's confidence is the top class's probability, not a confidence in
            # "unknown": name the class the model leaned to, as its bar does
            leaned = self.labels[int(np.argmax(frame.probs))]
            self.confidence_label.setText(f"leaned {leaned} {100.0 * frame.confidence:.1f} %")
        else:
            self.confidence_label.setText(f"{100.0 * frame.confidence:.1f} %")
        if frame.snr_db is None:
            self.snr_label.hide()
            self.snr_label.setText("")
        else:
            self.snr_label.setText(f"SNR {frame.snr_db:.1f} dB" if math.isfinite(frame.snr_db) else "SNR n/a")
            self.snr_label.show()
        if frame.sps_mismatch:
            sps = frame.sps_estimate
            self.note_label.setText("wrong oversampling" + (f": ~{sps:.1f} samples/symbol"
                                                            if sps is not None and math.isfinite(sps) else ""))
            self.note_label.show()
        else:
            self.note_label.hide()
        self.repaints += 1
        return True


def _font(points, bold=False):
    font = QtGui.QFont()
    font.setPointSize(points)
    font.setBold(bold)
    return font


_APP = None  # the QApplication _qapplication() made, if it made one: kept for the process


def _qapplication():
    """The process's QApplication, created when there is none, as GNU Radio's C++ QT GUI sinks do:
    a widget cannot exist without one."""
    global _APP
    app = QtWidgets.QApplication.instance()
    if app is None:
        _APP = app = QtWidgets.QApplication(["gr-modrec"])
    return app


class _BadValue(ValueError):
    pass


class _Decoder:
    """Reads the classifier's tag values for one sink, in the GUI thread (the view's refresh):
    ``decode(value)`` is a _Frame, or None for a value that is not the classifier's dict, which
    is counted (``bad``), kept as ``last_error`` and logged naming the field (the 1st, 10th, 100th
    and every 1000th). Never raises: an exception out of a Qt slot aborts the process."""

    def __init__(self, labels, model_path, tag_key, label):
        self.labels = labels
        self.model_path = model_path
        self.tag_key = tag_key
        self.name = f"'{label}'" if label else "classification_sink"
        self.bad = 0
        self.last_error = None
        self._n_classes = len(labels) - 1
        self._log = gr.logger("modrec_classification_sink")
        # interned once: a repaint reads up to MAX_DECODED values
        self._fields = {name: pmt.intern(name) for name in
                        ("class", "index", "confidence", "probs", "snr_db", "sps_estimate", "sps_mismatch")}
        self._symbols = [pmt.intern(name) for name in labels]

    def decode(self, value):
        try:
            return self._frame(value)
        except Exception as exc:  # noqa: BLE001 -- a bad value is logged, the next one may be good
            self._bad(value, exc)
            return None

    def _frame(self, value):
        # a PMT dict is an association list: empty (nil) or a list of (key . value) pairs
        if not pmt.is_dict(value) or not (pmt.is_null(value) or pmt.is_pair(pmt.car(value))):
            raise _BadValue("the tag value is not a dict")
        f = self._fields
        probs = pmt.dict_ref(value, f["probs"], pmt.PMT_NIL)
        if pmt.is_null(probs):
            raise _BadValue("field 'probs' is missing")
        if not pmt.is_f32vector(probs):
            raise _BadValue("field 'probs' is not an f32vector")
        probs = np.asarray(pmt.f32vector_elements(probs), dtype=np.float32)
        if len(probs) != self._n_classes:
            raise _BadValue(f"field 'probs' has {len(probs)} values, this sink's model has {self._n_classes} "
                            f"classes ({self.model_path}: give the sink the classifier's model)")
        if not np.isfinite(probs).all():
            raise _BadValue("field 'probs' holds NaN or Inf")
        index = pmt_int(pmt.dict_ref(value, f["index"], pmt.PMT_NIL))
        if index is None:
            raise _BadValue("field 'index' is missing or not an integer")
        if not -1 <= index < self._n_classes:
            raise _BadValue(f"field 'index' is {index}, expected -1 (unknown) to {self._n_classes - 1}")
        name = pmt.dict_ref(value, f["class"], pmt.PMT_NIL)
        if not pmt.eqv(name, self._symbols[index]):
            shown = pmt.symbol_to_string(name) if pmt.is_symbol(name) and not pmt.is_null(name) else \
                pmt.write_string(name)
            raise _BadValue(f"field 'class' is {shown!r}, this sink's model calls index {index} "
                            f"{self.labels[index]!r} ({self.model_path}: give the sink the classifier's model)")
        confidence = _number(value, f["confidence"], "confidence", required=True)
        snr = _number(value, f["snr_db"], "snr_db")
        sps = _number(value, f["sps_estimate"], "sps_estimate")
        mismatch = pmt.dict_ref(value, f["sps_mismatch"], pmt.PMT_F)
        mismatch = pmt.is_bool(mismatch) and pmt.to_bool(mismatch)
        return _Frame(probs, int(index), confidence, snr, sps, mismatch)

    def _bad(self, value, exc):
        self.bad += 1
        self.last_error = str(exc)
        n = self.bad
        if n in (1, 10, 100) or n % 1000 == 0:  # the log stays readable at thousands of frames/s
            try:
                shown = pmt.write_string(value)[:200]
            except Exception:  # noqa: BLE001 -- not a PMT at all: say what it is instead
                shown = repr(value)[:200]
            self._log.error(f"{self.name}: tag value ignored: {exc} (expected the dict modrec.classifier puts in "
                            f"its '{self.tag_key}' tags; got {shown}); {n} ignored so far")


class classification_sink(flowgraph_owned, gr.sync_block):
    """QT GUI widget that shows a ``modrec.classifier``'s decisions live.

    Input: one complex64 stream; connect the classifier's OUTPUT to it, as one connects a QT GUI
    Frequency Sink (``tb.connect(clf, sink)``, next to whatever else reads the classifier's
    output). The samples are dropped; the sink reads the tags with key ``tag_key`` (the
    classifier's ``tag_key``, default ``modrec``) that the classifier puts on each frame's first
    sample. Each tag's value is the classifier's dict: ``class`` (symbol), ``index`` (int, -1 =
    unknown), ``confidence`` (float in [0, 1]), ``probs`` (f32vector, one value per model class, in
    the model's order) and optionally ``snr_db`` (float, dB, NaN allowed), ``sps_estimate``
    (float) and ``sps_mismatch`` (bool); other keys (``frame_start``, ``frame_len``, ``exit``) are
    ignored. No message port: the tags are the cheaper of the classifier's two outputs. A Python
    message handler runs once per frame and cost the classifier about 10 % of its stream
    throughput in apps/bench_block.py (a no-op handler: 0.441 against 0.489 MS/s), where a stream
    sink reading the tags with one ``get_tags_in_window`` per work() call costs about 2 %.

    The widget (``qwidget()``; ``pyqwidget()`` is the same object) shows: the current class (the
    latest frame's; ``noise`` in grey, ``unknown`` in magenta), its confidence in % and, when the
    tag has ``snr_db``, the SNR estimate in dB (``n/a`` for NaN), plus a note when the frame was
    flagged for a wrong oversampling; a bar per shown class with the latest frame's probability,
    the decided class highlighted (orange; on an ``unknown`` frame, the class the model leaned to,
    in magenta); and the history: one column per repaint that had new frames, newest on the right,
    ``history_len`` columns kept, one row per shown class, colour = probability (viridis from 0 to
    1; the noise class in grey; an ``unknown`` row in black to magenta). Rows and bars follow the
    model's class order with noise and ``unknown`` last.

    One history column when several frames arrive between repaints: the MEAN of the probs of the
    frames decoded for it, and for ``unknown`` the fraction of them decided unknown. A repaint
    decodes at most MAX_DECODED (16) frames spread evenly over the interval since the last one:
    every k-th frame (k the smallest power of two that keeps it to 15) and the latest (see
    _Mailbox). Up to 15 frames in an interval are all decoded; at high frame rates the column is
    the mean of up to 16 frames spread evenly over the interval (at 4,000 frames/s and 10 Hz:
    every 32nd of the 400 and the latest, 14 frames). A column is a time interval; the mean gives
    every decoded frame the same weight, so a burst of another class that lasts a sizeable part of
    the interval shows as a fainter stripe instead of vanishing (showing only the latest frame
    would drop all but one frame per repaint), a single outlier frame does not paint a whole
    column as a maximum would, and every cell stays in [0, 1] on one colour scale. The bars and
    the labels show the latest frame (the latest one decoded well, when the latest is bad).

    Threads: work() runs in the scheduler's thread and only takes the tags
    (``get_tags_in_window``) and hands their values, undecoded, to a lock-guarded store (no PMT
    reads, no numpy per tag, no Qt); a QTimer in the GUI thread takes from it ``update_rate``
    times per second, decodes there, and repaints only when something new came, so any frame rate
    costs at most ``update_rate`` repaints and ``update_rate`` x MAX_DECODED decodes per second. Build the
    block in the GUI thread (GRC's QT GUI flowgraphs do); a QApplication is created if the process
    has none.

    model_path: the classifier's model, a path or a shipped model's name (``runtime.resolve_model``;
    empty: the shipped default, ``runtime.default_model_path``);
    only its metadata's class names are used (``runtime.decisions.decision_labels``), so give the
    sink the classifier's model. history_len: columns kept (int, 1 to 100,000). update_rate:
    repaints per second at most (Hz, > 0 and <= 1000). classes: names to show (list of str, any
    spelling ``canonical_class_name`` folds, ``noise``/``unknown`` included; empty = all, in the
    model's order). label: a title above the widget (str, empty = none). tag_key: the key of the
    classifier's tags (str, non-blank; the classifier's ``tag_key``); tags with other keys are
    ignored.

    Counters: ``frames``, the tags with ``tag_key`` seen (every one, decoded or not). A decoded
    value that is not such a dict (not a dict, ``probs`` missing, not an f32vector, of the wrong
    length or not finite, ``index`` out of range, ``class`` not the model's name for ``index``,
    ``confidence`` or ``snr_db`` not a number) is skipped, counted in ``bad_values`` and logged
    with the field it fails on (the 1st, 10th, 100th and every 1000th); ``last_error`` keeps the
    latest reason. Values are checked when decoded, so a bad value among those not decoded goes
    unseen. Neither work() nor the timer slot raises.

    Raises ValueError from the constructor for a bad argument, FileNotFoundError when the model
    (or the default) is missing, contract.ContractError for a file that is not a contract model.
    """

    def __init__(self, model_path="", history_len=200, update_rate=10.0, classes=(), label="", tag_key="modrec"):
        if not isinstance(model_path, (str, bytes)) and not hasattr(model_path, "__fspath__"):
            raise ValueError(f"model_path: expected a path, a shipped model's name or empty, got {model_path!r}")
        if isinstance(history_len, bool) or not isinstance(history_len, (int, np.integer)) \
                or not 1 <= history_len <= MAX_HISTORY_LEN:
            raise ValueError(f"history_len: expected an integer from 1 to {MAX_HISTORY_LEN} (updates kept), "
                             f"got {history_len!r}")
        update_rate = _check_update_rate(update_rate)
        if classes is None:
            classes = ()
        if isinstance(classes, (str, bytes)) or not isinstance(classes, (list, tuple)) \
                or not all(isinstance(name, str) for name in classes):
            raise ValueError(f"classes: expected a list of class names (empty = all), e.g. ['QPSK', 'BPSK'], "
                             f"got {classes!r}")
        if label is None:
            label = ""
        if not isinstance(label, str):
            raise ValueError(f"label: expected a string, got {label!r}")
        if not isinstance(tag_key, str) or not tag_key.strip():
            raise ValueError(f"tag_key: expected the classifier's tag key, a non-blank string (default 'modrec'), "
                             f"got {tag_key!r}")

        self.model_path = resolve_model(model_path)
        # the names the classifier gives its decisions, index -1 = labels[-1] = unknown; the model is
        # dropped after: the sink runs nothing through it
        self.labels = tuple(decision_labels(load_model(self.model_path)))
        rows = _shown_rows(self.labels, classes)
        if not any(self.labels[i] != UNKNOWN_CLASS for i in rows):
            raise ValueError(f"classes: name at least one of the model's classes ({', '.join(self.labels[:-1])}); "
                             f"got {list(classes)!r}")

        gr.sync_block.__init__(self, name="modrec_classification_sink", in_sig=[np.complex64], out_sig=None)
        self.history_len = int(history_len)
        self.update_rate = update_rate
        self.classes = tuple(self.labels[i] for i in rows)  # the rows shown, in display order
        self.label = label
        self.tag_key = tag_key
        self._key = pmt.intern(tag_key)
        self._mailbox = _Mailbox()
        self._decoder = _Decoder(self.labels, self.model_path, tag_key, label)
        _qapplication()
        self._view = _ClassificationView(self._mailbox, self._decoder.decode, self.labels, rows, self.history_len,
                                         _interval_ms(update_rate), label)

    @property
    def frames(self):
        """Tags with ``tag_key`` seen so far (int), decoded or not."""
        return self._mailbox.total

    @property
    def bad_values(self):
        """Decoded tag values that were not the classifier's dict (int)."""
        return self._decoder.bad

    @property
    def last_error(self):
        """Why the latest bad value was skipped (str, naming the field), or None."""
        return self._decoder.last_error

    def qwidget(self):
        """The QWidget to place in a layout (GRC: ``self.top_grid_layout.addWidget(...)``)."""
        return self._view

    def pyqwidget(self):
        """Same as qwidget(): this block is Python, its widget already a PyQt5 object."""
        return self._view

    def set_update_rate(self, update_rate):
        """Repaints per second at most (Hz, > 0 and <= 1000); callable from any thread."""
        self.update_rate = _check_update_rate(update_rate)
        self._view.set_interval(_interval_ms(self.update_rate))

    def work(self, input_items, output_items):
        # The scheduler's thread: one tag query and one locked store per call, the values left
        # undecoded (the GUI thread decodes a bounded few at its repaint). The samples are dropped.
        n = len(input_items[0])
        tags = self.get_tags_in_window(0, 0, n, self._key)
        if tags:
            self._mailbox.put(tags)
        return n


def _number(value, key, field, required=False):
    """A dict entry as float, None when absent and not required; _BadValue naming ``field`` otherwise."""
    entry = pmt.dict_ref(value, key, pmt.PMT_NIL)
    if pmt.is_null(entry):
        if required:
            raise _BadValue(f"field '{field}' is missing")
        return None
    number = pmt_real(entry)
    if number is None:
        raise _BadValue(f"field '{field}' is not a number")
    return number


def _shown_rows(labels, classes):
    """Indices into ``labels`` of the rows shown: all, or those ``classes`` names (spelling folded by
    canonical_class_name); the model's order with noise and unknown last. ValueError names a class
    the model does not have."""
    keys = {canonical_class_name(name): i for i, name in enumerate(labels)}
    if classes:
        wanted = set()
        for name in classes:
            if canonical_class_name(name) not in keys:
                raise ValueError(f"classes: {name!r} is not one of this model's labels ({', '.join(labels)})")
            wanted.add(keys[canonical_class_name(name)])
    else:
        wanted = set(range(len(labels)))
    last = {NOISE_LABEL: 1, UNKNOWN_CLASS: 2}
    return sorted(wanted, key=lambda i: (last.get(labels[i], 0), i))


def _check_update_rate(value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (0.0 < float(value) <= MAX_UPDATE_RATE):
        raise ValueError(f"update_rate: expected a number of Hz > 0 and <= {MAX_UPDATE_RATE:g}, got {value!r}")
    return float(value)


def _interval_ms(update_rate):
    return max(1, int(round(1000.0 / update_rate)))
