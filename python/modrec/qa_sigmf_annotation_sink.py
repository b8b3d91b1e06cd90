#!/usr/bin/env python3
#
# This file is a part of gr-modrec
#
# SPDX-License-Identifier: GPL-3.0-or-later
#

"""QA for modrec.sigmf_annotation_sink: the classifier's tags become merged SigMF annotations
that agree with the tags, exact merging of hand-made tags, rewriting on a restart, a dataset
written by a File Sink in the same flowgraph, and bad arguments."""

import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

_TESTS_DIR = Path(__file__).resolve().parents[2] / "tests"
# The shipped default student, named by path: under ctest the package runs from the build tree,
# where the default-model search does not see the checkout's models/.
_SHIPPED_MODEL = str(_TESTS_DIR.parent / "models" / "mobilenet1d-skd.onnx")
if str(_TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(_TESTS_DIR))

from qa_import import package_block  # noqa: E402

modrec, sigmf_annotation_sink = package_block("sigmf_annotation_sink")

from flowgraph_run import finish_or_stop  # noqa: E402
from gnuradio.modrec.classes import UNKNOWN_CLASS  # noqa: E402
from gnuradio.modrec.runtime.annotations import MODREC_EXTENSION, Decision, merge_decisions  # noqa: E402
from sigmf import sigmffile  # noqa: E402

L = 128
RATE = 1e6


