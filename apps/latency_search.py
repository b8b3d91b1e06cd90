#!/usr/bin/env python3
"""The latency search of issue 23: MobileNet-1D's design choices timed on this CPU, not counted.

FLOPs are the wrong guide on a CPU (depthwise convolutions and squeeze-excite cost more time per
FLOP than dense ones; MnasNet, Tan et al. CVPR 2019, and MobileNetV3, Howard et al. ICCV 2019,
search with latency measured on the target device for the same reason). configs/studies/latency_search.yaml
names the axes; every combination is a candidate. configs/studies/latency_search_c16.yaml is a second,
narrower round around what the first found (channel counts in multiples of 16, ReLU everywhere),
run with ``--config`` and reported into the same page between its own markers.

  --stage measure  each candidate (fresh weights) exported in the 2-D layout (conv2d_layout.py)
                   and timed in ONNX Runtime, one thread, batch 256, in paired rounds against the
                   reference (runtime/timing.py: the ratio is measured side by side); its params
                   and FLOPs. Writes runs/<config name>/latency.json.
  --stage report   the table of every candidate, with the test-split accuracy of those trained
                   to the end (the config's ``trained``: their evaluation summaries, e.g.
                   models/<name>.summary.json), and a plot of accuracy against measured frames/s
                   with today's shipped students on it (timed as they are, in the same paired
                   way). Writes models/LATENCY.md (between the study's markers) and models/<config name>.png.
"""

import argparse
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- latency:begin -->", "<!-- latency:end -->"  # a study's ``marker`` key replaces "latency"


def markers(study):
    """The lines between which the report writes a study's table in its page."""
    name = study.get("marker", "latency")
    return BEGIN.replace("latency", name), END.replace("latency", name)


def candidate_cfg(axes):
    """mobilenet1d build settings for one point of the search space (configs/studies/latency_search.yaml).

    Axes a study may leave out take the default's value: ``channels`` "default" (the model's own
    rounding to multiples of 8) or 16 (every block's expand and output channels rounded up to a
    multiple of 16 after the width multiplier, which is then folded into the blocks: ONNX
    Runtime's blocked layout on AVX-512 works in blocks of 16 floats, models/LATENCY.md);
    ``activation`` "default", "relu" (ReLU in every block) or "relu_all" (also in the stem, the
    last 1x1 convolution and the head: ``outer_act``); ``fused`` 0 or the number of leading
    blocks built as Fused-MBConv (one regular convolution for the expansion and the depthwise
    one: ``fused_blocks``)."""
    from gnuradio.modrec.training.models.mobilenet1d import DEFAULT_BLOCKS

    activation, width = axes["activation"], float(axes["width_mult"])
    multiple = axes.get("channels", "default")
    if multiple not in ("default", 16):
        raise ValueError(f"channels: expected 'default' or 16, got {multiple!r}")
    if activation not in ("default", "relu", "relu_all"):
        raise ValueError(f"activation: expected 'default', 'relu' or 'relu_all', got {activation!r}")
    fused = axes.get("fused", 0)
    if not (isinstance(fused, int) and 0 <= fused <= axes["depth"]):
        raise ValueError(f"fused: expected 0..depth ({axes['depth']}) leading blocks, got {fused!r}")

    def rounded(c):  # channels 'default': left to the model (multiples of 8, after its width multiplier)
        return c if multiple == "default" else -(-int(c * width) // 16) * 16

    blocks = []
    for i, (k, e, o, se, act, stride) in enumerate(DEFAULT_BLOCKS[: axes["depth"]]):
        expand = e if i == 0 else max(o, int(e * axes["expansion"]))  # the first block has no expansion
        blocks.append([k if axes["kernel"] == "default" else int(axes["kernel"]), rounded(expand), rounded(o),
                       bool(se and axes["squeeze_excite"]), act if activation == "default" else "relu", stride])
    cfg = {"blocks": blocks, "width_mult": width if multiple == "default" else 1.0}
    if multiple == 16 and width != 1.0:
        cfg.update(stem_channels=rounded(16), last_channels=rounded(128))
    if activation == "relu_all":
        cfg["outer_act"] = "relu"
    if fused:
        cfg["fused_blocks"] = fused
    return cfg


def builds_candidate(model_cfg, axes):
    """Whether a config's ``model.cfg`` builds the candidate at ``axes`` (a setting the config
    leaves out is the model's default: width_mult 1.0)."""
    built = {"width_mult": 1.0, **model_cfg}
    built["blocks"] = [list(b) for b in built.get("blocks", [])]
    return all(built.get(k) == v for k, v in candidate_cfg(axes).items())


def candidate_name(axes):
    return ", ".join(f"{k} {v}" for k, v in axes.items())


def timed(paths, frames, rounds):
    """{name: frames/s (median round)} and {name: speed vs 'reference'} of ONNX files in paired rounds."""
    from gnuradio.modrec.runtime import OnnxModel
    from gnuradio.modrec.runtime.timing import paired_times, speed_ratio

    predicts = {name: OnnxModel(str(path), threads=1).predict for name, path in paths.items()}
    times = paired_times(predicts, frames, rounds=rounds)
    return ({name: 1 / float(np.median(t)) for name, t in times.items()},
            {name: speed_ratio(times, "reference", name) for name in times})


def measure(study, out, rounds):
    import torch

    from gnuradio.modrec.classes import RADIOML2016_CLASSES
    from gnuradio.modrec.training.flops import count_flops, count_params
    from gnuradio.modrec.training.models import create_model
    from gnuradio.modrec.training.onnx_export import export_onnx

    arch, axes = study["architecture"], study["axes"]
    frames = np.random.default_rng(0).standard_normal((4096, 2, 128)).astype(np.float32)
    rows = []
    points = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    with tempfile.TemporaryDirectory() as tmp:
        def exported(name, cfg):
            torch.manual_seed(0)
            model = create_model(arch, **cfg)
            path = Path(tmp) / f"{name}.onnx"
            export_onnx(model, path, classes=list(RADIOML2016_CLASSES), frame_len=128, training={}, parity=False)
            return path, count_params(model), count_flops(model, 128)

        reference, ref_params, ref_flops = exported("reference", study["reference"])
        for k, point in enumerate(points):
            cfg = candidate_cfg(point)
            path, params, flops = exported(f"c{k}", cfg)
            fps, ratio = timed({"reference": reference, "candidate": path}, frames, rounds)
            rows.append({"axes": point, "cfg": cfg, "params": params, "flops": flops,
                         "frames_per_s": fps["candidate"], "speed_vs_reference": ratio["candidate"],
                         "reference_frames_per_s": fps["reference"]})
            print(f"[{k + 1}/{len(points)}] {candidate_name(point)}: {fps['candidate']:,.0f} frames/s, "
                  f"x{ratio['candidate']:.2f} vs reference, {params:,} params, {flops / 1e6:.2f} MFLOPs", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"architecture": arch, "reference": {"cfg": study["reference"], "params": ref_params,
                                                                    "flops": ref_flops}, "candidates": rows}, indent=1))
    print(f"wrote {out}")


