"""Command line: ``modrec {data,train,evaluate,export,from-onnx,online-teacher,ensemble,card,report,...}`` (also ``python -m gnuradio.modrec.training``)."""

import argparse
import json
import math
import os
import shlex
import sys

from .. import __version__, contract


# Option types: a value outside an option's range is refused by argparse, naming the option
# (an option either takes effect or is refused, never silently ignored).
def _at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _float_where(ok, expected):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = expected
    return parse


_positive_float = _float_where(lambda v: v > 0, "a number > 0")
_non_negative_float = _float_where(lambda v: v >= 0, "a number >= 0")


# What every option that takes a model file accepts (runtime.resolve_model).
_MODEL_ARG = ("a contract ONNX model: a path, or a shipped model's name such as cnn3 or mobilenet1d-skd-v2 "
              "(`modrec models` lists them)")
_FORCE_HELP = "replace {what} that already exists (without it an existing file is refused)"


def _parser():
    p = argparse.ArgumentParser(prog="modrec", description="gr-modrec training tools (`modrec COMMAND --help` for one "
                                                           "command's options)")
    p.add_argument("--version", action="version", version=f"modrec (gr-modrec) {__version__}",
                   help="print the gr-modrec version and exit")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    # main() hands `modrec data ...` to the dataset builder's own parser (data/__main__.py) before
    # this one runs; this entry only lists the command.
    sub.add_parser("data", help="build a synthetic dataset (modrec data --help)", add_help=False)

    t = sub.add_parser("train", help="train a model from an experiment YAML")
    t.add_argument("--config", required=True, help="experiment YAML, e.g. configs/cnn3.yaml")
    t.add_argument("--resume", action="store_true", help="continue from <output dir>/last.pt (checkpointed each epoch)")
    t.add_argument("--epochs", type=_at_least(1), help="epochs to train, >= 1 (default: the config's train.epochs)")
    t.add_argument("--batch-size", type=_at_least(1),
                   help="frames per training batch, >= 1 (default: the config's train.batch_size)")
    t.add_argument("--lr", type=_positive_float, help="peak learning rate, > 0 (default: the config's optim.lr)")
    t.add_argument("--seed", type=_at_least(0), help="seed of weights, augmentation and batch order, >= 0 (default: "
                                                    "the config's seed)")
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps; auto = CUDA when there is one (default: the "
                                    "config's train.device)")
    t.add_argument("--threads", type=_at_least(0), help="torch intra-op threads, 0 = all cores (default: the config's "
                                                       "train.threads)")
    t.add_argument("--out", help="run directory for checkpoints and history (default: the config's output_dir, "
                                 "else runs/<experiment>)")
    t.add_argument("--data", help="train on this file or dataset (sets data.source): rml2016:FILE, rml2018:FILE, "
                                  "sigmf:PATH, or a bare path whose format is detected")
    t.add_argument("--data-root", help="synthetic dataset dir (default: cache dir named by data.name)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set augment.freq_offset=0.01 (repeatable)")
    t.add_argument("--stop-after", type=_at_least(1), help="stop after N epochs of this invocation (resume later)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars (one log line per epoch)")

    e = sub.add_parser("evaluate", help="evaluate a checkpoint and/or ONNX model on a dataset or file")
    e.add_argument("--checkpoint", help="a training checkpoint (runs/<experiment>/best.pt): scored with torch when "
                                        "no --onnx is given; with --onnx it only says where its data and splits are")
    e.add_argument("--onnx", metavar="MODEL", help=f"{_MODEL_ARG}, scored with ONNX Runtime")
    e.add_argument("--data", help="what to score on (default: the checkpoint's training data): rml2016:FILE, "
                                  "rml2018:FILE, sigmf:PATH, a dataset dir, or a bare path whose format is detected")
    e.add_argument("--split", help="the split to score (default: test of a dataset dir, all = every frame of a file)")
    e.add_argument("--data-split", help="files: how to split them, train/val/test percentages (default 60/20/20)")
    e.add_argument("--data-seed", type=_at_least(0), help="files: the split seed (default 2016)")
    e.add_argument("--limit", type=_at_least(0), help="files: at most this many frames per (class, SNR) before splitting")
    e.add_argument("--classes", help="rml2018: comma-separated names of Y's columns (default: the corrected order); "
                                     "sigmf: the classes labels must belong to")
    e.add_argument("--out", required=True, help="directory for summary.json, per-SNR tables and figures (created; "
                                                "files of an earlier evaluation there are replaced)")
    e.add_argument("--device", default="auto", help="torch device for scoring a checkpoint: auto | cpu | cuda | "
                                                    "cuda:N (default auto)")
    e.add_argument("--no-latency", action="store_true", help="do not time the ONNX model (ms per frame at batch 1, "
                                                             "frames/s at batch 256), which takes a few seconds")
    e.add_argument("--card", help="also write a model card (markdown) here, its figures and summary copied beside it")
    e.add_argument("--force", action="store_true", help=_FORCE_HELP.format(what="a --card file"))

    x = sub.add_parser("export", help="export a checkpoint to a contract ONNX model")
    x.add_argument("--checkpoint", required=True, help="the training checkpoint to export (runs/<experiment>/best.pt)")
    x.add_argument("--out", required=True, help="the .onnx file to write, e.g. runs/<experiment>/<experiment>.onnx "
                                                "(an early-exit model also writes <stem>.stage<k>.onnx and "
                                                "<stem>.exits.onnx beside it)")
    x.add_argument("--force", action="store_true",
                   help=_FORCE_HELP.format(what="an --out file") + "; e.g. to regenerate a shipped model")
    x.add_argument("--opset", type=_at_least(7), default=18, help="ONNX opset to write (default 18); refused when "
                   "the exporters cannot write it")
    x.add_argument("--legacy", action="store_true", help="use the TorchScript exporter (dynamo=False)")
    x.add_argument("--exit-policy", choices=contract.EXIT_POLICIES,
                   help="early-exit models: the exit rule (default: the run's exits.policy)")
    x.add_argument("--exit-budget-pp", type=_non_negative_float,
                   help="early-exit models: validation accuracy, in percentage points, the threshold may cost "
                        "(default: the run's exits.budget_pp)")
    x.add_argument("--exit-budget-snr-min", type=float,
                   help="early-exit models: also hold the budget on frames at SNR >= this, dB (default: the run's "
                        "exits.budget_snr_min)")
    x.add_argument("--detector", help="a signal detector's checkpoint (model signal_detector) to join to the classifier: "
                                      "the file gains the class 'noise' and the output snr_db (contract version 2)")
    x.add_argument("--noise-false-rate", type=float, default=0.005,
                   help="with --detector: the share of known frames (validation split, SNR >= 0 dB) it may call noise "
                        "(default 0.005)")
    x.add_argument("--unknown-score", choices=contract.UNKNOWN_SCORES,
                   help="calibrate an 'unknown' threshold on this open-set score (contract version 2)")
    x.add_argument("--unknown-false-rate", type=float, default=0.05,
                   help="with --unknown-score: the share of known frames (validation split, SNR >= 0 dB) the "
                        "threshold may call unknown (default 0.05)")
    x.add_argument("--data", help="frames for the parity check and the calibrations (default: the run's own data)")
    x.add_argument("--samples-per-symbol", type=_at_least(1), help="the model's samples per symbol, when its training data "
                                                           "did not state it (RadioML 2018, SigMF)")

    fo = sub.add_parser("from-onnx", help="rebuild a checkpoint from a shipped plain classifier's ONNX file "
                                          "(exact in evaluation; a teacher, exits.init_from or an ensemble member "
                                          "when the run is gone)")
    fo.add_argument("--onnx", required=True, metavar="MODEL",
                    help=f"{_MODEL_ARG}; a plain classifier: a student, a teacher or an ensemble (not early-exit, "
                         f"not pruned, not joined to a signal detector, not int8)")
    fo.add_argument("--out", required=True, help="checkpoint to write, e.g. runs/mobilenet1d/best.pt")
    fo.add_argument("--force", action="store_true", help=_FORCE_HELP.format(what="an --out checkpoint") +
                    "; a training run's own best.pt is worth more than the rebuilt one")

    rl = sub.add_parser("relayout", help="rewrite a 2-D contract model exported before squeeze-excite and global pooling "
                                         "were kept in ONNX Runtime's blocked layout (the export does it now): the same "
                                         "outputs (checked), faster")
    rl.add_argument("--onnx", required=True, metavar="MODEL",
                    help=f"{_MODEL_ARG}; a plain fp32 model in the 2-D layout (e.g. a file exported before 2026-12-01)")
    rl.add_argument("--out", required=True, help="the model to write (may be --onnx itself, with --force)")
    rl.add_argument("--force", action="store_true", help=_FORCE_HELP.format(what="an --out model"))

    ot = sub.add_parser("online-teacher", help="write the teacher an online-distillation run (bdkd) trained beside "
                                               "its student as a checkpoint of its own, to evaluate, export and ship")
    ot.add_argument("--checkpoint", required=True, help="the online-distillation run's checkpoint "
                                                        "(runs/<experiment>/best.pt: the teacher saved with it)")
    ot.add_argument("--out", required=True, help="checkpoint to write, e.g. runs/<experiment>-teacher/best.pt")
    ot.add_argument("--force", action="store_true", help=_FORCE_HELP.format(what="an --out checkpoint"))

    en = sub.add_parser("ensemble", help="join trained classifiers into one checkpoint of the ensemble model "
                                         "(averaged logits), to evaluate, export, ship and distil from")
    en.add_argument("--checkpoints", nargs="+", required=True, metavar="CHECKPOINT",
                    help="the members' checkpoints (at least 2; runs/<run>/best.pt, or rebuilt from a shipped file "
                         "by modrec from-onnx): the same classes, frame length and training data")
    en.add_argument("--out", required=True, help="checkpoint to write, e.g. runs/<name>/best.pt")
    en.add_argument("--force", action="store_true", help=_FORCE_HELP.format(what="an --out checkpoint"))

    q = sub.add_parser("quantize", help="an int8 copy of a contract model (static, QDQ, per-channel weights, "
                                        "calibrated on generated frames; onnxruntime.quantization)")
    q.add_argument("--onnx", required=True, metavar="MODEL", help=f"{_MODEL_ARG}; a plain (not early-exit) fp32 model")
    q.add_argument("--out", required=True, help="the int8 model to write, e.g. models/cnn3-int8.onnx")
    q.add_argument("--frames", type=_at_least(64), default=2048,
                   help="generated calibration frames, over the model's classes and SNRs -20..18 dB (default 2048)")
    q.add_argument("--seed", type=_at_least(0), default=0, help="seed of the calibration frames (default 0)")
    q.add_argument("--force", action="store_true", help=_FORCE_HELP.format(what="an --out model"))

    c = sub.add_parser("card", help="write a model card from an evaluation summary.json")
    c.add_argument("--summary", required=True, help="an evaluation's summary.json (modrec evaluate --out DIR writes "
                                                    "DIR/summary.json)")
    c.add_argument("--out", required=True, help="the card to write (markdown); its figures and summary are copied "
                                                "beside it as <stem>-*.png and <stem>.summary.json")
    c.add_argument("--name", help="the model's name in the card (default: the one the summary records, e.g. the "
                                  "evaluated ONNX file's stem)")
    c.add_argument("--force", action="store_true", help=_FORCE_HELP.format(what="an --out card") +
                   "; its ## Notes section is kept")

    m = sub.add_parser("models", help="the registered architectures and the shipped models, as tables")
    m.add_argument("--json", action="store_true", help="print JSON instead (default configs and every figure)")

    r = sub.add_parser("report", help="comparison table + plot over evaluation summaries of one test split")
    r.add_argument("--teacher", action="append", default=[], metavar="SUMMARY", help="a teacher's summary.json (repeatable)")
    r.add_argument("--student", action="append", default=[], metavar="SUMMARY", help="a student's summary.json (repeatable)")
    r.add_argument("--markdown", help="write the table here (between the results markers, if the file has them)")
    r.add_argument("--json", help="write the rows and the gap-closed fractions here")
    r.add_argument("--plot", help="write the accuracy-vs-SNR plot here (PNG)")
    r.add_argument("--remeasure", action="store_true", help="time all models' ORT speed side by side in this run")
    r.add_argument("--previous", metavar="JSON", help="an earlier report's --json: its rows for models not given "
                                                      "here stay (a run whose files are gone keeps its row)")
    lc = sub.add_parser("learning-curves", help="validation accuracy against training frames seen, over training runs")
    lc.add_argument("runs", nargs="+", metavar="RUN", help="run directories (each with the history.json modrec train writes)")
    lc.add_argument("--markdown", help="write the table here (between the results markers, if the file has them)")
    lc.add_argument("--plot", help="write the curves here (PNG)")
    pr = sub.add_parser("prune-report", help="pruning sweep table, summary and accuracy-vs-FLOPs plots")
    pr.add_argument("summaries", nargs="+", metavar="SUMMARY", help="summary.json of pruned runs and their unpruned baselines")
    pr.add_argument("--markdown", help="write the tables here (between the results markers, if the file has them)")
    pr.add_argument("--json", help="write the rows and the per-architecture summary here")
    pr.add_argument("--plot-dir", help="write pruning-<architecture>.png here")
    pr.add_argument("--budget-pp", type=_non_negative_float, default=0.5, help="accuracy loss allowed for the summary (default 0.5 pp)")
    pr.add_argument("--no-remeasure", action="store_true", help="keep the summaries' ORT speeds instead of timing all models side by side")
    ee = sub.add_parser("exits-eval", help="per-SNR exit rates, accuracy, cost and measured speed of an early-exit model")
    ee.add_argument("--onnx", required=True, metavar="MODEL",
                    help="the early-exit model's entry file (not a .stage<k> file), a path or a shipped name "
                         "such as mobilenet1d_ee")
    ee.add_argument("--plain", required=True, metavar="MODEL",
                    help="the plain student it extends, timed side by side: a path or a shipped name such as mobilenet1d")
    ee.add_argument("--data", required=True, help="dataset dir or file (rml2016:FILE, rml2018:FILE, sigmf:PATH, ...)")
    ee.add_argument("--split", default="test", help="the split to score (default test)")
    ee.add_argument("--out", required=True, help="write the result JSON here")
    er = sub.add_parser("exits-report", help="tables and plots over exits-eval results")
    er.add_argument("results", nargs="+", metavar="RESULT", help="result JSON files of modrec exits-eval")
    er.add_argument("--markdown", help="write the tables here (between the results markers, if the file has them)")
    er.add_argument("--json", help="write every result's figures here")
    er.add_argument("--plot", help="write the per-SNR plots here (PNG)")
    er.add_argument("--previous", help="an earlier report's JSON: its models not in RESULTS keep their rows")
    os_ = sub.add_parser("open-set-eval", help="what a model says about receiver noise, silence and modulations it "
                                               "never learnt: noise/unknown shares, open-set AUROC per SNR band")
    os_.add_argument("--onnx", required=True, metavar="MODEL", help=_MODEL_ARG)
    os_.add_argument("--frames", type=_at_least(1), default=200, help="frames per (class or modulation, SNR) (default 200)")
    os_.add_argument("--noise-frames", type=_at_least(1), default=4000, help="receiver-noise frames (default 4000)")
    os_.add_argument("--seed", type=_at_least(0), default=2016, help="seed of the frames (default 2016)")
    os_.add_argument("--json", help="write the result here")
    os_.add_argument("--markdown", help="write the tables here (between the results markers, if the file has them)")
    os_.add_argument("--plot", help="write the per-SNR figure here (PNG)")
    os_.add_argument("--no-progress", action="store_true", help="no progress bar")
    cl = sub.add_parser("classify", help="what is in this capture? classify a recording, write SigMF annotations "
                                         "and a timeline plot (no torch needed)")
    cl.add_argument("recording", metavar="RECORDING", help="a SigMF recording (.sigmf-meta, .sigmf-data or their "
                                                          "base name) or a raw I/Q file (give --format and --rate)")
    cl.add_argument("--model", help=f"{_MODEL_ARG} (default: the classifier block's default, marked * there)")
    cl.add_argument("--format", help="raw captures: SigMF datatype of the samples, e.g. cf32_le, ci16_le, ci8, cu8 "
                                     "(.cfile defaults to cf32_le)")
    cl.add_argument("--rate", type=_positive_float, help="raw captures: sample rate, Hz")
    cl.add_argument("--symbol-rate", type=_positive_float, help="symbol rate of the signal, Hz: resample to the model's "
                                                      "samples per symbol first (default: use the samples as they are)")
    cl.add_argument("--hop", type=_at_least(0), help="frame hop in samples at the model's rate (default or 0: the frame length)")
    cl.add_argument("--min-confidence", type=float, default=-1.0,
                    help="frames below this top probability are 'unknown'; -1 (default): the model's own rule "
                         "(its calibrated open-set threshold, none for a version-1 model)")
    cl.add_argument("--no-oversampling-check", action="store_true",
                    help="do not estimate the stream's samples per symbol (by default, frames where it is far from "
                         "the model's are 'unknown', as in the classifier block)")
    cl.add_argument("--threads", type=_at_least(1), default=1, help="onnxruntime intra-op threads (default 1)")
    cl.add_argument("--meta-out", help="annotations file (default <base>.modrec.sigmf-meta beside the recording)")
    cl.add_argument("--plot", help="timeline PNG (default <base>.modrec.png beside the recording)")
    cl.add_argument("--no-plot", action="store_true", help="write no timeline PNG")
    cl.add_argument("--no-progress", action="store_true", help="no progress bar")
    # `modrec CMD --help` opens with the line `modrec --help` lists for CMD
    for action in sub._choices_actions:
        command = sub.choices[action.dest]
        command.description = command.description or action.help
    return p