def _noise(n, seed=0):
    rng = np.random.default_rng(seed)
    # Non-stationary so that frames get different classes and merging has work to do.
    gain = np.repeat(rng.uniform(0.1, 3.0, n // 300 + 1), 300)[:n]
    phase = np.cumsum(rng.uniform(-0.5, 0.5, n))
    x = gain * np.exp(1j * phase) + 0.3 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    return x.astype(np.complex64)


def _tag(offset, value, key="modrec"):
    tag = gr.tag_t()
    tag.offset = offset
    tag.key = pmt.intern(key)
    tag.value = value
    return tag


def _frame_value(label, frame_len=L, confidence=0.5, uint=False):
    value = pmt.make_dict()
    value = pmt.dict_add(value, pmt.intern("class"), pmt.intern(label))
    value = pmt.dict_add(value, pmt.intern("frame_len"), pmt.from_uint64(frame_len) if uint else pmt.from_long(frame_len))
    value = pmt.dict_add(value, pmt.intern("confidence"), pmt.from_double(confidence))
    return value


def _load(meta):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        handle = sigmffile.fromfile(meta)
        handle.validate()
    return handle


def _spans(annotations):
    return [(a["core:sample_start"], a["core:sample_count"], a["core:label"], a["modrec:frames"]) for a in annotations]


class qa_sigmf_annotation_sink(gr_unittest.TestCase):
    def setUp(self):
        self.tb = gr.top_block()
        self.dir = tempfile.mkdtemp(prefix="qa_sigmf_sink_")
        self.meta = os.path.join(self.dir, "rec.sigmf-meta")

    def tearDown(self):
        self.tb = None
        self._keep = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_tb(self, timeout=20.0):
        """tb.run() that fails instead of hanging when the flowgraph never finishes."""
        if not finish_or_stop(self.tb, timeout):
            self.fail(f"flowgraph did not finish within {timeout} s")

    def test_001_classifier_tags_become_merged_annotations(self):
        data = _noise(31 * L + 50)
        data_path = os.path.join(self.dir, "rec.cfile")
        src = blocks.vector_source_c(data.tolist(), False)
        clf = modrec.classifier(_SHIPPED_MODEL)
        tap = blocks.vector_sink_c()
        fsink = blocks.file_sink(gr.sizeof_gr_complex, data_path, False)
        fsink.set_unbuffered(True)
        snk = sigmf_annotation_sink(self.meta, RATE, data_path=data_path, model_name=os.path.basename(clf.model_path),
                                    center_frequency=433.92e6)
        self.tb.connect(src, clf, snk)
        self.tb.connect(clf, tap)
        self.tb.connect(clf, fsink)
        # Python blocks die with their last reference and take the scheduler with them.
        self._keep = (src, clf, tap, fsink, snk)
        self.run_tb()
        fsink.close()

        self.assertEqual(snk.samples_seen, len(data))
        self.assertEqual((snk.writes, snk.skipped_tags, snk.last_error), (1, 0, None))
        # The classifier's own tags, merged, are what the file says.
        tags = sorted((t for t in tap.tags() if pmt.symbol_to_string(t.key) == "modrec"), key=lambda t: t.offset)
        self.assertEqual([t.offset for t in tags], list(range(0, 31 * L, L)))
        expected = merge_decisions(
            Decision(t.offset, pmt.to_long(pmt.dict_ref(t.value, pmt.intern("frame_len"), pmt.PMT_NIL)),
                     pmt.symbol_to_string(pmt.dict_ref(t.value, pmt.intern("class"), pmt.PMT_NIL)),
                     pmt.to_double(pmt.dict_ref(t.value, pmt.intern("confidence"), pmt.PMT_NIL)))
            for t in tags)
        handle = _load(self.meta)
        anns = handle.get_annotations()
        self.assertEqual(_spans(anns), [(s.start, s.count, s.label, s.frames) for s in expected])
        for ann, seg in zip(anns, expected):
            self.assertAlmostEqual(ann["modrec:confidence"], seg.mean_confidence, places=6)
            self.assertEqual(ann["modrec:model"], "mobilenet1d-skd.onnx")
        # Merged: the frames tile [0, 31 L) and neighbours always differ in class.
        self.assertEqual(anns[0]["core:sample_start"], 0)
        for a, b in zip(anns, anns[1:]):
            self.assertEqual(a["core:sample_start"] + a["core:sample_count"], b["core:sample_start"])
            self.assertNotEqual(a["core:label"], b["core:label"])
        self.assertEqual(anns[-1]["core:sample_start"] + anns[-1]["core:sample_count"], 31 * L)
        self.assertEqual(sum(a["modrec:frames"] for a in anns), 31)
        self.assertLess(len(anns), 31)  # something did merge
        # The metadata points at the File Sink's output, a non-conforming dataset.
        glob = handle.get_global_info()
        self.assertEqual((glob["core:dataset"], glob["core:datatype"], glob["core:sample_rate"]), ("rec.cfile", "cf32_le", RATE))
        self.assertIn(MODREC_EXTENSION, glob["core:extensions"])
        self.assertEqual(handle.get_captures(), [{"core:sample_start": 0, "core:frequency": 433.92e6}])
        self.assertTrue(np.array_equal(handle.read_samples(), data))

    def test_002_restart_rewrites_the_file_for_the_new_run_only(self):
        src = blocks.vector_source_c(_noise(20 * L).tolist(), False)
        clf = modrec.classifier(_SHIPPED_MODEL)
        snk = sigmf_annotation_sink(self.meta, RATE)
        self.tb.connect(src, clf, snk)
        self._keep = (src, clf, snk)
        self.run_tb()
        first = _load(self.meta).get_annotations()
        self.assertEqual(sum(a["modrec:frames"] for a in first), 20)
        self.assertEqual(first[-1]["core:sample_start"] + first[-1]["core:sample_count"], 20 * L)

        # Second run on a shorter stream: offsets restart at 0 and nothing of run 1 survives.
        src.set_data(_noise(6 * L, seed=1).tolist())
        src.rewind()
        self.run_tb()
        self.assertEqual(snk.writes, 2)
        self.assertEqual(snk.samples_seen, 6 * L)
        second = _load(self.meta).get_annotations()
        self.assertEqual(sum(a["modrec:frames"] for a in second), 6)
        self.assertEqual(second[-1]["core:sample_start"] + second[-1]["core:sample_count"], 6 * L)
        self.assertEqual(sorted(os.listdir(self.dir)), ["rec.sigmf-meta"])  # no temporary files left

    def test_003_hand_made_tags_merge_exactly(self):
        n = 20 * L
        tags = [
            _tag(0, _frame_value("BPSK", confidence=0.2)),
            _tag(L, _frame_value("BPSK", confidence=0.4, uint=True)),          # adjacent: merges
            _tag(2 * L + 1, _frame_value("BPSK", confidence=0.9)),              # 1-sample gap: new segment
            _tag(4 * L, _frame_value(UNKNOWN_CLASS, confidence=0.1)),
            _tag(5 * L, _frame_value(UNKNOWN_CLASS, confidence=0.3)),          # unknown kept, merged
            _tag(6 * L, _frame_value("QPSK", frame_len=2 * L, confidence=0.6)),
            _tag(7 * L, _frame_value("QPSK", frame_len=2 * L, confidence=0.8)),  # overlap: merges to 9 L
            _tag(8 * L, _frame_value("AM-DSB")),                                # overlaps QPSK, other class
            _tag(9 * L, _frame_value("BPSK")),
            _tag(3 * L, pmt.from_long(7)),                                       # not a dict: skipped
            _tag(3 * L, _frame_value("QAM16", frame_len=0)),                     # bad frame_len: skipped
            _tag(3 * L, _frame_value("QAM16", confidence=1.5)),                  # bad confidence: skipped
            _tag(3 * L, _frame_value("QAM64"), key="other"),                    # another key: ignored
        ]
        src = blocks.vector_source_c([0j] * n, False, 1, tags)
        snk = sigmf_annotation_sink(self.meta, RATE, model_name="hand")
        snk.set_max_noutput_items(100)  # tags spread over many work() calls
        self.tb.connect(src, snk)
        self._keep = (src, snk)
        self.run_tb()
        self.assertEqual(snk.skipped_tags, 3)
        self.assertEqual(snk.samples_seen, n)
        anns = _load(self.meta).get_annotations()
        self.assertEqual(_spans(anns), [
            (0, 2 * L, "BPSK", 2),
            (2 * L + 1, L, "BPSK", 1),
            (4 * L, 2 * L, UNKNOWN_CLASS, 2),
            (6 * L, 3 * L, "QPSK", 2),
            (8 * L, L, "AM-DSB", 1),
            (9 * L, L, "BPSK", 1),
        ])
        self.assertAlmostEqual(anns[0]["modrec:confidence"], 0.3)
        self.assertAlmostEqual(anns[3]["modrec:confidence"], 0.7)
        self.assertEqual({a["modrec:model"] for a in anns}, {"hand"})

    def test_004_custom_key_conforming_dataset_and_no_frequency(self):
        tags = [_tag(0, _frame_value("GFSK"), key="amr"), _tag(L, _frame_value("GFSK"), key="amr"),
                _tag(0, _frame_value("QPSK"))]  # default key: not ours here
        data_path = os.path.join(self.dir, "rec.sigmf-data")
        src = blocks.vector_source_c([1j] * (2 * L), False, 1, tags)
        fsink = blocks.file_sink(gr.sizeof_gr_complex, data_path, False)
        snk = sigmf_annotation_sink(self.meta, RATE, tag_key="amr", data_path=data_path)
        self.tb.connect(src, snk)
        self.tb.connect(src, fsink)
        self._keep = (src, fsink, snk)
        self.run_tb()
        fsink.close()
        handle = _load(self.meta)
        self.assertNotIn("core:dataset", handle.get_global_info())
        self.assertEqual(handle.get_captures(), [{"core:sample_start": 0}])
        self.assertEqual(_spans(handle.get_annotations()), [(0, 2 * L, "GFSK", 2)])
        self.assertNotIn("modrec:model", handle.get_annotations()[0])
        self.assertEqual(handle.sample_count, 2 * L)

    def test_005_failed_write_is_reported_not_raised(self):
        sub = os.path.join(self.dir, "gone")
        os.mkdir(sub)
        src = blocks.vector_source_c([0j] * L, False, 1, [_tag(0, _frame_value("BPSK"))])
        snk = sigmf_annotation_sink(os.path.join(sub, "x.sigmf-meta"), RATE)
        self.tb.connect(src, snk)
        self._keep = (src, snk)
        os.rmdir(sub)
        self.run_tb()
        self.assertIsInstance(snk.last_error, OSError)
        self.assertEqual(snk.writes, 0)

    def test_006_bad_arguments_raise(self):
        good = dict(meta_path=self.meta, sample_rate=RATE)
        for kwargs, message in [
            (dict(meta_path=""), "meta_path"),
            (dict(meta_path=os.path.join(self.dir, "rec.json")), "meta_path"),
            (dict(meta_path=self.dir), "meta_path"),
            (dict(sample_rate=0), "sample_rate"),
            (dict(sample_rate=-1e6), "sample_rate"),
            (dict(sample_rate=float("nan")), "sample_rate"),
            (dict(sample_rate="1e6"), "sample_rate"),
            (dict(tag_key=""), "tag_key"),
            (dict(datatype=""), "datatype"),
            (dict(center_frequency=float("inf")), "center_frequency"),
            (dict(model_name=3), "model_name"),
            (dict(data_path=os.path.join(tempfile.gettempdir(), "elsewhere.cfile")), "data_path"),
            (dict(data_path=self.meta), "data_path"),
        ]:
            with self.assertRaisesRegex(ValueError, message):
                sigmf_annotation_sink(**(good | kwargs))
        with self.assertRaisesRegex(OSError, "does not exist"):
            sigmf_annotation_sink(os.path.join(self.dir, "missing", "x.sigmf-meta"), RATE)
        self.assertEqual(os.listdir(self.dir), [])  # the writability probe cleans up

    def test_007_lock_unlock_writes_and_starts_over(self):
        # An endless, throttled stream with one frame tag per L samples.
        src = blocks.vector_source_c([0j] * L, True, 1, [_tag(0, _frame_value("BPSK"))])
        thr = blocks.throttle(gr.sizeof_gr_complex, 2e6)
        snk = sigmf_annotation_sink(self.meta, RATE)
        self.tb.connect(src, thr, snk)
        self._keep = (src, thr, snk)
        self.tb.start()
        time.sleep(0.15)
        self.tb.lock()
        self.tb.unlock()  # GNU Radio 3.10: stop() then start(), item counters back at 0
        time.sleep(0.1)
        self.assertEqual(snk.writes, 1)
        self.tb.stop()
        self.tb.wait()
        self.assertEqual(snk.writes, 2)
        anns = _load(self.meta).get_annotations()
        frames = -(-snk.samples_seen // L)  # a tag on every L-th sample of the second run only
        # the last frame may have been cut by the stop: annotations end with the samples seen
        self.assertEqual(_spans(anns), [(0, snk.samples_seen, "BPSK", frames)])

    def test_008_registered_in_the_package(self):
        self.assertIn("sigmf_annotation_sink", dir(modrec))
        self.assertTrue(isinstance(sigmf_annotation_sink, type) and issubclass(sigmf_annotation_sink, gr.sync_block))


if __name__ == "__main__":
    gr_unittest.run(qa_sigmf_annotation_sink)