def _summary(name):
    """The test-split evaluation of a trained model: models/<name>.summary.json, else its run's."""
    for path in (ROOT / "models" / f"{name}.summary.json", ROOT / "runs" / name / "eval" / "summary.json"):
        if path.is_file():
            return json.loads(path.read_text())
    return None


def _accuracy(summary):
    """(all SNRs, SNR >= 0, SNR >= 10) of an evaluation summary (the ONNX model's when both were scored)."""
    m = summary.get("onnx") or summary.get("checkpoint") or summary
    return m["accuracy"], m["accuracy_snr_ge_0"], m["accuracy_snr_ge_10"]


def report(study, measured, out_md, out_png, rounds):
    from gnuradio.modrec import contract
    from gnuradio.modrec.runtime import OnnxModel, shipped_models
    from gnuradio.modrec.training.tables_and_figures import legend_beside, line_styles, pyplot, save_figure

    data = json.loads(measured.read_text())
    rows = sorted(data["candidates"], key=lambda r: -r["frames_per_s"])
    trained = {json.dumps(axes, sort_keys=True): name for name, axes in (study.get("trained") or {}).items()}
    for name, axes in (study.get("trained") or {}).items():
        config = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
        if not builds_candidate(config["model"]["cfg"], axes):
            sys.exit(f"configs/{name}.yaml: its model is not the candidate {candidate_name(axes)}")

    # today's shipped students (plain, fp32, under 1 MB), timed as shipped against the reference
    results = {r["name"]: r for r in json.loads((ROOT / "models" / "results.json").read_text())["models"]}
    students = {n: p for n, p in shipped_models().items() if n in results and results[n]["role"] == "student"}
    frames = np.random.default_rng(0).standard_normal((4096, 2, 128)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        import torch

        from gnuradio.modrec.classes import RADIOML2016_CLASSES
        from gnuradio.modrec.training.models import create_model
        from gnuradio.modrec.training.onnx_export import export_onnx

        torch.manual_seed(0)
        reference = Path(tmp) / "reference.onnx"
        export_onnx(create_model(data["architecture"], **data["reference"]["cfg"]), reference,
                    classes=list(RADIOML2016_CLASSES), frame_len=128, training={}, parity=False)
        paths = {"reference": reference, **students}
        for name in trained.values():
            if (ROOT / "models" / f"{name}.onnx").is_file():
                paths[name] = ROOT / "models" / f"{name}.onnx"
        fps, ratio = timed(paths, frames, rounds)

    lines = ["| candidate | frames/s | vs reference | params | MFLOPs | trained as | all SNRs | SNR ≥ 0 | SNR ≥ 10 |",
             "|---|---|---|---|---|---|---|---|---|"]
    points = []
    for r in rows:
        name = trained.get(json.dumps(r["axes"], sort_keys=True))
        summary = _summary(name) if name else None
        acc = _accuracy(summary) if summary else (None, None, None)
        cells = [f"{100 * a:.1f} %" if a is not None else "" for a in acc]
        lines.append(f"| {candidate_name(r['axes'])} | {r['frames_per_s']:,.0f} | x{r['speed_vs_reference']:.2f} | "
                     f"{r['params']:,} | {r['flops'] / 1e6:.2f} | {name or ''} | " + " | ".join(cells) + " |")
        if summary:
            points.append((name + " (searched, 2-D)", r["speed_vs_reference"], acc[1]))
    for name in students:
        points.append((f"{name} (shipped, {OnnxModel(students[name]).metadata.get(contract.CONV_LAYOUT, '1d')})",
                       ratio[name], results[name]["accuracy_snr_ge_0"]))
    # the reference is the default's classifier: its accuracy at the 2-D layout's speed
    default_student = study.get("reference_student")
    if default_student in results:
        points.append((f"{default_student} (2-D export: the reference)", 1.0, results[default_student]["accuracy_snr_ge_0"]))
    text = (f"Reference: {data['architecture']} with its default config (today's default's classifier), "
            f"{fps['reference']:,.0f} frames/s in the 2-D layout in the report's run. Candidates timed in "
            f"the measure run; shipped students timed as shipped, paired with the same reference.\n\n"
            + "\n".join(lines))
    begin, end = markers(study)
    page = out_md.read_text() if out_md.is_file() else f"{begin}\n{end}\n"
    if begin not in page or end not in page:
        sys.exit(f"{out_md}: expected the lines {begin} and {end} around the study's table")
    head, rest = page.split(begin, 1)
    out_md.write_text(head + begin + "\n" + text + "\n" + end + rest.split(end, 1)[1])

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = line_styles([(label.split(" (")[1], None, label) for label, _, _ in points])
    ref_fps = fps["reference"]
    for (label, speed, acc), style in zip(points, styles):
        ax.plot([speed * ref_fps], [100 * acc], linestyle="none", markersize=8, label=label,
                **{k: v for k, v in style.items() if k != "linestyle"})
    ax.set_xlabel("ONNX Runtime frames/s (one thread, batch 256; this machine)")
    ax.set_ylabel("test accuracy at SNR ≥ 0 dB (%)")
    ax.set_title("accuracy against measured speed")
    ax.grid(alpha=0.3)
    legend_beside(ax, fontsize=8)
    save_figure(fig, out_png)
    print(text)
    print(f"wrote {out_md} and {out_png}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=("measure", "report"), required=True)
    parser.add_argument("--config", default=str(ROOT / "configs" / "studies" / "latency_search.yaml"))
    parser.add_argument("--measured", default="",
                        help="the measure stage's output, the report stage's input (default: "
                             "runs/<the config's name>/latency.json)")
    parser.add_argument("--rounds", type=int, default=3, help="paired timing rounds per comparison (the median counts)")
    parser.add_argument("--out", default=str(ROOT / "models" / "LATENCY.md"))
    parser.add_argument("--plot", default="", help="default: models/<the config's name>.png")
    args = parser.parse_args(argv)
    stem = Path(args.config).stem
    measured = Path(args.measured or ROOT / "runs" / stem / "latency.json")
    study = yaml.safe_load(Path(args.config).read_text())
    if args.stage == "measure":
        measure(study, measured, args.rounds)
    else:
        report(study, measured, Path(args.out), Path(args.plot or ROOT / "models" / f"{stem}.png"), args.rounds)


if __name__ == "__main__":
    main()
