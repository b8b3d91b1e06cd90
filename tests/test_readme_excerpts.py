"""README.md's demo excerpt: the markers are there, apps/readme_excerpts.py turns a demo printout
into the excerpt and rewrites only the text between the markers, and the excerpt is today's run."""

import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT, _SHIM

SPEC = importlib.util.spec_from_file_location("readme_excerpts", ROOT / "apps" / "readme_excerpts.py")
rx = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(rx)

FAKE_OUTPUT = """model /somewhere/models/fake.onnx
  classes A, B; frame_len 128
source: 4 segments of 4096 samples at 10 dB SNR, 32000 samples/s
t=   0.000 s  sample         0  true A       predicted A       confidence 0.90  ok
t=   0.016 s  sample       512  true A       predicted B       confidence 0.40  --
t=   0.032 s  sample      1024  true A       predicted A       confidence 0.80  ok
t=   0.048 s  sample      1536  true A       predicted A       confidence 0.70  ok
t=   0.064 s  sample      2048  true A       predicted A       confidence 0.60  ok
t=   0.080 s  sample      2560  true B       predicted B       confidence 0.50  ok

128 frames classified in 0.3 s of wall time
class     frames  accuracy
A             64     87.5%
B             64     50.0%
all          128     68.8%
"""

EXPECTED = """```
$ .venv/bin/python apps/modrec_demo --no-throttle
t=   0.000 s  sample         0  true A       predicted A       confidence 0.90  ok
t=   0.016 s  sample       512  true A       predicted B       confidence 0.40  --
t=   0.032 s  sample      1024  true A       predicted A       confidence 0.80  ok
t=   0.048 s  sample      1536  true A       predicted A       confidence 0.70  ok
t=   0.064 s  sample      2048  true A       predicted A       confidence 0.60  ok
...
class     frames  accuracy
A             64     87.5%
B             64     50.0%
all          128     68.8%
```"""


def test_readme_holds_the_markers_once_in_order_around_a_code_block():
    text = (ROOT / "README.md").read_text()
    assert text.count(rx.BEGIN) == 1 and text.count(rx.END) == 1
    inside = text.split(rx.BEGIN, 1)[1].split(rx.END, 1)
    assert len(inside) == 2, "the end marker comes before the begin marker"
    block = inside[0].strip()
    assert block.startswith("```\n$ ") and block.endswith("\n```") and "\nall " in block


def test_excerpt_from_a_printout():
    assert rx.excerpt(FAKE_OUTPUT) == EXPECTED  # five decisions, the table; no wall time, no model path


def test_excerpt_refuses_a_printout_without_decisions_or_table():
    with pytest.raises(rx.ExcerptError, match="no decision line"):
        rx.excerpt("class     frames  accuracy\nall 1 100.0%\n")
    with pytest.raises(rx.ExcerptError, match="no accuracy table"):
        rx.excerpt(FAKE_OUTPUT.split("\n128 frames")[0])
    with pytest.raises(rx.ExcerptError, match="no 'all' row"):
        rx.excerpt(FAKE_OUTPUT.replace("all ", "every "))


def test_rewrite_touches_only_the_text_between_the_markers(tmp_path):
    before = "# Title\n\nprose ```not code```\n\n"
    after = "\n\nmore prose\n<!-- results:begin -->\nother block\n<!-- results:end -->\n"
    text = f"{before}{rx.BEGIN}\n```\nold output\n```\n{rx.END}{after}"
    new = rx.rewrite(text, EXPECTED)
    assert new == f"{before}{rx.BEGIN}\n{EXPECTED}\n{rx.END}{after}"
    assert rx.rewrite(new, EXPECTED) == new  # a second run changes nothing

    readme = tmp_path / "README.md"
    readme.write_text(text)
    printout = tmp_path / "demo.txt"
    printout.write_text(FAKE_OUTPUT)
    assert rx.main(["--readme", str(readme), "--output", str(printout), "--check"]) == 1
    assert readme.read_text() == text  # --check writes nothing
    assert rx.main(["--readme", str(readme), "--output", str(printout)]) == 0
    assert readme.read_text() == new
    assert rx.main(["--readme", str(readme), "--output", str(printout), "--check"]) == 0


@pytest.mark.parametrize("text", ["no markers\n", f"{rx.END}\n{rx.BEGIN}\n", f"{rx.BEGIN}\n{rx.BEGIN}\n{rx.END}\n"])
def test_rewrite_refuses_missing_doubled_or_reversed_markers(text):
    with pytest.raises(rx.ExcerptError):
        rx.rewrite(text, EXPECTED)


def test_the_readme_shows_todays_demo_run():
    # the run README.md quotes takes a few seconds (no throttle); from the source tree, as test_demo runs it
    result = subprocess.run([sys.executable, *rx.DEMO_ARGS], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={"PYTHONPATH": str(_SHIM), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    text = (ROOT / "README.md").read_text()
    assert rx.rewrite(text, rx.excerpt(result.stdout)) == text, (
        "README.md's demo excerpt is not today's run: .venv/bin/python apps/readme_excerpts.py rewrites it")
