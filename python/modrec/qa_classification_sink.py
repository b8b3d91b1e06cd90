#!/usr/bin/env python3
#
# This file is a part of gr-modrec
#
# SPDX-License-Identifier: GPL-3.0-or-later
#

"""QA for modrec.classification_sink, headless (QT_QPA_PLATFORM=offscreen): a change of class read
back from the rendered widget (highlighted bar, history rows), one repaint for 10,000 tagged
frames and the bound on what a repaint decodes, the scheduler's thread against the GUI thread, a
version-1 model (no SNR), unknown and noise rows, bad tag values, real flowgraphs (tagged samples
-> sink; source -> classifier -> sink by the stream), bad arguments and the lazy registration.

The sink reads the classifier's stream tags: work() hands their values, undecoded, to the sink's
mailbox. Tests that need no scheduler put tags into that mailbox as work() does (_store); the
flowgraph tests go through work() itself."""

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before the QApplication: no display needed

import numpy as np  # noqa: E402
import pmt  # noqa: E402
from gnuradio import blocks, gr, gr_unittest  # noqa: E402
from PyQt5 import QtCore, QtGui, QtWidgets  # noqa: E402

_TESTS_DIR = Path(__file__).resolve().parents[2] / "tests"
# The shipped models, named by path: under ctest the package runs from the build tree, where the
# default-model search does not see the checkout's models/.
_MODEL_V2 = str(_TESTS_DIR.parent / "models" / "mobilenet1d-skd-v2.onnx")  # noise class, snr_db
_MODEL_V1 = str(_TESTS_DIR.parent / "models" / "mobilenet1d-skd.onnx")  # neither
if str(_TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(_TESTS_DIR))

from qa_import import package_block  # noqa: E402

modrec, classification_sink = package_block("classification_sink")

from flowgraph_run import finish_or_stop  # noqa: E402
from gnuradio.modrec.keepalive import flowgraph_owned  # noqa: E402

sink_module = sys.modules[classification_sink.__module__]  # the module: colours and colour maps
_APP = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["qa_classification_sink"])

L = 128
TOLERANCE = 12  # per RGB channel, for colours read back from the rendered image
KEY = "modrec"  # the classifier's default tag key, and the sink's


def _probs(labels, top, second=None, p_top=0.7, p_second=0.2):
    """float32 probs over the model's classes (labels without unknown): ``top`` p_top, ``second``
    p_second, the rest sharing what is left."""
    names = list(labels[:-1])
    probs = np.zeros(len(names), dtype=np.float32)
    rest = [i for i, n in enumerate(names) if n not in (top, second)]
    probs[names.index(top)] = p_top
    if second is not None:
        probs[names.index(second)] = p_second
    probs[rest] = (1.0 - probs.sum()) / len(rest)
    return probs


def _value(labels, probs, index=None, snr_db=None, frame_start=0, sps=None):
    """The dict modrec.classifier puts in its tags (classifier._ClassifierCore._classify); ``index``
    None = the top class, -1 = unknown; ``snr_db`` None leaves it out (a version-1 model); ``sps``
    an (estimate, mismatch) pair or None."""
    probs = np.asarray(probs, dtype=np.float32)
    index = int(np.argmax(probs)) if index is None else index
    value = pmt.make_dict()
    value = pmt.dict_add(value, pmt.intern("class"), pmt.intern(labels[index]))
    value = pmt.dict_add(value, pmt.intern("index"), pmt.from_long(index))
    value = pmt.dict_add(value, pmt.intern("confidence"), pmt.from_double(float(probs.max())))
    value = pmt.dict_add(value, pmt.intern("probs"), pmt.init_f32vector(len(probs), probs.tolist()))
    value = pmt.dict_add(value, pmt.intern("frame_len"), pmt.from_long(L))
    value = pmt.dict_add(value, pmt.intern("frame_start"), pmt.from_uint64(frame_start))
    if snr_db is not None:
        value = pmt.dict_add(value, pmt.intern("snr_db"), pmt.from_double(snr_db))
    if sps is not None:
        value = pmt.dict_add(value, pmt.intern("sps_estimate"), pmt.from_double(sps[0]))
        value = pmt.dict_add(value, pmt.intern("sps_mismatch"), pmt.from_bool(sps[1]))
    return value


