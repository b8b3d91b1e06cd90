#!/usr/bin/env python3
"""int8 against fp32 for every shipped plain model: speed side by side, accuracy on the test split.

For each shipped model (early-exit entries and int8 files left out) an int8 copy is made with
``modrec quantize``'s code (training/quantize.py: static, QDQ, per-channel weights, calibrated on
generated frames), and both are
- timed in paired rounds on the same frames (runtime/timing.py; one thread, batch 256), and
- scored on the test split of the shared synthetic dataset (configs/mobilenet1d.yaml's data:
  44,000 frames, 11 classes, -20..18 dB): top-1 accuracy over all SNRs and at SNR >= 0 dB (a
  version-2 model's noise class counts as wrong: every test frame holds a signal).
An int8 copy ships (``--write``: models/<name>-int8.onnx) where it is at least --min-speedup times
as fast and loses at most --max-loss-pp at SNR >= 0 dB (its card: ``modrec evaluate --onnx ...
--card``). The table goes between the markers of --out (markdown).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from gnuradio.modrec import contract
from gnuradio.modrec.runtime import OnnxModel, shipped_models
from gnuradio.modrec.runtime.timing import paired_times, speed_ratio

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- quantization:begin -->", "<!-- quantization:end -->"
HEADER = ("| model | conv layout | fp32 frames/s | int8 frames/s | int8 / fp32 speed | fp32 SNR >= 0 | int8 SNR >= 0 "
          "| change (pp) | all SNRs fp32 / int8 | KB fp32 / int8 | int8 ships |",
          "|---|---|---|---|---|---|---|---|---|---|---|")


def test_split(config):
    """(iq float32 (N, 2, L), labels int (N,), snr (N,), class names) of the config's test split."""
    from gnuradio.modrec.training.config import load_config
    from gnuradio.modrec.training.run_data import data_source

    source = data_source(load_config(config), log=lambda *a: None, progress=False)
    split = source.load("test")
    return split.x, split.y, split.snr_db, list(split.classes)


