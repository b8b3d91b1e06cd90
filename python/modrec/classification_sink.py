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
from .classifier import CLASSIFICATION_PORT
from .keepalive import flowgraph_owned
from .runtime import load_model, resolve_model
from .runtime.decisions import decision_labels

MAX_HISTORY_LEN = 100_000  # columns: far more than a screen has pixels
MAX_UPDATE_RATE = 1000.0  # Hz: QTimer's resolution is 1 ms

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

# One decoded message: probs float32 (C,), index int (-1 = unknown), confidence float, snr_db float
# (NaN allowed) or None when the message has none, sps_estimate float or None, sps_mismatch bool.
_Frame = namedtuple("_Frame", "probs index confidence snr_db sps_estimate sps_mismatch")
# What the GUI takes at a repaint: the mean probs float64 (C,) and the fraction of frames decided
# unknown over the ``frames`` messages since the last repaint, and the latest _Frame.
_Update = namedtuple("_Update", "mean_probs unknown_fraction frames latest")


class _Mailbox:
    """The one place the scheduler's thread and the GUI thread share, under a lock: the message
    handler adds a frame (a few numpy operations), the GUI's timer takes what came since its last
    take. Nothing here touches Qt."""

    def __init__(self, n_classes):
        self._lock = threading.Lock()
        self._n_classes = n_classes
        self._clear()

    def _clear(self):
        self._sum = np.zeros(self._n_classes, dtype=np.float64)
        self._frames = 0
        self._unknown = 0
        self._latest = None

    def put(self, frame):
        with self._lock:
            self._sum += frame.probs
            self._frames += 1
            self._unknown += frame.index < 0
            self._latest = frame

    def take(self):
        """An _Update for the frames put since the last take, or None when none came."""
        with self._lock:
            if not self._frames:
                return None
            update = _Update(self._sum / self._frames, self._unknown / self._frames, self._frames, self._latest)
            self._clear()
            return update


class _ClassificationView(QtWidgets.QWidget):
    """The widget: current class, confidence and SNR; a bar per shown class; the history strip.

    Lives in the GUI thread. ``refresh()``, its timer's slot, is the only code that draws: it takes
    the mailbox's _Update and, when there is one, adds a history column and repaints
    (``repaints`` counts those, ``frames`` the frames they drew). Rows (bars and history) are the
    shown labels in the model's order, the noise class and ``unknown`` last; ``unknown`` has a
    history row but no bar (it has no probability). ``history``: float64 (history_len, rows), the
    newest column last, NaN where no update came yet; ``rows`` and ``bar_rows`` index ``labels``.
    """

    _set_interval = QtCore.pyqtSignal(int)  # queued to the GUI thread when emitted from another

    def __init__(self, mailbox, labels, rows, history_len, interval_ms, title):
        super().__init__()
        self._mailbox = mailbox
        self.labels = labels
        self.rows = rows  # indices into labels, display order
        self.bar_rows = [i for i in rows if labels[i] != UNKNOWN_CLASS]
        self._noise = labels.index(NOISE_LABEL) if NOISE_LABEL in labels else None
        self.repaints = 0  # refresh() calls that drew
        self.frames = 0  # frames drawn into the history, over every repaint
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
        """Timer slot: take what the handler stored since the last call; when something came, add one
        history column and repaint the labels, bars and strip. Returns whether it repainted."""
        update = self._mailbox.take()
        if update is None:
            return False
        column = np.append(update.mean_probs, update.unknown_fraction)[self._rows_index]
        self.history[:-1] = self.history[1:]
        self.history[-1] = column
        self.history_image.setImage(self._rgba(), autoLevels=False)

        frame = update.latest
        self.bar_item.setOpts(height=frame.probs[self.bar_rows], brushes=self._brushes(frame))
        name = self.labels[frame.index]
        color = UNKNOWN_COLOR if frame.index < 0 else NOISE_COLOR if frame.index == self._noise else None
        self.class_label.setStyleSheet(f"color: rgb{color}" if color else "")
        self.class_label.setText(name)
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
        self.frames += update.frames
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


class _BadMessage(ValueError):
    pass


