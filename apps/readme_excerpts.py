#!/usr/bin/env python3
"""Keep README.md's demo excerpt true: run the demo it quotes and rewrite the excerpt.

    .venv/bin/python apps/readme_excerpts.py           # run the demo, rewrite README.md
    .venv/bin/python apps/readme_excerpts.py --check   # exit 1 when README.md is stale

The excerpt is the text between ``<!-- demo-output:begin -->`` and ``<!-- demo-output:end -->``
in README.md; nothing outside the markers changes. It shows the command, the demo's first
decisions and its accuracy table. The run is `make demo`'s (`apps/modrec_demo`, 20 s of stream
at 10 dB, the shipped default model) without the throttle, which changes only the wall time:
the frames and the decisions are the same, the seed fixed. It takes a few seconds.

The demo runs with this interpreter and the installed module (`make install` first), or with
``--output FILE``, an earlier run's printout.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN = "<!-- demo-output:begin -->"
END = "<!-- demo-output:end -->"
# What the excerpt says was run, and what runs (from the checkout's root).
DEMO_ARGS = ("apps/modrec_demo", "--no-throttle")
SHOWN_COMMAND = ".venv/bin/python " + " ".join(DEMO_ARGS)
HEAD_LINES = 5  # decisions shown before the "..."


class ExcerptError(ValueError):
    pass


def excerpt(output, command=SHOWN_COMMAND, head=HEAD_LINES):
    """The README's code block from the demo's printout: the command, the first ``head``
    decision lines (``t=...``), ``...`` and the accuracy table (``class`` header to the ``all``
    row). Raises ExcerptError when the printout lacks either part."""
    lines = output.splitlines()
    decisions = [line.rstrip() for line in lines if line.startswith("t=")][:head]
    start = next((k for k, line in enumerate(lines) if line.split()[:3] == ["class", "frames", "accuracy"]), None)
    if not decisions:
        raise ExcerptError("the demo printed no decision line (t= ...)")
    if start is None:
        raise ExcerptError("the demo printed no accuracy table (class frames accuracy)")
    end = next((k for k in range(start + 1, len(lines)) if lines[k].split()[:1] == ["all"]), None)
    if end is None:
        raise ExcerptError("the demo's accuracy table has no 'all' row")
    table = [line.rstrip() for line in lines[start:end + 1]]
    return "\n".join(["```", f"$ {command}", *decisions, "...", *table, "```"])


def rewrite(text, block):
    """``text`` with what lies between the markers replaced by ``block`` (markers kept, on lines
    of their own). Raises ExcerptError unless each marker is there once, begin before end."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ExcerptError(f"README must hold {BEGIN} and {END} once each")
    head, rest = text.split(BEGIN, 1)
    if END not in rest:
        raise ExcerptError(f"{END} comes before {BEGIN}")
    tail = rest.split(END, 1)[1]
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def run_demo(python=sys.executable, timeout=300):
    """The demo's printout (stdout), run from the checkout's root; raises on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    result = subprocess.run([python, *DEMO_ARGS], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise ExcerptError(f"{' '.join(DEMO_ARGS)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", type=Path, default=README, help="the file to rewrite (default README.md)")
    parser.add_argument("--output", type=Path, help="take the demo's printout from this file instead of running it")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the excerpt is stale")
    args = parser.parse_args(argv)
    try:
        output = args.output.read_text() if args.output else run_demo()
        text = args.readme.read_text()
        new = rewrite(text, excerpt(output))
    except (OSError, ExcerptError) as err:
        print(f"readme_excerpts: {err}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            print(f"{args.readme}: the demo excerpt is stale; run apps/readme_excerpts.py", file=sys.stderr)
            return 1
        print(f"{args.readme}: the demo excerpt is up to date")
        return 0
    if new != text:
        args.readme.write_text(new)
    print(f"{args.readme}: demo excerpt {'rewritten' if new != text else 'unchanged'}")
    print(excerpt(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