def accuracy(model, iq, labels, snr, data_classes):
    """(all SNRs, SNR >= 0 dB) top-1 accuracy; the model's columns matched to the data's classes by name."""
    probs = np.concatenate([model.predict(iq[i : i + 4096]) for i in range(0, len(iq), 4096)])
    column = {name: k for k, name in enumerate(model.classes)}
    wanted = np.array([column[c] for c in data_classes])[labels]
    right = probs.argmax(1) == wanted
    return float(right.mean()), float(right[snr >= 0].mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "mobilenet1d.yaml"), help="whose data's test split scores the models")
    parser.add_argument("--only", nargs="*", help="model names (default: every shipped plain model)")
    parser.add_argument("--max-loss-pp", type=float, default=0.5, help="largest accuracy loss at SNR >= 0 dB an int8 file may ship with")
    parser.add_argument("--min-speedup", type=float, default=1.1,
                        help="int8 / fp32 speed an int8 file must reach to count as faster (default 1.1: a ratio within "
                             "10 %% of 1 is within the machine's noise)")
    parser.add_argument("--rounds", type=int, default=5, help="paired timing rounds (the median counts)")
    parser.add_argument("--write", action="store_true",
                        help="write the int8 files that qualify to models/ (each one's card is then made with "
                             "modrec evaluate --onnx models/<name>-int8.onnx --card models/<name>-int8.md)")
    parser.add_argument("--out", help="markdown file whose table (between the quantization markers) is replaced; "
                                      "with --only, only those models' rows are")
    parser.add_argument("--json", help="write the figures as JSON here")
    args = parser.parse_args(argv)

    from gnuradio.modrec.training.quantize import quantize_int8

    iq, labels, snr, data_classes = test_split(args.config)
    frames = iq[np.random.default_rng(0).permutation(len(iq))[:8192]]
    names = args.only or [n for n, p in shipped_models().items() if not n.endswith("-int8")
                          and int(OnnxModel(p).metadata[contract.EXITS]) == 1]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            started = time.perf_counter()
            fp32_path = shipped_models()[name]
            int8_path = Path(tmp) / f"{name}-int8.onnx"
            quantize_int8(fp32_path, int8_path)
            fp32, int8 = OnnxModel(fp32_path, threads=1), OnnxModel(str(int8_path), threads=1)
            times = paired_times({"fp32": fp32.predict, "int8": int8.predict}, frames, rounds=args.rounds)
            acc32, acc32_0 = accuracy(fp32, iq, labels, snr, data_classes)
            acc8, acc8_0 = accuracy(int8, iq, labels, snr, data_classes)
            row = {"name": name, "conv_layout": fp32.metadata.get(contract.CONV_LAYOUT, contract.CONV_LAYOUT_1D),
                   "fp32_frames_per_s": 1 / float(np.median(times["fp32"])),
                   "int8_frames_per_s": 1 / float(np.median(times["int8"])),
                   "speedup": speed_ratio(times, "fp32", "int8"),
                   "fp32_accuracy": acc32, "int8_accuracy": acc8, "fp32_accuracy_snr_ge_0": acc32_0,
                   "int8_accuracy_snr_ge_0": acc8_0, "fp32_kb": Path(fp32_path).stat().st_size / 1024,
                   "int8_kb": int8_path.stat().st_size / 1024}
            row["loss_pp_snr_ge_0"] = 100 * (acc32_0 - acc8_0)
            row["ships"] = row["speedup"] >= args.min_speedup and row["loss_pp_snr_ge_0"] <= args.max_loss_pp
            rows.append(row)
            print(f"{name}: int8 x{row['speedup']:.2f} ({row['fp32_frames_per_s']:,.0f} -> {row['int8_frames_per_s']:,.0f} "
                  f"frames/s), SNR >= 0 dB {100 * acc32_0:.2f} -> {100 * acc8_0:.2f} %"
                  f"{' (ships)' if row['ships'] else ''} [{time.perf_counter() - started:.0f} s]", flush=True)
            if args.write and row["ships"]:
                target = ROOT / "models" / f"{name}-int8.onnx"
                target.write_bytes(int8_path.read_bytes())

    lines = [f"| {r['name']} | {r['conv_layout']} | {r['fp32_frames_per_s']:,.0f} | {r['int8_frames_per_s']:,.0f} | "
             f"{r['speedup']:.2f}x | {100 * r['fp32_accuracy_snr_ge_0']:.2f} % | {100 * r['int8_accuracy_snr_ge_0']:.2f} % | "
             f"{-r['loss_pp_snr_ge_0']:+.2f} | {100 * r['fp32_accuracy']:.1f} / {100 * r['int8_accuracy']:.1f} % | "
             f"{r['fp32_kb']:.0f} / {r['int8_kb']:.0f} | {'yes' if r['ships'] else 'no'} |" for r in rows]
    print("\n".join([*HEADER, *lines]))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.out:
        page = Path(args.out).read_text()
        if BEGIN not in page or END not in page:
            sys.exit(f"{args.out}: no {BEGIN} ... {END} markers to put the table between")
        head, rest = page.split(BEGIN, 1)
        table, tail = rest.split(END, 1)
        # --only measures some models: the others keep the rows of the run that measured them
        kept = table_rows(table) if args.only else {}
        text = "\n".join([*HEADER, *merged_rows(kept, {r["name"]: line for r, line in zip(rows, lines)})])
        Path(args.out).write_text(head + BEGIN + "\n" + text + "\n" + END + tail)


def table_rows(table):
    """{model name: its line} of a table this script wrote (the text between the markers)."""
    return {line.split("|")[1].strip(): line for line in table.splitlines()
            if line.startswith("| ") and line not in HEADER}


def merged_rows(kept, measured):
    """The table's rows in name order: ``kept`` ({name: line}, rows measured earlier) with the
    ``measured`` ones ({name: line}) in place of their names' old rows."""
    return [line for _, line in sorted({**kept, **measured}.items())]


if __name__ == "__main__":
    main()