def _without(value, key):
    return pmt.dict_delete(value, pmt.intern(key))


def _with(value, key, entry):
    return pmt.dict_add(value, pmt.intern(key), entry)


def _tag(value, offset=0, key=KEY):
    return gr.tag_utils.python_to_tag((offset, pmt.intern(key), value))


def _store(sink, values):
    """What the sink's work() does with the tags of one call: hand them to the mailbox, undecoded."""
    sink._mailbox.put([_tag(v, k * L) for k, v in enumerate(values)])


def _run_tagged(tb, sink, values, other_tags=()):
    """A real flowgraph: len(values) samples, values[k] tagged (key KEY) on sample k, plus
    ``other_tags``, from a vector source into ``sink``; runs it to the end. Returns the source."""
    tags = [_tag(v, k) for k, v in enumerate(values)] + list(other_tags)
    src = blocks.vector_source_c([0j] * len(values), False, 1, tags)
    tb.connect(src, sink)
    assert finish_or_stop(tb), "the flowgraph did not finish"
    return src


def _decoded_indices(n):
    """Which of n frames stored between two repaints one repaint decodes, by the scheme the sink
    documents: every k-th from the first (k the smallest power of two with ceil(n / k) <=
    MAX_DECODED - 1) and the latest."""
    k = 1
    while -(-n // k) > sink_module.MAX_DECODED - 1:
        k *= 2
    picked = list(range(0, n, k))
    return picked if picked[-1] == n - 1 else picked + [n - 1]


def _render(view):
    """The widget drawn at 900 x 700, as a QImage."""
    view.resize(900, 700)
    view.show()
    for _ in range(3):
        _APP.processEvents()
    return view.grab().toImage()


def _pixel(image, view, plot, x, y):
    """(r, g, b) of ``image`` (view.grab()) at the data point (x, y) of ``plot`` (a PlotWidget in view)."""
    scene = plot.getPlotItem().getViewBox().mapViewToScene(QtCore.QPointF(x, y))
    point = plot.viewport().mapTo(view, plot.mapFromScene(scene))
    ratio = image.devicePixelRatio()
    color = QtGui.QColor(image.pixel(int(point.x() * ratio), int(point.y() * ratio)))
    return color.red(), color.green(), color.blue()


def _brush_rgb(brush):
    color = brush.color()
    return color.red(), color.green(), color.blue()


def _lut(lut, value):
    return tuple(int(c) for c in lut[int(np.rint(value * 255))])


def _luma(rgb):
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _pump(seconds, until=lambda: False):
    """Run the Qt event loop (the view's timer) for up to ``seconds``, or until ``until()``."""
    deadline = time.monotonic() + seconds
    while not until() and time.monotonic() < deadline:
        _APP.processEvents()
        time.sleep(0.005)


@contextlib.contextmanager
def _captured_log():
    """GNU Radio's logger writes from C++ to fd 1 or 2 (gnuradio-runtime.conf's [LOG] log_file
    decides): capture both. Yields a list that holds the text afterwards."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    text = []
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield text
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            tmp.seek(0)
            text.append(tmp.read().decode(errors="replace"))


def _log_to_console():
    return gr.prefs().get_string("LOG", "log_file", "") in ("stdout", "stderr")


class _CountingTag:
    """A tag whose ``value`` counts its reads: what the mailbox touches per tag."""

    reads = 0

    def __init__(self, value):
        self._value = value

    @property
    def value(self):
        _CountingTag.reads += 1
        return self._value


class qa_classification_sink(gr_unittest.TestCase):
    def setUp(self):
        self.tb = gr.top_block()
        self._keep = None

    def tearDown(self):
        self.tb = None
        self._keep = None

    def assertColor(self, actual, expected, what):
        self.assertTrue(all(abs(a - e) <= TOLERANCE for a, e in zip(actual, expected)),
                        f"{what}: rendered {actual}, expected {expected}")

    def test_001_class_change_shows_in_the_bars_and_the_history(self):
        sink = classification_sink(_MODEL_V2, history_len=8, update_rate=1.0, label="AMR")
        labels, view = sink.labels, sink.qwidget()
        self.assertIs(sink.pyqwidget(), view)
        # three repaints of QPSK-dominant frames, then three of BPSK-dominant ones
        for top, second, snr in (("QPSK", "BPSK", 10.0), ("BPSK", "QPSK", 4.5)):
            for _ in range(3):
                _store(sink, [_value(labels, _probs(labels, top, second), snr_db=snr, frame_start=k * L)
                              for k in range(5)])
                self.assertTrue(view.refresh())
        self.assertEqual((sink.frames, view.frames, view.decoded, view.repaints, sink.bad_values), (30, 30, 30, 6, 0))
        self.assertEqual(view.class_label.text(), "BPSK")
        self.assertEqual(view.confidence_label.text(), "70.0 %")
        self.assertEqual(view.snr_label.text(), "SNR 4.5 dB")
        self.assertFalse(view.snr_label.isHidden())
        self.assertEqual(view.title_label.text(), "AMR")

        # bars: the item's brushes, then the rendered pixels
        bar_names = [labels[i] for i in view.bar_rows]
        self.assertEqual(bar_names, list(labels[:-1]))  # every class, noise last; unknown has no bar
        brushes = [_brush_rgb(b) for b in view.bar_item.opts["brushes"]]
        for name, rgb in zip(bar_names, brushes):
            expected = (sink_module.HIGHLIGHT_COLOR if name == "BPSK" else
                        sink_module.NOISE_COLOR if name == "noise" else sink_module.BAR_COLOR)
            self.assertEqual(rgb, expected, name)
        image = _render(view)
        bpsk, qpsk = bar_names.index("BPSK"), bar_names.index("QPSK")
        self.assertColor(_pixel(image, view, view.bar_plot, bpsk, 0.35), sink_module.HIGHLIGHT_COLOR, "BPSK bar")
        self.assertColor(_pixel(image, view, view.bar_plot, qpsk, 0.1), sink_module.BAR_COLOR, "QPSK bar")
        above = _pixel(image, view, view.bar_plot, bpsk, 0.85)  # above the 0.7 bar: background
        self.assertGreater(max(abs(a - h) for a, h in zip(above, sink_module.HIGHLIGHT_COLOR)), 100)

        # history: the numbers, then the rendered strip. Columns 0-1 never filled, 2-4 QPSK, 5-7 BPSK.
        rows = [labels[i] for i in view.rows]
        self.assertEqual(rows, list(labels))  # every class, noise then unknown last
        q, b = rows.index("QPSK"), rows.index("BPSK")
        self.assertTrue(np.isnan(view.history[:2]).all())
        np.testing.assert_allclose(view.history[2:5, [q, b]], [[0.7, 0.2]] * 3, atol=1e-6)
        np.testing.assert_allclose(view.history[5:, [q, b]], [[0.2, 0.7]] * 3, atol=1e-6)
        old, new = -4.5, -1.5  # centres of columns 3 and 6 (x = columns before now)
        for x, row, p, what in ((old, q, 0.7, "old QPSK"), (new, q, 0.2, "new QPSK"), (new, b, 0.7, "new BPSK")):
            self.assertColor(_pixel(image, view, view.history_plot, x, row + 0.5), _lut(sink_module.CLASS_LUT, p), what)
        # the brightest row of each column is the class of its frames: the strip moved from QPSK to BPSK
        for x, expected in ((old, "QPSK"), (new, "BPSK")):
            luma = [_luma(_pixel(image, view, view.history_plot, x, r + 0.5)) for r in range(len(rows))]
            self.assertEqual(rows[int(np.argmax(luma))], expected, f"column at {x}: {luma}")
            self.assertGreater(max(luma) - sorted(luma)[-2], 40)  # clearly brighter, not a tie
        # a never-filled column is the plot's background, not the colour of probability 0
        empty = _pixel(image, view, view.history_plot, -7.5, q + 0.5)
        self.assertGreater(max(abs(a - z) for a, z in zip(empty, _lut(sink_module.CLASS_LUT, 0.0))), 30)

    def test_002_ten_thousand_tagged_frames_one_repaint(self):
        # A real flowgraph: 10,000 samples, each tagged with a frame's value (7,500 QPSK, then 2,500
        # leaning BPSK but decided unknown), plus tags of another key that the sink must skip.
        sink = classification_sink(_MODEL_V2, history_len=16, update_rate=1.0)
        labels, view = sink.labels, sink.qwidget()
        qpsk = _probs(labels, "QPSK", "BPSK")
        leaning = _probs(labels, "BPSK", "QPSK", p_top=0.4, p_second=0.3)
        values = [_value(labels, qpsk, snr_db=12.0, frame_start=k) for k in range(7500)]
        values += [_value(labels, leaning, index=-1, snr_db=12.0, frame_start=k) for k in range(7500, 10000)]
        truth = [_tag(pmt.intern("QPSK"), k, key="truth") for k in range(0, 10000, 500)]
        self._keep = _run_tagged(self.tb, sink, values, truth)
        # work() only stored: no repaint, no widget touched, nothing decoded
        self.assertEqual((sink.frames, view.repaints, view.frames, view.decoded), (10000, 0, 0, 0))
        self.assertEqual(view.class_label.text(), "-")
        self.assertTrue(np.isnan(view.history).all())

        self.assertTrue(view.refresh())  # one timer tick
        picked = _decoded_indices(10000)
        self.assertEqual((view.repaints, view.frames, view.decoded), (1, 10000, len(picked)))
        self.assertLessEqual(view.decoded, sink_module.MAX_DECODED)
        self.assertTrue(np.isnan(view.history[:-1]).all())  # exactly one column
        unknown = [k >= 7500 for k in picked]
        expected = np.append((np.sum(np.logical_not(unknown)) * qpsk.astype(np.float64) + np.sum(unknown) * leaning)
                             / len(picked), np.mean(unknown))  # mean of the decoded frames; their unknown share
        np.testing.assert_allclose(view.history[-1], expected[view.rows], atol=1e-6)
        self.assertEqual(view.class_label.text(), "unknown")  # the latest frame
        self.assertFalse(view.refresh())  # nothing new: no repaint
        self.assertEqual(view.repaints, 1)

        # the real timer drives it: one new frame, one repaint, then none while nothing comes
        sink.set_update_rate(50.0)
        self.assertEqual(view._timer.interval(), 20)
        _store(sink, [_value(labels, qpsk, snr_db=12.0)])
        _pump(10.0, until=lambda: view.repaints >= 2)
        self.assertEqual(view.repaints, 2)
        self.assertEqual(view.class_label.text(), "QPSK")
        _pump(0.3)  # 15 ticks at 50 Hz
        self.assertEqual((view.repaints, view.frames, sink.frames), (2, 10001, 10001))

    def test_003_scheduler_thread_against_the_gui_thread(self):
        # What work() does in the scheduler's thread (tags of one call into the mailbox, in calls of
        # varied sizes), against refreshes in this (GUI) thread: no frame lost or counted twice
        # between the lock-guarded store and the timer's take, and no refresh decodes more than
        # MAX_DECODED values however many frames came.
        sink = classification_sink(_MODEL_V2, history_len=50, update_rate=1.0)
        labels, view = sink.labels, sink.qwidget()
        values = [_value(labels, _probs(labels, top), snr_db=3.0) for top in ("QPSK", "BPSK", "noise", "GFSK")]
        tags = [_tag(values[k % len(values)], k * L) for k in range(20000)]
        sizes = (1, 3, 64, 7, 200, 2, 1000)

        def feed():
            k = i = 0
            while k < len(tags):
                size = sizes[i % len(sizes)]
                sink._mailbox.put(tags[k:k + size])
                k, i = k + size, i + 1

        worker = threading.Thread(target=feed)
        worker.start()
        most = 0
        while worker.is_alive():
            before = view.decoded
            view.refresh()
            most = max(most, view.decoded - before)
        worker.join()
        view.refresh()
        self.assertEqual((sink.frames, view.frames, sink.bad_values), (20000, 20000, 0))
        self.assertGreaterEqual(view.repaints, 1)
        self.assertLessEqual(most, sink_module.MAX_DECODED)

    def test_004_version1_model_shows_no_snr(self):
        sink = classification_sink(_MODEL_V1, history_len=4, update_rate=1.0)
        labels, view = sink.labels, sink.qwidget()
        self.assertNotIn("noise", labels)
        self.assertEqual(labels[-1], "unknown")
        _store(sink, [_value(labels, _probs(labels, "8PSK", "QPSK"))])  # no snr_db
        self.assertTrue(view.refresh())
        self.assertEqual(view.class_label.text(), "8PSK")
        self.assertEqual(view.confidence_label.text(), "70.0 %")
        self.assertEqual(view.snr_label.text(), "")
        self.assertTrue(view.snr_label.isHidden())
        self.assertTrue(view.note_label.isHidden())
        self.assertEqual([labels[i] for i in view.rows], list(labels))  # the unknown row, no noise row
        _render(view)
        self.assertFalse(view.confidence_label.isHidden())
        self.assertTrue(view.snr_label.isHidden())

    def test_005_unknown_and_noise_rows(self):
        sink = classification_sink(_MODEL_V2, history_len=4, update_rate=1.0,
                                   classes=["unknown", "qpsk", "Noise", "BPSK"])
        labels, view = sink.labels, sink.qwidget()
        # the model's order, noise and unknown last, whatever the order and spelling asked for
        self.assertEqual(sink.classes, ("BPSK", "QPSK", "noise", "unknown"))
        self.assertEqual([labels[i] for i in view.bar_rows], ["BPSK", "QPSK", "noise"])
        rows = list(sink.classes)
        leaning = _probs(labels, "QPSK", "BPSK", p_top=0.45, p_second=0.3)
        # frames the model leaned to QPSK on but were called unknown
        _store(sink, [_value(labels, leaning, index=-1, snr_db=float("nan")) for _ in range(4)])
        view.refresh()
        self.assertEqual(view.class_label.text(), "unknown")
        # its confidence is QPSK's probability: shown as what the model leaned to, not as sure of "unknown"
        self.assertEqual(view.confidence_label.text(), "leaned QPSK 45.0 %")
        self.assertEqual(view.snr_label.text(), "SNR n/a")  # a NaN estimate
        brushes = dict(zip(["BPSK", "QPSK", "noise"], (_brush_rgb(b) for b in view.bar_item.opts["brushes"])))
        self.assertEqual(brushes, {"BPSK": sink_module.BAR_COLOR, "QPSK": sink_module.UNKNOWN_COLOR,
                                   "noise": sink_module.NOISE_COLOR})
        np.testing.assert_allclose(view.history[-1], [0.3, 0.45, leaning[labels.index("noise")], 1.0], atol=1e-6)

        _store(sink, [_value(labels, _probs(labels, "noise", "QPSK", p_top=0.9, p_second=0.05), snr_db=-20.0,
                             sps=(3.9, True))])
        view.refresh()
        self.assertEqual(view.class_label.text(), "noise")
        self.assertEqual(_brush_rgb(view.bar_item.opts["brushes"][2]), sink_module.HIGHLIGHT_COLOR)
        self.assertEqual(view.note_label.text(), "wrong oversampling: ~3.9 samples/symbol")
        # one unknown frame in four: the unknown row holds the share
        _store(sink, [_value(labels, leaning if k == 0 else _probs(labels, "BPSK"), index=-1 if k == 0 else None,
                             snr_db=5.0) for k in range(4)])
        view.refresh()
        self.assertAlmostEqual(view.history[-1, rows.index("unknown")], 0.25)
        self.assertTrue(view.note_label.isHidden())

        image = _render(view)
        u, n = rows.index("unknown"), rows.index("noise")
        # column -2.5: the unknown frames; -1.5: the noise frame; the unknown row is magenta, noise grey
        self.assertColor(_pixel(image, view, view.history_plot, -2.5, u + 0.5), _lut(sink_module.UNKNOWN_LUT, 1.0),
                         "unknown row, unknown frames")
        self.assertColor(_pixel(image, view, view.history_plot, -1.5, u + 0.5), _lut(sink_module.UNKNOWN_LUT, 0.0),
                         "unknown row, noise frame")
        self.assertColor(_pixel(image, view, view.history_plot, -1.5, n + 0.5), _lut(sink_module.NOISE_LUT, 0.9),
                         "noise row, noise frame")
        self.assertColor(_pixel(image, view, view.history_plot, -0.5, u + 0.5), _lut(sink_module.UNKNOWN_LUT, 0.25),
                         "unknown row, one in four")
        # the unknown colour is not a class colour at any probability
        self.assertTrue(all(max(abs(int(a) - int(b)) for a, b in zip(_lut(sink_module.UNKNOWN_LUT, 1.0), row)) > 60
                            for row in sink_module.CLASS_LUT))

    def test_006_bad_values_are_logged_and_never_raise(self):
        sink = classification_sink(_MODEL_V2, update_rate=1.0)
        labels, view = sink.labels, sink.qwidget()
        good = _value(labels, _probs(labels, "QPSK"), snr_db=1.0)
        cases = [
            (pmt.from_long(7), "the tag value is not a dict"),
            (pmt.cons(pmt.intern("probs"), pmt.from_long(1)), "not a dict"),
            (_without(good, "probs"), "field 'probs' is missing"),
            (_with(good, "probs", pmt.init_f64vector(12, [1 / 12] * 12)), "field 'probs' is not an f32vector"),
            (_with(good, "probs", pmt.init_f32vector(11, [1 / 11] * 11)), "field 'probs' has 11 values"),
            (_with(good, "probs", pmt.init_f32vector(12, [float("nan")] * 12)), "field 'probs' holds NaN"),
            (_without(good, "index"), "field 'index' is missing"),
            (_with(good, "index", pmt.from_long(12)), "field 'index' is 12"),
            (_with(good, "class", pmt.intern("BPSK")), "field 'class' is 'BPSK'"),
            (_without(good, "confidence"), "field 'confidence' is missing"),
            (_with(good, "snr_db", pmt.intern("high")), "field 'snr_db' is not a number"),
        ]
        with _captured_log() as log:
            for k, (value, reason) in enumerate(cases, 1):
                _store(sink, [value])  # stored undecoded: found bad when the repaint decodes it
                self.assertEqual(sink.bad_values, k - 1)
                self.assertFalse(view.refresh())  # returns, never raises; nothing good to draw
                self.assertEqual(sink.bad_values, k)
                self.assertIn(reason, sink.last_error)
        self.assertEqual((sink.frames, view.frames, view.decoded, view.repaints), (len(cases), len(cases),
                                                                                  len(cases), 0))
        if _log_to_console():
            # the 1st and the 10th are logged, naming the field and the count
            self.assertIn("tag value ignored: the tag value is not a dict", log[0])
            self.assertIn("field 'confidence' is missing", log[0])
            self.assertIn("10 ignored so far", log[0])
            self.assertNotIn("field 'index' is 12", log[0])  # the 8th: not logged
        _store(sink, [good])  # the view still works
        self.assertTrue(view.refresh())
        self.assertEqual(view.class_label.text(), "QPSK")

        # a bad latest frame: the bars show the latest good one, the bad one is counted
        _store(sink, [_value(labels, _probs(labels, "BPSK"), snr_db=2.0), cases[0][0]])
        self.assertTrue(view.refresh())
        self.assertEqual((view.class_label.text(), sink.bad_values), ("BPSK", len(cases) + 1))

        # the real timer slot meets a bad value: counted, no exception out of the slot (PyQt would abort)
        sink.set_update_rate(100.0)
        _store(sink, [cases[2][0]])
        with _captured_log():
            _pump(5.0, until=lambda: sink.bad_values == len(cases) + 2)
        self.assertEqual(sink.bad_values, len(cases) + 2)
        self.assertIn("field 'probs' is missing", sink.last_error)

        # a sink given another model than the classifier's: the length error says so
        other = classification_sink(_MODEL_V1, update_rate=1.0)
        _store(other, [good])
        with _captured_log() as log:
            self.assertFalse(other.qwidget().refresh())
        self.assertIn("field 'probs' has 12 values, this sink's model has 11 classes", other.last_error)
        self.assertIn("give the sink the classifier's model", other.last_error)
        if _log_to_console():
            self.assertIn("field 'probs' has 12 values", log[0])

    def test_007_flowgraph_classifier_to_sink_by_the_stream(self):
        rng = np.random.default_rng(1)
        n_frames = 12  # fewer than MAX_DECODED: all decoded
        data = ((rng.standard_normal(n_frames * L) + 1j * rng.standard_normal(n_frames * L)) *
                np.repeat(rng.uniform(0.05, 2.0, n_frames), L)).astype(np.complex64)
        src = blocks.vector_source_c(data.tolist(), False)
        clf = modrec.classifier(_MODEL_V2, tag_key="amr")
        null = blocks.null_sink(gr.sizeof_gr_complex)
        sink = classification_sink(_MODEL_V2, history_len=10, update_rate=1.0, tag_key="amr")
        deaf = classification_sink(_MODEL_V2, update_rate=1.0)  # the default key, not this classifier's
        dbg = blocks.message_debug()  # the classifier's messages: the same dicts as its tags
        self.tb.connect(src, clf, null)
        self.tb.connect(clf, sink)  # as a frequency sink is connected
        self.tb.connect(clf, deaf)
        self.tb.msg_connect(clf, "classification", dbg, "store")
        self._keep = (src, clf, null, sink, deaf, dbg)
        self.assertTrue(finish_or_stop(self.tb))
        # the tags came with the samples: all there once the flowgraph finished
        self.assertEqual((sink.frames, deaf.frames), (n_frames, 0))
        deadline = time.monotonic() + 10.0  # messages may still be in the ports' queues
        while dbg.num_messages() < n_frames and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(dbg.num_messages(), n_frames)
        view = sink.qwidget()
        self.assertTrue(view.refresh())
        self.assertFalse(deaf.qwidget().refresh())
        self.assertEqual((view.frames, view.decoded, sink.bad_values), (n_frames, n_frames, 0))
        msgs = [dbg.get_message(k) for k in range(n_frames)]
        probs = np.array([pmt.f32vector_elements(pmt.dict_ref(m, pmt.intern("probs"), pmt.PMT_NIL)) for m in msgs])
        index = [pmt.to_long(pmt.dict_ref(m, pmt.intern("index"), pmt.PMT_NIL)) for m in msgs]
        unknown = np.mean(np.asarray(index) < 0)
        np.testing.assert_allclose(view.history[-1], np.append(probs.mean(axis=0), unknown)[view.rows], atol=1e-5)
        last = msgs[-1]
        self.assertEqual(view.class_label.text(),
                         pmt.symbol_to_string(pmt.dict_ref(last, pmt.intern("class"), pmt.PMT_NIL)))
        snr = pmt.to_double(pmt.dict_ref(last, pmt.intern("snr_db"), pmt.PMT_NIL))
        self.assertEqual(view.snr_label.text(), f"SNR {snr:.1f} dB")
        top = index[-1] if index[-1] >= 0 else int(np.argmax(probs[-1]))
        color = sink_module.HIGHLIGHT_COLOR if index[-1] >= 0 else sink_module.UNKNOWN_COLOR
        brushes = [_brush_rgb(b) for b in view.bar_item.opts["brushes"]]
        self.assertEqual([k for k, rgb in enumerate(brushes) if rgb == color], [view.bar_rows.index(top)])
        image = _render(view)
        if probs[-1][top] > 0.1:  # a bar tall enough to hit
            self.assertColor(_pixel(image, view, view.bar_plot, view.bar_rows.index(top), probs[-1][top] / 2),
                             color, "the decided class's bar")

    def test_008_bad_arguments_raise(self):
        for kwargs, message in [
            (dict(history_len=0), "history_len"),
            (dict(history_len=100001), "history_len"),
            (dict(history_len=2.5), "history_len"),
            (dict(history_len=True), "history_len"),
            (dict(update_rate=0), "update_rate"),
            (dict(update_rate=-1.0), "update_rate"),
            (dict(update_rate=float("nan")), "update_rate"),
            (dict(update_rate=2000.0), "update_rate"),
            (dict(update_rate="10"), "update_rate"),
            (dict(classes="QPSK"), "classes: expected a list"),
            (dict(classes=["QPSK", 3]), "classes: expected a list"),
            (dict(classes=["FOO"]), "'FOO' is not one of this model's labels"),
            (dict(classes=["unknown"]), "at least one of the model's classes"),
            (dict(label=3), "label"),
            (dict(model_path=3), "model_path"),
            (dict(tag_key=""), "tag_key: expected the classifier's tag key"),
            (dict(tag_key="  "), "tag_key"),
            (dict(tag_key=None), "tag_key"),
        ]:
            with self.assertRaisesRegex(ValueError, message):
                classification_sink(**({"model_path": _MODEL_V2} | kwargs))
        with self.assertRaisesRegex(FileNotFoundError, "does not exist"):
            classification_sink(str(_TESTS_DIR / "no_such_model.onnx"))

    def test_009_registered_lazily_in_the_package(self):
        self.assertIn("classification_sink", dir(modrec))
        self.assertTrue(issubclass(classification_sink, gr.sync_block))
        self.assertTrue(issubclass(classification_sink, flowgraph_owned))
        # one way in: a complex64 stream input, no output, no message port
        sink = classification_sink(_MODEL_V2)
        self.assertEqual((sink.input_signature().max_streams(), sink.input_signature().sizeof_stream_item(0),
                          sink.output_signature().max_streams()), (1, gr.sizeof_gr_complex, 0))
        ports = pmt.to_python(sink.message_ports_in())
        self.assertNotIn("classification", ports)
        self.assertEqual(sink.tag_key, KEY)
        # importing the package (and the classifier) must not import Qt: flowgraphs without a GUI
        site = Path(modrec.__file__).parents[2]
        code = ("import sys\nfrom gnuradio import modrec\nmodrec.classifier\nprint(modrec.__file__)\n"
                "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PyQt5', 'pyqtgraph')))\n")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        where, qt = result.stdout.strip().splitlines()[-2:]
        self.assertEqual(Path(where), Path(modrec.__file__))
        self.assertEqual(qt, "[]")

    def test_010_a_repaint_decodes_a_bounded_evenly_spread_few(self):
        # 10,000 frames stored between two repaints, each with its own probs (QPSK's rising with the
        # frame's number) and every third decided unknown: the repaint decodes at most MAX_DECODED,
        # every k-th and the latest, and the column is the mean of exactly those.
        n, limit = 10000, sink_module.MAX_DECODED
        sink = classification_sink(_MODEL_V2, history_len=4, update_rate=1.0)
        labels, view = sink.labels, sink.qwidget()
        q, b = labels.index("QPSK"), labels.index("BPSK")
        probs = np.full((n, len(labels) - 1), 0.1 / (len(labels) - 3), dtype=np.float32)
        probs[:, q] = 0.1 + 0.8 * np.arange(n) / n
        probs[:, b] = 0.9 - probs[:, q]
        unknown = np.arange(n) % 3 == 0
        _store(sink, [_value(labels, probs[k], index=-1 if unknown[k] else None) for k in range(n)])
        self.assertTrue(view.refresh())
        picked = _decoded_indices(n)
        self.assertEqual((view.frames, view.decoded, len(picked)), (n, 11, 11))  # every 1024th and the last
        self.assertLessEqual(view.decoded, limit)
        gaps = np.diff(picked[:-1])
        self.assertTrue((gaps == 1024).all() and picked[0] == 0 and picked[-1] == n - 1)
        expected = np.append(probs[picked].mean(axis=0, dtype=np.float64), unknown[picked].mean())
        np.testing.assert_allclose(view.history[-1], expected[view.rows], atol=1e-9)
        everything = np.append(probs.mean(axis=0, dtype=np.float64), unknown.mean())
        self.assertGreater(np.abs(view.history[-1] - everything[view.rows]).max(), 5e-3)  # not all 10,000
        self.assertEqual(view.class_label.text(), "unknown")  # frame 9999: 9999 % 3 == 0

        # The mailbox: the same frames picked whatever work() calls brought them, at most
        # MAX_DECODED, the latest always, and few values read per call (no per-tag work).
        for count in (1, 2, 63, 64, 65, 127, 128, 1000, 4097, n):
            expected_picks = _decoded_indices(count)
            self.assertLessEqual(len(expected_picks), limit)
            if count <= limit - 1:
                self.assertEqual(expected_picks, list(range(count)))  # few frames: all of them
            for sizes in ((count,), (1,), (3, 64, 1, 500)):
                box = sink_module._Mailbox()
                k = i = 0
                while k < count:
                    size = sizes[i % len(sizes)]
                    box.put([_tag(pmt.from_long(j), j) for j in range(k, min(count, k + size))])
                    k, i = k + size, i + 1
                values, frames = box.take()
                self.assertEqual(([pmt.to_long(v) for v in values], frames), (expected_picks, count), (count, sizes))
                self.assertIsNone(box.take())
        box = sink_module._Mailbox()
        _CountingTag.reads = 0
        box.put([_CountingTag(j) for j in range(n)])  # one work() call with 10,000 tags
        self.assertLessEqual(_CountingTag.reads, limit)
        self.assertEqual(box.take()[0], _decoded_indices(n))
        self.assertEqual(box.total, n)


if __name__ == "__main__":
    gr_unittest.run(qa_classification_sink)