def _refuse_overwrite(path, force, command, flag):
    """ValueError naming ``path`` and --force when ``path`` exists and ``force`` is off: a command
    that writes a model, card or checkpoint never replaces one by surprise (a shipped model
    included), and says so before it spends minutes exporting or evaluating."""
    if path and not force and os.path.lexists(path):
        raise ValueError(f"{path} ({flag}) already exists; modrec {command} does not replace it without --force "
                         f"(give --force to replace it, or another {flag})")


def _model(name_or_path):
    """A model option's value as a file (runtime.resolve_model); None stays None."""
    from ..runtime.onnx_model import resolve_model

    return None if name_or_path is None else resolve_model(name_or_path)


def _export_hint(run, experiment):
    """The export command to suggest after training: beside the run, never over a shipped model
    (a run whose output_dir is a model directory gets runs/<experiment>/ instead)."""
    from pathlib import Path

    from ..runtime.onnx_model import model_search_dirs

    out = Path(run) / f"{experiment}.onnx"
    shipped_dirs = {d.resolve() for d in model_search_dirs()}
    if out.parent.resolve() in shipped_dirs:
        out = Path("runs") / experiment / f"{experiment}.onnx"
    # re-exporting a retrained run over its own earlier export is the point; say how
    force = " --force" if out.exists() else ""
    return f"modrec export --checkpoint {run}/best.pt --out {out}{force}"


