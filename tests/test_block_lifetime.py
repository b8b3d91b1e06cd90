"""Blocks nothing refers to: a flowgraph that connects a block keeps it alive, and lets it go with
itself (issue 19.1). Each case runs in a child process: before the fix the scheduler crashed the
process (segmentation fault), which must not take the test runner with it."""

import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, _SHIM

MODEL = ROOT / "models" / "mobilenet1d-skd.onnx"


def _run(body):
    code = textwrap.dedent(f"""
        import gc, weakref
        import numpy as np
        from gnuradio import blocks, gr, modrec
        MODEL = {str(MODEL)!r}
        x = (np.random.default_rng(0).standard_normal(20000) + 1j).astype(np.complex64)
    """) + textwrap.dedent(body)
    env = {"PYTHONPATH": str(_SHIM), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


CASES = {
    "classifier built inline": """
        tb = gr.top_block()
        snk = blocks.vector_sink_c()
        tb.connect(blocks.vector_source_c(x.tolist(), False), modrec.classifier(MODEL), snk)
        gc.collect()
        tb.run()
        assert np.array_equal(np.array(snk.data(), np.complex64), x)
        assert len([t for t in snk.tags() if str(t.key) == "modrec"]) == len(x) // 128
    """,
    "blocks held only by a helper's locals": """
        def build(tb, path):
            src = blocks.vector_source_c(x.tolist(), False)
            clf = modrec.classifier(MODEL)
            sink = modrec.sigmf_annotation_sink(path, 1e6)
            dbg = blocks.message_debug()
            tb.connect(src, clf, sink)
            tb.msg_connect((clf, "classification"), (dbg, "store"))
            return dbg
        import tempfile, os
        path = os.path.join(tempfile.mkdtemp(), "out.sigmf-meta")
        tb = gr.top_block()
        dbg = build(tb, path)
        gc.collect()
        tb.run()
        assert dbg.num_messages() == len(x) // 128 and os.path.isfile(path)
    """,
    "inside a user's hierarchical block": """
        class chain(gr.hier_block2):
            def __init__(self):
                gr.hier_block2.__init__(self, "chain", gr.io_signature(1, 1, 8), gr.io_signature(1, 1, 8))
                self.connect(self, modrec.classifier(MODEL), self)
        tb = gr.top_block()
        snk = blocks.vector_sink_c()
        tb.connect(blocks.vector_source_c(x.tolist(), False), chain(), snk)
        gc.collect()
        tb.run()
        assert np.array_equal(np.array(snk.data(), np.complex64), x)
    """,
    "released with the flowgraph": """
        tb = gr.top_block()
        clf = modrec.classifier(MODEL)
        tb.connect(blocks.vector_source_c(x.tolist(), False), clf, blocks.null_sink(8))
        tb.run()
        alive = weakref.ref(clf)
        del clf
        gc.collect()
        assert alive() is not None, "the flowgraph holds it"
        del tb
        gc.collect()
        assert alive() is None, "the flowgraph let it go"
        # a classifier that was never connected is not held by anything
        lone = weakref.ref(modrec.classifier(MODEL))
        gc.collect()
        assert lone() is None
    """,
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_flowgraph_keeps_the_blocks_it_connects_alive(case):
    result = _run(textwrap.dedent(CASES[case]) + "\nprint('done')\n")
    assert result.returncode == 0 and "done" in result.stdout, (
        f"exit {result.returncode} (-11 = segmentation fault)\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")


def test_every_python_block_the_module_ships_is_owned_by_its_flowgraph():
    import importlib
    import inspect

    from gnuradio import gr

    from gnuradio.modrec.keepalive import flowgraph_owned

    package = ROOT / "python" / "modrec"
    blocks = []
    for path in package.glob("*.py"):
        if path.name.startswith("qa_") or path.name == "__init__.py":
            continue
        module = importlib.import_module(f"gnuradio.modrec.{path.stem}")
        blocks += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                   if cls.__module__ == module.__name__ and issubclass(cls, (gr.gateway.gateway_block, gr.hier_block2))]
    assert {cls.__name__ for cls in blocks} >= {"classifier", "_ClassifierCore", "_EndOfStreamProbe",
                                                  "sigmf_annotation_sink"}
    assert [cls.__name__ for cls in blocks if not issubclass(cls, flowgraph_owned)] == []
