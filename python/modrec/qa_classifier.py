#!/usr/bin/env python3
#
# This file is a part of gr-modrec
#
# SPDX-License-Identifier: GPL-3.0-or-later
#

"""QA for modrec.classifier: pass-through exactness, tag placement and values, chunking
invariance, message port, bad samples, bad arguments and bad models. Uses tiny ONNX fixtures
from tests/onnx_fixtures.py (no torch), so it runs from ctest and from pytest alike."""

import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

_TESTS_DIR = Path(__file__).resolve().parents[2] / "tests"
if str(_TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(_TESTS_DIR))

try:
    from gnuradio.modrec.classifier import classifier
except ImportError:
    # Plain pytest on this file without tests/conftest.py, possibly with an older install of
    # gr-modrec shadowing the checkout: build the same source-tree shim and forget the install.
    import conftest  # noqa: F401

    for _name in [m for m in sys.modules if m == "gnuradio.modrec" or m.startswith("gnuradio.modrec.")]:
        del sys.modules[_name]
    from gnuradio.modrec.classifier import classifier

import onnx_fixtures as fx  # noqa: E402
from flowgraph_run import finish_or_stop  # noqa: E402
from gnuradio.modrec import contract  # noqa: E402
from gnuradio.modrec.classes import UNKNOWN_CLASS  # noqa: E402
from gnuradio.modrec.runtime.onnx_model import DEFAULT_MODEL_NAME  # noqa: E402
from gnuradio.modrec.runtime import OnnxModel, complex_to_iq, frame_starts  # noqa: E402

L = 32


class chunked_source(gr.sync_block):
    """Emits ``data`` in random chunk sizes to shake out chunk-dependent behaviour, with ``tags``
    (gr.tag_t, offsets into ``data``) on their samples."""

    def __init__(self, data, max_chunk, seed=0, tags=None):
        gr.sync_block.__init__(self, name="chunked_source", in_sig=None, out_sig=[np.complex64])
        self._data = np.asarray(data, dtype=np.complex64)
        self._max_chunk = max_chunk
        self._rng = np.random.default_rng(seed)
        self._pos = 0
        self._tags = sorted(tags or [], key=lambda t: t.offset)

    def work(self, input_items, output_items):
        left = len(self._data) - self._pos
        if left == 0:
            return -1
        n = min(len(output_items[0]), left, int(self._rng.integers(1, self._max_chunk + 1)))
        output_items[0][:n] = self._data[self._pos : self._pos + n]
        for tag in self._tags:
            if self._pos <= tag.offset < self._pos + n:
                self.add_item_tag(0, tag.offset, tag.key, tag.value, tag.srcid)
        self._pos += n
        return n


class run_recorder(gr.sync_block):
    """Sink keeping each run's samples and classifier tags apart (offsets restart at every start).
    ``slow``: take at most 64 samples a call and sleep 1 ms, so that the block upstream holds
    samples (and the frame tags on them) whenever the flowgraph stops."""

    def __init__(self, slow=False):
        gr.sync_block.__init__(self, name="run_recorder", in_sig=[np.complex64], out_sig=None)
        self.runs = []
        self._parts = None
        self._slow = slow

    def start(self):
        self._parts, self._tags = [], []
        self.runs.append(None)  # filled at stop
        return True

    def work(self, input_items, output_items):
        n = len(input_items[0])
        if self._slow:
            n = min(n, 64)
            time.sleep(0.001)
        self._parts.append(np.array(input_items[0][:n], dtype=np.complex64))
        self._tags += [(t.offset, t.value) for t in self.get_tags_in_window(0, 0, n, pmt.intern("modrec"))]
        return n

    def stop(self):
        data = np.concatenate(self._parts) if self._parts else np.zeros(0, np.complex64)
        self.runs[-1] = (data, self._tags)
        return True


class counting_source(gr.sync_block):
    """Emits n samples whose real part counts 0, 1, 2, ... across restarts (the count is kept)."""

    def __init__(self, n):
        gr.sync_block.__init__(self, name="counting_source", in_sig=None, out_sig=[np.complex64])
        self._n, self._next = n, 0

    def work(self, input_items, output_items):
        k = min(len(output_items[0]), self._n - self._next)
        if k <= 0:
            return -1
        values = np.arange(self._next, self._next + k, dtype=np.float32)
        output_items[0][:k] = values + 1j * np.cos(values)  # not constant: frames differ
        self._next += k
        return k