def _fmt_count(value, scale=1.0, digits=0):
    return "-" if value is None else f"{value / scale:,.{digits}f}"


def _models_listing():
    """What `modrec models` shows: the registered architectures (kind, parameters and FLOPs per
    frame at the default config) and the shipped models (read from their evaluation summaries,
    else from their metadata)."""
    import torch

    from ..runtime.onnx_model import DEFAULT_MODEL_NAME as default_name
    from ..runtime.onnx_model import shipped_models
    from .flops import count_flops, count_params
    from .models import create_model, default_config, list_models
    from .models.registry import KINDS

    kinds = {name: kind for kind in KINDS for name in list_models(kind=kind)}
    architectures = []
    with torch.no_grad():
        for name in list_models():
            model = create_model(name).eval()
            architectures.append({"name": name, "kind": kinds[name],
                                  "params": count_params(model),
                                  "flops": count_flops(model, model.model_cfg.get("frame_len", 128)),
                                  "default_config": default_config(name)})
    shipped = []
    for name, path in shipped_models().items():
        row = {"name": name, "file": path, "default": os.path.basename(path) == default_name}
        row.update(_shipped_figures(path))
        shipped.append(row)
    return {"version": __version__, "architectures": architectures, "shipped": shipped}


def _shipped_figures(path):
    """A shipped model's architecture, kind, training and figures: its <stem>.summary.json (what
    `modrec evaluate` measured) when there is one, else its metadata (no accuracy then)."""
    from pathlib import Path

    summary_path = Path(path).with_suffix(".summary.json")
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        md = summary.get("metadata") or {}
        figures = {"params": summary.get("params"), "flops": summary.get("flops"),
                   "accuracy": summary.get("accuracy"), "accuracy_snr_ge_0": summary.get("accuracy_snr_ge_0"),
                   "summary": str(summary_path)}
    else:
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        md = contract.decode_metadata(props, source=str(path))
        figures = {"params": md.get(contract.PARAMS), "flops": md.get(contract.FLOPS), "accuracy": None,
                   "accuracy_snr_ge_0": None, "summary": None}
    exits = int(md.get(contract.EXITS) or 1)
    kind = (f"early-exit ({exits} exits)" if exits > 1 else
            "classifier + detector" if md.get(contract.NOISE_CLASS) else "classifier")
    training = [t for t in (md.get(contract.DISTILLATION), md.get(contract.PRUNING)) if t and t != "none"]
    from .models import list_models

    if md.get(contract.ARCHITECTURE) in list_models(kind="ensemble"):  # joined by modrec ensemble, not trained
        config = (md.get(contract.TRAINING) or {}).get("config") or {}
        members = ((config.get("model") or {}).get("cfg") or {}).get("members")
        training.insert(0, f"ensemble of {len(members)}" if members else "ensemble")
    if md.get(contract.QUANTIZATION, contract.QUANTIZATION_NONE) != contract.QUANTIZATION_NONE:
        training.append("int8")
    return {"architecture": md.get(contract.ARCHITECTURE), "kind": kind, "version": md.get(contract.VERSION),
            "training": ", ".join(training) or "none", **figures}