class classification_sink(flowgraph_owned, gr.basic_block):
    """QT GUI widget that shows a ``modrec.classifier``'s decisions live.

    Input: one message port, ``classification``; connect the classifier's ``classification``
    output to it (``tb.msg_connect(clf, "classification", sink, "classification")``). No stream
    ports. Each message is the dict the classifier publishes: ``class`` (symbol), ``index`` (int,
    -1 = unknown), ``confidence`` (float in [0, 1]), ``probs`` (f32vector, one value per model
    class, in the model's order) and optionally ``snr_db`` (float, dB, NaN allowed),
    ``sps_estimate`` (float) and ``sps_mismatch`` (bool); other keys (``frame_start``,
    ``frame_len``, ``exit``) are ignored.

    The widget (``qwidget()``; ``pyqwidget()`` is the same object) shows: the current class (the
    latest frame's; ``noise`` in grey, ``unknown`` in magenta), its confidence in % and, when the
    message has ``snr_db``, the SNR estimate in dB (``n/a`` for NaN), plus a note when the frame
    was flagged for a wrong oversampling; a bar per shown class with the latest frame's
    probability, the decided class highlighted (orange; on an ``unknown`` frame, the class the
    model leaned to, in magenta); and the history: one column per repaint that had new frames,
    newest on the right, ``history_len`` columns kept, one row per shown class, colour =
    probability (viridis from 0 to 1; the noise class in grey; an ``unknown`` row in black to
    magenta). Rows and bars follow the model's class order with noise and ``unknown`` last.

    One history column when several frames arrive between repaints: the MEAN of their probs, and
    for ``unknown`` the fraction of them decided unknown. A column is a time interval; the mean
    gives every frame the same weight, so a short burst of another class shows as a fainter stripe
    instead of vanishing (showing only the latest frame would drop all but one frame per repaint:
    at 10,000 frames/s and 10 Hz, 999 of 1000), a single outlier frame does not paint a whole
    column as a maximum would, and every cell stays in [0, 1] on one colour scale.

    Threads: the message handler runs in the scheduler's thread and only decodes the message and
    adds it to a lock-guarded store (no Qt calls); a QTimer in the GUI thread pulls from it
    ``update_rate`` times per second and repaints only when something new came, so any message rate
    costs at most ``update_rate`` repaints per second. Build the block in the GUI thread (GRC's QT
    GUI flowgraphs do); a QApplication is created if the process has none.

    model_path: the classifier's model, a path or a shipped model's name (``runtime.resolve_model``;
    empty: the shipped default, ``runtime.default_model_path``);
    only its metadata's class names are used (``runtime.decisions.decision_labels``), so give the
    sink the classifier's model. history_len: columns kept (int, 1 to 100,000). update_rate:
    repaints per second at most (Hz, > 0 and <= 1000). classes: names to show (list of str, any
    spelling ``canonical_class_name`` folds, ``noise``/``unknown`` included; empty = all, in the
    model's order). label: a title above the widget (str, empty = none).

    A message that is not such a dict (not a dict, ``probs`` missing, not an f32vector, of the wrong
    length or not finite, ``index`` out of range, ``class`` not the model's name for ``index``,
    ``confidence`` or ``snr_db`` not a number) is ignored, counted in ``bad_messages`` and logged
    with the field it fails on (the 1st, 10th, 100th and every 1000th); ``last_error`` keeps the
    latest reason. The handler never raises. ``messages`` counts the messages taken for display.

    Raises ValueError from the constructor for a bad argument, FileNotFoundError when the model
    (or the default) is missing, contract.ContractError for a file that is not a contract model.
    """

    def __init__(self, model_path="", history_len=200, update_rate=10.0, classes=(), label=""):
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

        self.model_path = resolve_model(model_path)
        # the names the classifier gives its decisions, index -1 = labels[-1] = unknown; the model is
        # dropped after: the sink runs nothing through it
        self.labels = tuple(decision_labels(load_model(self.model_path)))
        n_classes = len(self.labels) - 1
        rows = _shown_rows(self.labels, classes)
        if not any(self.labels[i] != UNKNOWN_CLASS for i in rows):
            raise ValueError(f"classes: name at least one of the model's classes ({', '.join(self.labels[:-1])}); "
                             f"got {list(classes)!r}")

        gr.basic_block.__init__(self, name="modrec_classification_sink", in_sig=None, out_sig=None)
        self.history_len = int(history_len)
        self.update_rate = update_rate
        self.classes = tuple(self.labels[i] for i in rows)  # the rows shown, in display order
        self.label = label
        self.messages = 0
        self.bad_messages = 0
        self.last_error = None
        self._log = gr.logger("modrec_classification_sink")
        # interned once: the handler may see thousands of messages per second
        self._fields = {name: pmt.intern(name) for name in
                        ("class", "index", "confidence", "probs", "snr_db", "sps_estimate", "sps_mismatch")}
        self._symbols = [pmt.intern(name) for name in self.labels]
        self._n_classes = n_classes
        self._mailbox = _Mailbox(n_classes)
        _qapplication()
        self._view = _ClassificationView(self._mailbox, self.labels, rows, self.history_len,
                                         _interval_ms(update_rate), label)
        port = pmt.intern(CLASSIFICATION_PORT)
        self.message_port_register_in(port)
        self.set_msg_handler(port, self.handle_message)

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

    def handle_message(self, msg):
        """The ``classification`` port's handler (the scheduler's thread): decode ``msg`` and store it
        for the next repaint, or count and log it as bad. Never raises, never touches a widget."""
        # an exception here would end the block's thread, and the display with it
        try:
            frame = self._decode(msg)
        except Exception as exc:  # noqa: BLE001 -- a bad message is logged, the next one may be good
            self._bad(msg, exc)
            return
        self._mailbox.put(frame)
        self.messages += 1

    def _decode(self, msg):
        # a PMT dict is an association list: empty (nil) or a list of (key . value) pairs
        if not pmt.is_dict(msg) or not (pmt.is_null(msg) or pmt.is_pair(pmt.car(msg))):
            raise _BadMessage("the message is not a dict")
        f = self._fields
        probs = pmt.dict_ref(msg, f["probs"], pmt.PMT_NIL)
        if pmt.is_null(probs):
            raise _BadMessage("field 'probs' is missing")
        if not pmt.is_f32vector(probs):
            raise _BadMessage("field 'probs' is not an f32vector")
        probs = np.asarray(pmt.f32vector_elements(probs), dtype=np.float32)
        if len(probs) != self._n_classes:
            raise _BadMessage(f"field 'probs' has {len(probs)} values, this sink's model has {self._n_classes} "
                              f"classes ({self.model_path}: give the sink the classifier's model)")
        if not np.isfinite(probs).all():
            raise _BadMessage("field 'probs' holds NaN or Inf")
        index = pmt.dict_ref(msg, f["index"], pmt.PMT_NIL)
        if pmt.is_uint64(index):
            index = pmt.to_uint64(index)
        elif pmt.is_integer(index):
            index = pmt.to_long(index)
        else:
            raise _BadMessage("field 'index' is missing or not an integer")
        if not -1 <= index < self._n_classes:
            raise _BadMessage(f"field 'index' is {index}, expected -1 (unknown) to {self._n_classes - 1}")
        name = pmt.dict_ref(msg, f["class"], pmt.PMT_NIL)
        if not pmt.eqv(name, self._symbols[index]):
            shown = pmt.symbol_to_string(name) if pmt.is_symbol(name) and not pmt.is_null(name) else \
                pmt.write_string(name)
            raise _BadMessage(f"field 'class' is {shown!r}, this sink's model calls index {index} "
                              f"{self.labels[index]!r} ({self.model_path}: give the sink the classifier's model)")
        confidence = _number(msg, f["confidence"], "confidence", required=True)
        snr = _number(msg, f["snr_db"], "snr_db")
        sps = _number(msg, f["sps_estimate"], "sps_estimate")
        mismatch = pmt.dict_ref(msg, f["sps_mismatch"], pmt.PMT_F)
        mismatch = pmt.is_bool(mismatch) and pmt.to_bool(mismatch)
        return _Frame(probs, int(index), confidence, snr, sps, mismatch)

    def _bad(self, msg, exc):
        self.bad_messages += 1
        self.last_error = str(exc)
        n = self.bad_messages
        if n in (1, 10, 100) or n % 1000 == 0:  # the log stays readable at thousands of messages/s
            name = f"'{self.label}'" if self.label else "classification_sink"
            self._log.error(f"{name}: message ignored: {exc} (expected the dict modrec.classifier publishes on "
                            f"'{CLASSIFICATION_PORT}'; got {pmt.write_string(msg)[:200]}); {n} ignored so far")


def _number(msg, key, field, required=False):
    """A dict entry as float, None when absent and not required; _BadMessage naming ``field`` otherwise."""
    value = pmt.dict_ref(msg, key, pmt.PMT_NIL)
    if pmt.is_null(value):
        if required:
            raise _BadMessage(f"field '{field}' is missing")
        return None
    if pmt.is_uint64(value):
        return float(pmt.to_uint64(value))
    if not pmt.is_number(value) or pmt.is_complex(value):
        raise _BadMessage(f"field '{field}' is not a number")
    return float(pmt.to_double(value))


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