def _signal(n, seed=0):
    rng = np.random.default_rng(seed)
    # Non-stationary so frames get different classes from the fixture model.
    gain = np.repeat(rng.uniform(0.1, 3.0, n // 50 + 1), 50)[:n]
    phase = np.cumsum(rng.uniform(-0.5, 0.5, n))
    x = gain * np.exp(1j * phase) + 0.3 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    return x.astype(np.complex64)


def _tag_dict(value):
    d = {}
    items = pmt.dict_items(value)
    for i in range(pmt.length(items)):
        pair = pmt.nth(i, items)
        d[pmt.symbol_to_string(pmt.car(pair))] = pmt.cdr(pair)
    out = {
        "class": pmt.symbol_to_string(d["class"]),
        "index": pmt.to_long(d["index"]),
        "confidence": pmt.to_double(d["confidence"]),
        "probs": np.array(pmt.f32vector_elements(d["probs"]), dtype=np.float32),
        "frame_len": pmt.to_long(d["frame_len"]),
        "frame_start": pmt.to_uint64(d["frame_start"]),
    }
    if "exit" in d:
        out["exit"] = pmt.to_long(d["exit"])
    if "snr_db" in d:
        out["snr_db"] = pmt.to_double(d["snr_db"])
    return out


def _pmt_items(value):
    """(key str, value pmt) pairs of a PMT dict."""
    items = pmt.dict_items(value)
    return [(pmt.symbol_to_string(pmt.car(pmt.nth(i, items))), pmt.cdr(pmt.nth(i, items)))
            for i in range(pmt.length(items))]


def _assert_same_value(test, a, b):
    """Two tag values (PMTs) alike: the same fields in the same order with the same PMT types;
    symbols, integers and booleans equal, floats within float32 rounding. ONNX Runtime's last bit
    depends on how frames were batched, and the scheduler batches each run its own way."""
    if not pmt.is_dict(a):
        test.assertTrue(pmt.equal(a, b), f"{a} != {b}")
        return
    fields_a, fields_b = _pmt_items(a), _pmt_items(b)
    test.assertEqual([k for k, _ in fields_a], [k for k, _ in fields_b])
    for (key, va), (_, vb) in zip(fields_a, fields_b):
        if pmt.is_f32vector(va):
            test.assertTrue(pmt.is_f32vector(vb), key)
            np.testing.assert_allclose(pmt.f32vector_elements(va), pmt.f32vector_elements(vb), rtol=1e-5, atol=1e-6)
        elif pmt.is_real(va) and not pmt.is_integer(va) and not pmt.is_uint64(va):
            test.assertTrue(pmt.is_real(vb) and not pmt.is_integer(vb), key)
            np.testing.assert_allclose(pmt.to_double(va), pmt.to_double(vb), rtol=1e-5, atol=1e-5, err_msg=key)
        else:
            test.assertTrue(pmt.equal(va, vb), f"{key}: {va} != {vb}")


def _same_bits(a, b):
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


class qa_classifier(gr_unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.mkdtemp(prefix="qa_classifier_")
        cls.model_path = fx.save_model(os.path.join(cls.tmpdir, "fixture.onnx"), frame_len=L)
        cls.model = OnnxModel(cls.model_path)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmpdir, ignore_errors=True)

    def setUp(self):
        self.tb = gr.top_block()

    def tearDown(self):
        self.tb = None

    def run_tb(self, timeout=20.0):
        """tb.run() that fails instead of hanging when the flowgraph never finishes."""
        if not finish_or_stop(self.tb, timeout):
            self.fail(f"flowgraph did not finish within {timeout} s (a block never reported done)")

    def run_flowgraph(self, data, source="vector", max_chunk=None, max_noutput=None, seed=0, **kwargs):
        """Run data through the classifier; return (output samples, our tags, messages, block)."""
        upstream_tags = kwargs.pop("upstream_tags", None)
        if source == "chunked":
            src = chunked_source(data, max_chunk, seed=seed, tags=upstream_tags)
        else:
            src = blocks.vector_source_c(np.asarray(data).tolist(), False, 1, upstream_tags or [])
        clf = classifier(kwargs.pop("model_path", self.model_path), **kwargs)
        snk = blocks.vector_sink_c()
        dbg = blocks.message_debug()
        if max_noutput is not None:
            src.set_max_noutput_items(max_noutput)
            snk.set_max_noutput_items(max_noutput)
        self.tb.connect(src, clf, snk)
        self.tb.msg_connect(clf, "classification", dbg, "store")
        # Python blocks die with their last reference and take the scheduler with them.
        self._keep = (src, clf, snk, dbg)
        self.run_tb()
        key = kwargs.get("tag_key", "modrec")
        tags = [t for t in snk.tags() if upstream_tags is not None or pmt.symbol_to_string(t.key) == key]
        msgs = [dbg.get_message(i) for i in range(dbg.num_messages())]
        return np.array(snk.data(), dtype=np.complex64), tags, msgs, clf

    def expected(self, data, hop, min_confidence=0.0):
        starts = frame_starts(len(data), L, hop)
        frames = np.stack([data[s : s + L] for s in starts]) if len(starts) else np.zeros((0, L), np.complex64)
        return starts, self.model.predict(complex_to_iq(frames))

    # --- pass-through and tag placement -------------------------------------------------

    def test_passthrough_and_tag_offsets(self):
        x = _signal(1500, seed=1)
        for hop in (12, L, 45):
            for cfg in (
                {},
                {"source": "chunked", "max_chunk": 5},
                {"source": "chunked", "max_chunk": 300},
                {"max_noutput": 17},
            ):
                with self.subTest(hop=hop, **cfg):
                    self.setUp()
                    out, tags, _, clf = self.run_flowgraph(x, hop=hop, **cfg)
                    self.assertTrue(_same_bits(out, x), "output differs from input")
                    offsets = [t.offset for t in tags]
                    self.assertEqual(offsets, list(range(0, len(x) - L + 1, hop)))
                    self.assertEqual(len(tags), (len(x) - L) // hop + 1)
                    self.assertEqual(clf.hop, hop)

    def test_hop_zero_means_frame_len_and_short_stream(self):
        x = _signal(L - 1)
        out, tags, msgs, clf = self.run_flowgraph(x, hop=0)
        self.assertEqual(clf.hop, L)
        self.assertTrue(_same_bits(out, x))
        self.assertEqual((tags, msgs), ([], []))

    def test_tag_values_match_runtime(self):
        x = _signal(1000, seed=2)
        hop = 20
        _, tags, _, _ = self.run_flowgraph(x, hop=hop, source="chunked", max_chunk=64)
        starts, probs = self.expected(x, hop)
        self.assertEqual(len(tags), len(starts))
        seen_classes = set()
        for tag, start, p in zip(tags, starts, probs):
            v = _tag_dict(tag.value)
            idx = int(np.argmax(p))
            self.assertEqual(v["frame_start"], start)
            self.assertEqual(tag.offset, start)
            self.assertEqual(v["frame_len"], L)
            self.assertEqual(v["class"], fx.FIXTURE_CLASSES[idx])
            self.assertEqual(v["index"], idx)
            np.testing.assert_allclose(v["probs"], p, rtol=1e-5, atol=1e-6)
            self.assertAlmostEqual(v["confidence"], float(p[idx]), places=5)
            seen_classes.add(v["class"])
        self.assertGreater(len(seen_classes), 1, "fixture signal should exercise several classes")

    def test_a_version_2_model_tags_noise_unknown_and_its_snr_estimate(self):
        # contract version 2: the fixture's snr_db output is 10 log10 of the frame's mean square
        # I/Q value, its noise class is "noise", and energy above -1.2 is unknown (decisions.py)
        proto = fx.build_v2_model(frame_len=L, threshold=-1.2)
        path = os.path.join(self.tmpdir, "v2.onnx")
        import onnx

        onnx.save(proto, path)
        x = _signal(3000, seed=7) * np.repeat(10 ** np.linspace(-1, 1, 3000 // L + 1), L)[:3000].astype(np.float32)
        _, tags, msgs, clf = self.run_flowgraph(x, model_path=path)
        self.assertEqual(clf.min_confidence, -1)  # the model's own rule by default
        starts = frame_starts(len(x), L, L)
        frames = np.stack([x[s : s + L] for s in starts])
        probs, logits, snr = fx.v2_reference(complex_to_iq(frames), proto)
        energy = -np.log(np.exp(logits).sum(1))
        labels = ["BPSK", "QPSK", "noise", "WBFM"]
        expected = ["noise" if p.argmax() == 2 else UNKNOWN_CLASS if e > -1.2 else labels[p.argmax()]
                    for p, e in zip(probs, energy)]
        values = [_tag_dict(t.value) for t in tags]
        self.assertEqual([v["class"] for v in values], expected)
        self.assertTrue({"noise", UNKNOWN_CLASS} <= set(expected) and len(set(expected)) > 2)
        np.testing.assert_allclose([v["snr_db"] for v in values], snr, atol=1e-3)
        self.assertEqual([_tag_dict(m)["snr_db"] for m in msgs], [v["snr_db"] for v in values])
        # a version-1 model's tags carry no snr_db
        self.setUp()
        _, tags, _, _ = self.run_flowgraph(x)
        self.assertNotIn("snr_db", _tag_dict(tags[0].value))

    def test_chunking_invariance(self):
        x = _signal(2000, seed=3)
        runs = []
        for cfg in (
            {},
            {"source": "chunked", "max_chunk": 3, "seed": 1},
            {"source": "chunked", "max_chunk": 97, "seed": 2},
            {"source": "chunked", "max_chunk": 5000, "seed": 3},
            {"max_noutput": 1},
            {"max_noutput": 333},
        ):
            self.setUp()
            out, tags, _, _ = self.run_flowgraph(x, hop=24, **cfg)
            self.assertTrue(_same_bits(out, x))
            runs.append([(t.offset, pmt.serialize_str(t.value)) for t in tags])
        for other in runs[1:]:
            self.assertEqual(other, runs[0])

    def test_the_cxx_core_tags_and_passes_exactly_what_the_python_core_does(self):
        # the C++ core (lib/classifier_core_impl.cc) against the Python one, on random chunkings,
        # hops that overlap, abut and leave gaps, upstream tags, and each kind of model: the same
        # output bits, and the same tags (offset, key, serialised value, srcid) in the same order
        import onnx

        v2_path = os.path.join(self.tmpdir, "v2-equal.onnx")
        onnx.save(fx.build_v2_model(frame_len=L, threshold=-1.2), v2_path)
        ee_path = fx.save_early_exit_model(self.tmpdir, L, threshold=0.6)
        x = _signal(2500, seed=11) * np.repeat(10 ** np.linspace(-1, 1, 2500 // L + 1), L)[:2500].astype(np.float32)
        x[700:705] = np.nan  # bad samples: tagged unknown, not run through the model
        rng = np.random.default_rng(5)
        cases = [dict(model_path=self.model_path, hop=hop) for hop in (7, L, 45)]
        cases += [dict(model_path=v2_path, hop=20), dict(model_path=ee_path, hop=L),
                  dict(model_path=self.model_path, hop=L, check_oversampling=False, min_confidence=0.5)]
        for case in cases:
            for trial in range(2):
                chunking = {"source": "chunked", "max_chunk": int(rng.integers(1, 400)), "seed": int(rng.integers(1 << 30))}
                if trial:
                    chunking["max_noutput"] = int(rng.integers(1, 300))
                results = []
                for core in ("python", "c++"):
                    self.setUp()
                    src_tags = [gr.tag_utils.python_to_tag((int(o), pmt.intern("upstream"), pmt.from_long(int(o)),
                                                            pmt.intern("src"))) for o in (0, 31, 32, 699, 2499)]
                    out, tags, msgs, clf = self.run_flowgraph(x, _core=core, upstream_tags=src_tags, **case,
                                                              **chunking)
                    self.assertEqual(type(clf._core).__name__, "_ClassifierCore" if core == "python" else "classifier_core")
                    results.append((out, [(t.offset, pmt.symbol_to_string(t.key), pmt.symbol_to_string(t.srcid),
                                           t.value) for t in tags], msgs))
                with self.subTest(case=case, **chunking):
                    (out_py, tags_py, msgs_py), (out_cxx, tags_cxx, msgs_cxx) = results
                    self.assertTrue(_same_bits(out_py, x) and _same_bits(out_cxx, x))
                    self.assertGreater(len(tags_py), 10)
                    self.assertEqual([t[:3] for t in tags_cxx], [t[:3] for t in tags_py])
                    self.assertEqual(len(msgs_cxx), len(msgs_py))
                    for a, b in zip([t[3] for t in tags_cxx] + msgs_cxx, [t[3] for t in tags_py] + msgs_py):
                        _assert_same_value(self, a, b)

    def test_early_exit_model_tags_the_exit_and_the_branch_answer(self):
        ee_path = fx.save_early_exit_model(self.tmpdir, L, threshold=0.6)
        x = _signal(3000, seed=7)
        runs = []
        for cfg in ({}, {"source": "chunked", "max_chunk": 7, "seed": 4}, {"max_noutput": 50}):
            self.setUp()
            out, tags, _, _ = self.run_flowgraph(x, hop=20, model_path=ee_path, **cfg)
            self.assertTrue(_same_bits(out, x), "output differs from input")
            runs.append([(t.offset, pmt.serialize_str(t.value)) for t in tags])
        for other in runs[1:]:  # chunking does not change which exit a frame takes
            self.assertEqual(other, runs[0])
        starts = frame_starts(len(x), L, 20)
        frames = np.stack([x[s : s + L] for s in starts])
        want_probs, want_exit = fx.early_exit_reference(complex_to_iq(frames), L, threshold=0.6)
        values = [_tag_dict(t.value) for t in tags]
        self.assertEqual([v["exit"] for v in values], want_exit.tolist())
        self.assertTrue(0 < want_exit.sum() < len(want_exit), "the signal should use both exits")
        for v, p in zip(values, want_probs):  # an early frame carries its branch's argmax
            self.assertEqual(v["class"], fx.FIXTURE_CLASSES[int(np.argmax(p))])
            np.testing.assert_allclose(v["probs"], p, rtol=1e-5, atol=1e-6)
        _, plain_tags, _, _ = self.run_flowgraph(x, hop=20)
        self.assertNotIn("exit", _tag_dict(plain_tags[0].value))  # only early-exit models add it

    def test_message_port_equals_tags(self):
        x = _signal(700, seed=4)
        _, tags, msgs, _ = self.run_flowgraph(x, hop=L, source="chunked", max_chunk=50)
        self.assertEqual(len(msgs), len(tags))
        for tag, msg in zip(tags, msgs):
            self.assertTrue(pmt.equal(tag.value, msg))

    def test_a_tag_changed_downstream_leaves_the_others_as_they_were(self):
        # the C++ core shares the cells that are the same in every tag (class and index per
        # class, frame_len, sps_mismatch): PMT dicts are persistent, so a block that rewrites one
        # tag's dict gets a new dict and every other tag keeps its fields
        x = _signal(1500, seed=6)
        _, tags, _, _ = self.run_flowgraph(x, hop=L, source="chunked", max_chunk=70)
        before = [pmt.serialize_str(t.value) for t in tags]
        by_class = {}
        for t in tags:
            by_class.setdefault(_tag_dict(t.value)["class"], []).append(t.value)
        shared = next(values for values in by_class.values() if len(values) > 1)
        changed = pmt.dict_add(shared[0], pmt.intern("class"), pmt.intern("relabelled"))
        changed = pmt.dict_add(changed, pmt.intern("frame_len"), pmt.from_long(-1))
        changed = pmt.dict_delete(changed, pmt.intern("index"))
        self.assertEqual(pmt.symbol_to_string(pmt.dict_ref(changed, pmt.intern("class"), pmt.PMT_NIL)), "relabelled")
        self.assertFalse(pmt.dict_has_key(changed, pmt.intern("index")))
        self.assertEqual([pmt.serialize_str(t.value) for t in tags], before)
        self.assertEqual(_tag_dict(shared[1])["frame_len"], L)

    def test_upstream_tags_keep_their_offsets(self):
        x = _signal(400)
        upstream = [gr.tag_utils.python_to_tag((off, pmt.intern("burst"), pmt.from_long(off), pmt.intern("src"))) for off in (0, 5, 33, 399)]
        src = blocks.vector_source_c(x.tolist(), False, 1, upstream)
        clf = classifier(self.model_path, hop=L)
        snk = blocks.vector_sink_c()
        self._keep = (src, clf, snk)
        self.tb.connect(src, clf, snk)
        self.run_tb()
        burst = [(t.offset, pmt.to_long(t.value)) for t in snk.tags() if pmt.symbol_to_string(t.key) == "burst"]
        self.assertEqual(burst, [(0, 0), (5, 5), (33, 33), (399, 399)])
        self.assertTrue(_same_bits(np.array(snk.data(), np.complex64), x))

    def test_hop_beyond_the_stream_passes_samples_untagged(self):
        x = _signal(500, seed=8)
        out, tags, msgs, _ = self.run_flowgraph(x, hop=10**9, source="chunked", max_chunk=40)
        self.assertTrue(_same_bits(out, x))
        self.assertEqual([t.offset for t in tags], [0])  # only the frame at offset 0 is complete
        self.assertEqual(len(msgs), 1)

    # --- running, stopping, reconfiguring ------------------------------------------------

    def test_stop_on_an_endless_source_returns(self):
        x = _signal(4 * L, seed=9)
        src = blocks.vector_source_c(x.tolist(), True)  # repeats forever
        clf = classifier(self.model_path)
        snk = blocks.null_sink(gr.sizeof_gr_complex)
        self._keep = (src, clf, snk)
        self.tb.connect(src, clf, snk)
        self.tb.start()
        threading.Event().wait(0.3)
        stopper = threading.Thread(target=lambda: (self.tb.stop(), self.tb.wait()), daemon=True)
        stopper.start()
        stopper.join(10.0)
        self.assertFalse(stopper.is_alive(), "tb.stop()/wait() hung on an endless source")

    def test_keeps_classifying_after_lock_unlock(self):
        # GNU Radio 3.10 rebuilds buffers and restarts item counters on lock()/unlock() (samples
        # in flight are lost for every block); the classifier must restart cleanly with them:
        # no hang, and tags again at frame starts 0, L, 2L, ... of the restarted count.
        x = _signal(4 * L, seed=10)
        src = blocks.vector_source_c(x.tolist(), True)
        clf = classifier(self.model_path)
        head = blocks.head(gr.sizeof_gr_complex, 200 * L)
        snk = blocks.vector_sink_c()
        self._keep = (src, clf, head, snk)
        self.tb.connect(src, clf, head, snk)
        self.tb.start()
        threading.Event().wait(0.2)
        self.tb.lock()
        self.tb.unlock()
        waiter = threading.Thread(target=self.tb.wait, daemon=True)
        waiter.start()
        waiter.join(20.0)
        if waiter.is_alive():
            self.tb.stop()
            self.fail("flowgraph did not finish after lock()/unlock()")
        offsets = [t.offset for t in snk.tags() if pmt.symbol_to_string(t.key) == "modrec"]
        self.assertGreater(len(offsets), 0)
        self.assertTrue(all(o % L == 0 for o in offsets), offsets[:10])

    def test_lock_unlock_and_stop_start_lose_nothing_the_classifier_holds(self):
        # issue 19.5: at a restart the held-back samples (behind an incomplete frame) and the tags
        # of frames classified in them used to be dropped. A counting source shows every sample
        # the classifier took in leaving it once, in order, and every tag on the frame it names.
        n_total = 120_000
        src = counting_source(n_total)
        thr = blocks.throttle(gr.sizeof_gr_complex, 400e3)
        clf = classifier(self.model_path, hop=20)
        snk = run_recorder()
        self._keep = (src, thr, clf, snk)
        self.tb.connect(src, thr, clf, snk)
        self.tb.start()
        for _ in range(2):
            threading.Event().wait(0.07)
            self.tb.lock()
            self.tb.unlock()
        threading.Event().wait(0.05)
        self.tb.stop()  # stop/start, the other kind of restart
        self.tb.wait()
        self.tb.start()
        waiter = threading.Thread(target=self.tb.wait, daemon=True)
        waiter.start()
        waiter.join(20.0)
        if waiter.is_alive():
            self.tb.stop()
            self.fail("flowgraph did not finish after its restarts")
        # GNU Radio drops what sits in its buffers at a restart, between any two blocks; the
        # classifier itself drops nothing
        items_in, items_out = clf.items_in_out()
        self.assertEqual(items_in, items_out, "samples the classifier held were lost at a restart")
        self.assertGreaterEqual(len(snk.runs), 4)
        out = np.concatenate([data for data, _ in snk.runs])
        self.assertTrue(np.all(np.diff(out.real) > 0), "samples repeated or out of order")
        checked = 0
        for data, tags in snk.runs:  # offsets restart at 0 in every run
            for offset, value in tags:
                if offset + L > len(data):
                    continue  # the frame's end was in flight downstream at the restart
                v = _tag_dict(value)
                self.assertEqual(v["frame_start"], offset)
                expected = self.model.predict(complex_to_iq(data[None, offset : offset + L]))[0]
                np.testing.assert_allclose(v["probs"], expected, rtol=1e-4, atol=1e-5)
                checked += 1
        self.assertGreater(checked, 100)

    def test_a_frame_tag_carried_over_a_restart_names_the_offset_it_sits_on(self):
        # The C++ core gathers frames into batches, and classifies what it gathered when the
        # flowgraph stops; those frames' samples go out first in the next run, where offsets
        # restart at 0: their tags' frame_start must be that run's offset (they kept the old run's,
        # seen under load in the test above). A slow sink makes the core hold such frames at
        # every stop. (The Python core classifies every complete frame at once, so it carries
        # only samples behind an incomplete frame, with no frame tag on them.)
        src = counting_source(200_000)
        clf = classifier(self.model_path, hop=20)
        snk = run_recorder(slow=True)
        self._keep = (src, clf, snk)
        self.tb.connect(src, clf, snk)
        for _ in range(3):
            self.tb.start()
            threading.Event().wait(0.15)
            self.tb.stop()
            self.tb.wait()
        checked = 0
        for data, tags in snk.runs[1:]:
            for offset, value in tags:
                self.assertEqual(_tag_dict(value)["frame_start"], offset)
                if offset + L <= len(data):
                    expected = self.model.predict(complex_to_iq(data[None, offset : offset + L]))[0]
                    np.testing.assert_allclose(_tag_dict(value)["probs"], expected, rtol=1e-4, atol=1e-5)
                checked += 1
        self.assertGreater(checked, 20)

    # --- batching ----------------------------------------------------------------------

    def test_frames_of_one_call_share_one_predict(self):
        x = _signal(3000, seed=5)
        src = blocks.vector_source_c(x.tolist(), False)
        clf = classifier(self.model_path, hop=8)
        calls = []
        real_predict = clf.model.predict

        def recording_predict(frames):
            calls.append(len(frames))
            return real_predict(frames)

        clf.model.predict = recording_predict
        snk = blocks.vector_sink_c()
        self._keep = (src, clf, snk)
        self.tb.connect(src, clf, snk)
        self.run_tb()
        self.assertEqual(sum(calls), (len(x) - L) // 8 + 1)
        # One vector_source burst carries thousands of samples: per-frame inference would make
        # every call size 1.
        self.assertGreater(max(calls), 50)

    # --- confidence and bad samples --------------------------------------------------

    def test_min_confidence_gives_unknown(self):
        x = _signal(1200, seed=6)
        starts, probs = self.expected(x, L)
        conf = probs.max(axis=1)
        threshold = float(np.median(conf))
        _, tags, msgs, clf = self.run_flowgraph(x, min_confidence=threshold)
        self.assertAlmostEqual(clf.min_confidence, threshold)
        self.assertEqual(len(tags), len(probs))
        n_unknown = 0
        for tag, p, c in zip(tags, probs, conf):
            v = _tag_dict(tag.value)
            if c >= threshold:
                self.assertEqual(v["class"], fx.FIXTURE_CLASSES[int(np.argmax(p))])
            else:
                n_unknown += 1
                self.assertEqual(v["class"], UNKNOWN_CLASS)
                self.assertEqual(v["index"], -1)
                self.assertAlmostEqual(v["confidence"], float(c), places=5)
                np.testing.assert_allclose(v["probs"], p, rtol=1e-5, atol=1e-6)
        self.assertGreater(n_unknown, 0)
        self.assertLess(n_unknown, len(tags))

    def test_bad_samples_flow_and_get_tagged(self):
        x = _signal(8 * L, seed=7)
        x[1 * L + 3] = np.nan
        x[3 * L + 31] = complex(np.inf, 0)
        x[5 * L] = complex(0, -np.inf)
        x[2 * L : 3 * L] = 0
        for cfg in ({}, {"source": "chunked", "max_chunk": 7}):
            with self.subTest(**cfg):
                self.setUp()
                out, tags, _, _ = self.run_flowgraph(x, **cfg)
                self.assertTrue(_same_bits(out, x))
                self.assertEqual([t.offset for t in tags], [k * L for k in range(8)])
                values = [_tag_dict(t.value) for t in tags]
                for k in (1, 3, 5):
                    self.assertEqual(values[k]["class"], UNKNOWN_CLASS)
                    self.assertEqual(values[k]["confidence"], 0.0)
                    self.assertFalse(values[k]["probs"].any())
                for k in (0, 2, 4, 6, 7):
                    self.assertIn(values[k]["class"], fx.FIXTURE_CLASSES)
                    self.assertTrue(np.all(np.isfinite(values[k]["probs"])))
                self.assertAlmostEqual(float(values[2]["probs"].sum()), 1.0, places=5)

    def test_a_model_error_tags_frames_unknown_and_samples_keep_flowing(self):
        # issue 19.2: an exception in work() used to kill the block's thread and hang tb.wait()
        n_frames = 520  # many model calls, so some fail and some do not
        x = _signal(n_frames * L, seed=8)
        src = chunked_source(x, 3 * L, seed=1)
        clf = classifier(self.model_path)
        snk = blocks.vector_sink_c()
        real_predict, calls = clf.model.predict, []

        def flaky_predict(frames):
            calls.append(len(frames))
            if len(calls) % 2:
                raise RuntimeError("simulated onnxruntime failure")
            return real_predict(frames)

        clf.model.predict = flaky_predict
        self.tb.connect(src, clf, snk)
        self._keep = (src, clf, snk)
        self.run_tb()
        out = np.array(snk.data(), dtype=np.complex64)
        self.assertTrue(_same_bits(out, x), "samples lost or changed")
        values = [_tag_dict(t.value) for t in snk.tags() if pmt.symbol_to_string(t.key) == "modrec"]
        self.assertEqual(len(values), n_frames)
        failed = [v for v in values if v["class"] == UNKNOWN_CLASS]
        self.assertEqual(len(failed), clf.failed_frames)
        self.assertTrue(0 < len(failed) < n_frames, len(failed))
        self.assertTrue(all(v["confidence"] == 0.0 and not v["probs"].any() for v in failed))

    # --- construction ----------------------------------------------------------------

    def test_resampled_stream_is_framed_at_the_model_rate_and_tagged_at_input_offsets(self):
        from scipy.signal import resample_poly

        x = _signal(2400, seed=5)
        # the fixture model was trained at 8 samples per symbol
        for sps_in, (up, down), hop in ((16, (1, 2), 0), (4, (2, 1), 20), (6, (4, 3), 0)):
            with self.subTest(sps_in=sps_in, hop=hop):
                self.setUp()
                out, tags, msgs, clf = self.run_flowgraph(x, hop=hop, source="chunked", max_chunk=97,
                                                          sample_rate=sps_in * 1e3, symbol_rate=1e3)
                self.assertEqual(clf.resampling, (up, down))
                self.assertTrue(_same_bits(out, x), "output differs from input")
                resampled = resample_poly(x, up, down).astype(np.complex64)
                starts = frame_starts(len(resampled), L, hop or L)
                expected = self.model.predict(complex_to_iq(np.stack([resampled[s : s + L] for s in starts])))
                self.assertEqual([t.offset for t in tags], list(starts * down // up))
                self.assertEqual(len(msgs), len(starts))
                for tag, p in zip(tags, expected):
                    v = _tag_dict(tag.value)
                    self.assertEqual(v["frame_start"], tag.offset)
                    self.assertEqual(v["frame_len"], -(-L * down // up))
                    np.testing.assert_allclose(v["probs"], p, rtol=1e-4, atol=1e-5)
        # at the model's own rate nothing is resampled
        self.assertIsNone(classifier(self.model_path, sample_rate=8e3, symbol_rate=1e3).resampling)

    def test_a_stream_at_the_wrong_oversampling_is_tagged_unknown(self):
        # QPSK from GNU Radio's own modulator (RRC, excess bandwidth 0.35) at 15 dB per-sample SNR;
        # the fixture model, like the shipped ones, expects 8 samples per symbol
        from gnuradio import digital

        from gnuradio.modrec.runtime.oversampling import WINDOW_LEN

        def qpsk(sps, n, seed):
            rng = np.random.default_rng(seed)
            tb = gr.top_block()
            src = blocks.vector_source_b(rng.integers(0, 256, n // (4 * sps) + 64).tolist(), False)
            mod = digital.generic_mod(digital.constellation_qpsk(), samples_per_symbol=sps, excess_bw=0.35)
            snk = blocks.vector_sink_c()
            tb.connect(src, mod, snk)
            tb.run()
            x = np.array(snk.data(), dtype=np.complex64)[:n]
            noise = rng.standard_normal((n, 2)).astype(np.float32) @ np.array([1, 1j], np.complex64)
            return x + noise * np.float32(np.sqrt(np.mean(np.abs(x) ** 2) / 2 * 10 ** -1.5))

        n = 3 * WINDOW_LEN
        for sps, mismatch in ((4, True), (2, True), (8, False)):
            with self.subTest(sps=sps):
                self.setUp()
                x = qpsk(sps, n, seed=sps)
                out, tags, msgs, _ = self.run_flowgraph(x, source="chunked", max_chunk=5000, seed=sps)
                self.assertTrue(_same_bits(out, x), "output differs from input")
                values = [_tag_dict(t.value) for t in tags]
                fields = [{k: pmt.to_python(v) for k, v in _pmt_items(t.value)} for t in tags]
                # frames ending in the first window are never judged
                first = [f for v, f in zip(values, fields) if v["frame_start"] + L < WINDOW_LEN]
                later = [(v, f) for v, f in zip(values, fields) if v["frame_start"] + L >= WINDOW_LEN]
                self.assertTrue(all(np.isnan(f["sps_estimate"]) and not f["sps_mismatch"] for f in first))
                estimates = np.array([f["sps_estimate"] for _, f in later])
                np.testing.assert_allclose(estimates, sps, rtol=0.1)
                self.assertTrue(all(f["sps_mismatch"] == mismatch for _, f in later))
                if mismatch:
                    self.assertTrue(all(v["class"] == UNKNOWN_CLASS and v["index"] == -1 for v, _ in later))
                    self.assertAlmostEqual(later[0][0]["probs"].max(), later[0][0]["confidence"], places=6)
                else:
                    self.assertNotIn(UNKNOWN_CLASS, {v["class"] for v, _ in later})
        # the check can be turned off: no fields, the model's classes
        self.setUp()
        _, tags, _, clf = self.run_flowgraph(qpsk(4, n, seed=4), check_oversampling=False)
        self.assertFalse(clf.check_oversampling)
        self.assertNotIn("sps_mismatch", dict(_pmt_items(tags[-1].value)))
        self.assertNotIn(UNKNOWN_CLASS, {_tag_dict(t.value)["class"] for t in tags})

    def test_the_oversampling_log_warns_once_and_does_not_flap(self):
        class Log:
            def __init__(self):
                self.lines = []

            def warn(self, text):
                self.lines.append(("warn", text))

            def info(self, text):
                self.lines.append(("info", text))

        clf = classifier(self.model_path, sample_rate=32e3, symbol_rate=2e3)  # 16 -> 8 samples per symbol
        core = clf._decider
        core._log = Log()
        # windows: a mismatch, no line, the mismatch again, a match, no line
        for estimate, mismatch in ((4.0, True), (float("nan"), False), (4.1, True), (8.0, False), (float("nan"), False)):
            core._monitor.estimate, core._monitor.mismatch = estimate, mismatch
            core._log_oversampling()
        kinds = [kind for kind, _ in core._log.lines]
        self.assertEqual(kinds, ["warn", "info"])
        # the symbol rate given makes 8 samples per symbol; the stream shows 4: 4 kHz, not 2
        self.assertIn("the symbol rate looks like 4000 Hz", core._log.lines[0][1])

    def test_exposes_metadata(self):
        clf = classifier(self.model_path)
        self.assertEqual(clf.classes, fx.FIXTURE_CLASSES)
        self.assertEqual(clf.frame_len, L)
        self.assertEqual(clf.samples_per_symbol, 8)
        self.assertEqual(clf.metadata["architecture"], "fixture-linear")
        self.assertEqual(clf.hop, L)

    def test_bad_arguments_name_the_argument(self):
        for kwargs, name in (
            ({"hop": -1}, "hop"),
            ({"hop": 2.5}, "hop"),
            ({"min_confidence": -0.1}, "min_confidence"),
            ({"min_confidence": 1.5}, "min_confidence"),
            ({"min_confidence": "high"}, "min_confidence"),
            ({"check_oversampling": "yes"}, "check_oversampling"),
            ({"tag_key": ""}, "tag_key"),
            ({"tag_key": "  "}, "tag_key"),
            ({"threads": 0}, "threads"),
            ({"threads": 2000}, "threads"),
            ({"threads": 1.5}, "threads"),
            ({"symbol_rate": 1e3}, "sample_rate"),
            ({"sample_rate": -1.0}, "sample_rate"),
            ({"symbol_rate": float("nan"), "sample_rate": 1e6}, "symbol_rate"),
        ):
            with self.subTest(**kwargs):
                with self.assertRaisesRegex(ValueError, name):
                    classifier(self.model_path, **kwargs)
        clf = classifier(self.model_path)
        with self.assertRaisesRegex(ValueError, "min_confidence"):
            clf.set_min_confidence(2.0)

    def test_bad_models_raise_clear_errors(self):
        missing = os.path.join(self.tmpdir, "missing.onnx")
        with self.assertRaisesRegex(FileNotFoundError, "missing.onnx"):
            classifier(missing)
        broken = fx.save_model(os.path.join(self.tmpdir, "nometa.onnx"), frame_len=L, drop_metadata=("classes",))
        with self.assertRaisesRegex(contract.ContractError, "nometa.onnx.*classes"):
            classifier(broken)

    def test_empty_model_path_uses_default_model(self):
        model_dir = os.path.join(self.tmpdir, "default_models")
        os.makedirs(model_dir, exist_ok=True)
        fx.save_model(os.path.join(model_dir, DEFAULT_MODEL_NAME), frame_len=16)
        old = os.environ.get("MODREC_MODEL_DIR")
        os.environ["MODREC_MODEL_DIR"] = model_dir
        try:
            clf = classifier("")
        finally:
            if old is None:
                del os.environ["MODREC_MODEL_DIR"]
            else:
                os.environ["MODREC_MODEL_DIR"] = old
        self.assertEqual(clf.model_path, os.path.join(model_dir, DEFAULT_MODEL_NAME))
        self.assertEqual(clf.frame_len, 16)


if __name__ == "__main__":
    gr_unittest.run(qa_classifier)