def _shown_path(path):
    """``path`` relative to the working directory when it lies below it (shorter rows), else as it is."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _table(header, rows, right):
    """Plain-text columns: ``right`` names the columns aligned right (numbers)."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = []
    for row in (header, *rows):
        cells = [str(c).rjust(w) if h in right else str(c).ljust(w) for c, w, h in zip(row, widths, header)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _models_tables(listing):
    arch_rows = [(a["name"], a["kind"], _fmt_count(a["params"]), _fmt_count(a["flops"], 1e6, 2),
                  a["default_config"].get("frame_len", "-")) for a in listing["architectures"]]
    parts = ["Architectures (train one: modrec train --config configs/<name>.yaml, or join trained classifiers: "
             "modrec ensemble; sizes at the default config):",
             _table(("name", "kind", "params", "MFLOPs/frame", "frame_len"), arch_rows,
                    right={"params", "MFLOPs/frame", "frame_len"}), ""]
    if listing["shipped"]:
        rows = []
        for s in listing["shipped"]:
            acc = s["accuracy_snr_ge_0"]
            rows.append((s["name"] + (" *" if s["default"] else ""), s["architecture"] or "-", s["kind"], s["training"],
                         _fmt_count(s["params"]), _fmt_count(s["flops"], 1e6, 2),
                         "-" if acc is None else f"{100 * acc:.1f} %", _shown_path(s["file"])))
        parts += ["Shipped models (give the name to --model, --onnx or a block's model_path; * = the default; "
                  "accuracy on the synthetic test split, SNR >= 0 dB):",
                  _table(("name", "architecture", "kind", "training", "params", "MFLOPs/frame", "acc SNR>=0", "file"),
                         rows, right={"params", "MFLOPs/frame", "acc SNR>=0"})]
    else:
        from ..runtime.onnx_model import MODEL_DIR_ENV, model_search_dirs

        parts.append(f"Shipped models: none found in {', '.join(str(d) for d in model_search_dirs())} (set "
                     f"{MODEL_DIR_ENV} to a directory of .onnx models)")
    return "\n".join(parts)


def _oversampling_notes(result, check):
    """What ``modrec classify`` says on stderr about the oversampling check's verdicts."""
    import numpy as np

    from ..runtime.oversampling import WINDOW_LEN

    model_sps = result.model_samples_per_symbol
    flagged = result.sps_mismatch & (result.class_index == -1)
    if flagged.any():
        estimate = float(np.nanmedian(result.sps_estimate[result.sps_mismatch]))
        if result.symbol_rate is not None:
            advice = (f"with --symbol-rate {result.symbol_rate:g} it should be {model_sps}: the symbol rate looks "
                      f"like {result.symbol_rate * model_sps / estimate:g} Hz")
        else:
            advice = (f"give --symbol-rate (it looks like {result.sample_rate / estimate:g} Hz) to resample it to "
                      f"{model_sps} samples per symbol")
        up, down = result.resample
        # judged as the block judges them (by the last window ending before the frame's end), so the
        # frames ending inside the first window are not checked at all: say so
        unjudged = int(np.sum((result.starts + result.lengths) * up / down < WINDOW_LEN))
        before = (f"; the first {unjudged} frames end inside the first {WINDOW_LEN}-sample window (at the model's "
                  f"rate) and were not checked, as in the classifier block") if unjudged else ""
        print(f"warning: {int(flagged.sum())} of {result.n_frames} frames are 'unknown' because the stream looks like "
              f"{estimate:.1f} samples per symbol there (median estimate), not the model's {model_sps}; {advice}"
              f"{before}", file=sys.stderr)
    up, down = result.resample
    if check and result.recording.n_samples * up / down < WINDOW_LEN:
        print(f"note: the oversampling was not checked: the recording holds fewer than {WINDOW_LEN} samples at the "
              f"model's rate (one estimate's window)", file=sys.stderr)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "data":
        # The dataset builder has its own parser (and needs no torch): hand it the rest.
        from .data.__main__ import main as data_main

        return data_main(argv[1:], prog="modrec data")
    args = _parser().parse_args(argv)
    command = "modrec " + " ".join(shlex.quote(a) for a in argv)

    try:
        if args.cmd == "train":
            from .config import load_config
            from .train import train

            sets = list(args.set)
            for flag, key in (("epochs", "train.epochs"), ("batch_size", "train.batch_size"), ("lr", "optim.lr"),
                              ("seed", "seed"), ("device", "train.device"), ("threads", "train.threads"),
                              ("out", "output_dir"), ("data_root", "data.root"), ("data", "data.source")):
                v = getattr(args, flag)
                if v is not None:
                    sets.append(f"{key}={json.dumps(v)}")
            cfg = load_config(args.config, sets)
            model = pruning = None
            if cfg.prune.checkpoint and not args.resume:  # a resumed pruned run loads at its pruned shapes
                from .prune.run import prune_from_config

                model, pruning = prune_from_config(cfg, progress=not args.no_progress)
            run = train(cfg, resume=args.resume, progress=not args.no_progress, command=command,
                        stop_after_epochs=args.stop_after, model=model, pruning=pruning)
            from .models import list_models

            if cfg.model.name in list_models(kind="detector"):
                print(f"done: {run}/best.pt; next: join it to a classifier: modrec export --checkpoint "
                      f"CLASSIFIER/best.pt --detector {run}/best.pt --unknown-score energy --out MODEL.onnx")
            else:
                print(f"done: {run}/best.pt; next: {_export_hint(run, cfg.experiment)}")
        elif args.cmd == "evaluate":
            _refuse_overwrite(args.card, args.force, "evaluate", "--card")
            onnx_path = _model(args.onnx)
            from .evaluate import evaluate

            options = {k: v for k, v in (("split", args.data_split), ("seed", args.data_seed), ("limit", args.limit),
                                         ("classes", args.classes and [c.strip() for c in args.classes.split(",")]))
                       if v is not None}
            summary = evaluate(args.out, checkpoint=args.checkpoint, onnx_path=onnx_path, data=args.data,
                               split=args.split, device=args.device, latency=not args.no_latency, source_options=options,
                               progress=sys.stderr.isatty())
            if args.card:
                from pathlib import Path

                from .model_card import write_model_card

                write_model_card(Path(args.out) / "summary.json", args.card)
            print(f"wrote {args.out}/summary.json (accuracy {summary['accuracy']:.4f})")
        elif args.cmd == "export":
            _refuse_overwrite(args.out, args.force, "export", "--out")
            from .export import export_checkpoint

            overrides = {k: v for k, v in (("policy", args.exit_policy), ("budget_pp", args.exit_budget_pp),
                                            ("budget_snr_min", args.exit_budget_snr_min)) if v is not None}
            unknown = None
            if not 0.0 < args.noise_false_rate < 1.0:
                raise ValueError(f"--noise-false-rate must be in (0, 1), got {args.noise_false_rate}")
            if args.unknown_score:
                if not 0.0 < args.unknown_false_rate < 1.0:
                    raise ValueError(f"--unknown-false-rate must be in (0, 1), got {args.unknown_false_rate}")
                unknown = (args.unknown_score, args.unknown_false_rate)
            info = export_checkpoint(args.checkpoint, args.out, dynamo=not args.legacy, opset=args.opset,
                                     exit_calibration=overrides, samples_per_symbol=args.samples_per_symbol,
                                     detector=args.detector, unknown=unknown, data=args.data,
                                     noise_false_rate=args.noise_false_rate)
            print(f"wrote {info['path']}: {info['bytes'] / 1024:.1f} KB, {info['params']:,} params, "
                  f"{info['flops'] / 1e6:.2f} MFLOPs/frame, parity max |dp| {info['parity_max_abs_diff']:.2e} ({info['exporter']})")
            if "unknown_calibration" in info:
                c = info["unknown_calibration"]
                print(f"unknown: {c['score']} above {c['threshold']:.4g} ({c['false_rate']:.1%} of {c['frames']:,} known "
                      f"validation frames at SNR >= 0 dB)")
        elif args.cmd == "from-onnx":
            _refuse_overwrite(args.out, args.force, "from-onnx", "--out")
            onnx_path = _model(args.onnx)
            from .from_onnx import checkpoint_from_onnx

            print(f"wrote {checkpoint_from_onnx(onnx_path, args.out)} (batch norms folded: exact in evaluation, "
                  f"not for pruning or full fine-tuning)")
        elif args.cmd == "relayout":
            _refuse_overwrite(args.out, args.force, "relayout", "--out")
            from .onnx_export import relayout_onnx

            counts = relayout_onnx(_model(args.onnx), args.out)
            if not any(counts.values()):
                print(f"wrote {args.out}: nothing to rewrite (its graph is blocked already, or has no squeeze-excite "
                      f"or pooling over time), an unchanged copy")
            else:
                print(f"wrote {args.out}: {counts['global_pools']} reduction(s) as global pooling, "
                      f"{counts['widened_gates']} squeeze-excite gate(s) widened (outputs checked against {args.onnx})")
        elif args.cmd == "online-teacher":
            _refuse_overwrite(args.out, args.force, "online-teacher", "--out")
            from .online_teacher import online_teacher_checkpoint

            print(f"wrote {online_teacher_checkpoint(args.checkpoint, args.out)}")
        elif args.cmd == "ensemble":
            _refuse_overwrite(args.out, args.force, "ensemble", "--out")
            from .ensemble_checkpoint import ensemble_checkpoint

            out = ensemble_checkpoint(args.checkpoints, args.out)
            print(f"wrote {out}; next: modrec evaluate --checkpoint {out} --out {out.parent}/eval, or modrec export")
        elif args.cmd == "quantize":
            _refuse_overwrite(args.out, args.force, "quantize", "--out")
            from .quantize import quantize_int8

            info = quantize_int8(_model(args.onnx), args.out, n_frames=args.frames, seed=args.seed)
            print(f"wrote {info['path']}: {info['bytes'] / 1024:.1f} KB (fp32 {info['fp32_bytes'] / 1024:.1f} KB), "
                  f"{info['quantization']}, calibrated on {info['calibration_frames']:,} generated frames")
        elif args.cmd == "card":
            _refuse_overwrite(args.out, args.force, "card", "--out")
            from .model_card import write_model_card

            print(f"wrote {write_model_card(args.summary, args.out, args.name)}")
        elif args.cmd == "report":
            from .report import load_entry, write_comparison

            entries = [load_entry(p, "teacher") for p in args.teacher] + [load_entry(p, "student") for p in args.student]
            print(write_comparison(entries, args.markdown, args.json, args.plot, remeasure=args.remeasure,
                                   previous=args.previous))
        elif args.cmd == "learning-curves":
            from .learning_curves import write_learning_curves

            print(write_learning_curves(args.runs, args.markdown, args.plot))
        elif args.cmd == "prune-report":
            from .prune.report import write_pruning_report

            table, findings = write_pruning_report(args.summaries, args.markdown, args.json, args.plot_dir, args.budget_pp,
                                                   remeasure=not args.no_remeasure)
            print(table)
            print(json.dumps(findings, indent=1))
        elif args.cmd == "exits-eval":
            from pathlib import Path

            from .exits.evaluate import evaluate_early_exit

            result = evaluate_early_exit(_model(args.onnx), _model(args.plain), args.data, args.split)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
            for key in ("all", "snr_ge_10", "snr_min"):
                r = result[key]
                print(f"{key}: accuracy {r['accuracy']:.4f} (plain {r['plain_accuracy']:.4f}), cost "
                      f"{r['mean_flops'] / result['plain_flops']:.0%} of plain, measured speed-up "
                      f"{r['plain_ms_per_frame'] / r['ms_per_frame']:.2f}x")
        elif args.cmd == "exits-report":
            from .exits.evaluate import write_exits_report

            print(write_exits_report(args.results, args.markdown, args.json, args.plot, previous=args.previous))
        elif args.cmd == "open-set-eval":
            from .open_set_eval import open_set_evaluation, write_open_set_report

            result = open_set_evaluation(_model(args.onnx), frames_per_point=args.frames, noise_frame_count=args.noise_frames,
                                         seed=args.seed, progress=not args.no_progress)
            print(write_open_set_report(result, args.json, args.markdown, args.plot))
        elif args.cmd == "classify":
            # Runtime code only: this runs on a GNU Radio box without torch.
            from ..runtime.classify import classify_recording, format_class_shares, format_segments, write_outputs

            if args.no_plot and args.plot:
                raise ValueError("--plot and --no-plot: give one of them")
            result = classify_recording(args.recording, model_path=args.model, datatype=args.format,
                                        sample_rate=args.rate, symbol_rate=args.symbol_rate, hop=args.hop,
                                        min_confidence=args.min_confidence, threads=args.threads,
                                        progress=not args.no_progress,
                                        check_oversampling=not args.no_oversampling_check)
            written = write_outputs(result, meta_out=args.meta_out, plot=False if args.no_plot else args.plot)
            print(format_segments(result))
            if result.segments:
                print(f"\nper class:\n{format_class_shares(result)}")
            _oversampling_notes(result, check=not args.no_oversampling_check)
            print(f"{result.n_frames} frames of {result.recording.data_path} classified by {result.model_path} "
                  f"in {result.elapsed_s:.1f} s")
            for path in written.values():
                if path is not None:
                    print(f"wrote {path}")
        elif args.cmd == "models":
            listing = _models_listing()
            print(json.dumps(listing, indent=1) if args.json else _models_tables(listing))
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 0
