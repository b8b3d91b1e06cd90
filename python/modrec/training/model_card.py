"""Model card (markdown) from an evaluation summary.json and the ONNX metadata."""

import json
import shutil
from pathlib import Path

from .. import contract


def _fmt(v, pct=True):
    if v is None:
        return "n/a"
    return f"{100 * v:.1f} %" if pct else str(v)


def _j(value):
    return json.dumps(value, sort_keys=True) if value is not None else "n/a"


FIGURES = ("accuracy_vs_snr.png", "confusion.png", "confusion_snr_ge_10.png")


def model_name(summary):
    """The evaluated model's name: the summary's ``name``, else its ONNX file's stem, else its
    training run's experiment (a checkpoint is ``runs/<experiment>/best.pt``); None when the
    summary names no model."""
    if summary.get("name"):
        return summary["name"]
    model = str(summary.get("model") or "")
    if not model:
        return None
    if model.endswith(".onnx"):
        return Path(model).stem
    training = (summary.get("metadata") or {}).get(contract.TRAINING) or summary.get("training") or {}
    return (training.get("config") or {}).get("experiment") or Path(model).parent.name or Path(model).stem


def render_model_card(summary, name, figures=None):
    """Markdown model card; ``figures`` maps an evaluation figure name to the link to use."""
    md = summary.get("metadata") or {}
    training = md.get(contract.TRAINING) or summary.get("training") or {}
    data = training.get("data") if isinstance(training.get("data"), dict) else {}  # a hand-made model may say "none"
    cfg = training.get("config", {})
    figures = figures or {}

    def rel(fig):
        return figures.get(fig, fig)

    lines = [
        f"# {name}",
        "",
        f"Automatic modulation recognition model for gr-modrec (architecture `{summary.get('architecture')}`).",
        "",
        "## Summary",
        "",
        "| metric | value |",
        "|---|---|",
        f"| accuracy, all SNRs | {_fmt(summary.get('accuracy'))} |",
        f"| accuracy, SNR >= 0 dB | {_fmt(summary.get('accuracy_snr_ge_0'))} |",
        f"| accuracy, SNR >= 10 dB | {_fmt(summary.get('accuracy_snr_ge_10'))} |",
        f"| peak accuracy (at {summary.get('peak_snr_db')} dB) | {_fmt(summary.get('peak_accuracy'))} |",
        f"| expected calibration error (15 bins) | {summary.get('ece', float('nan')):.4f} |",
        f"| parameters | {summary.get('params', 'n/a'):,} |" if isinstance(summary.get("params"), int) else "| parameters | n/a |",
        f"| FLOPs / frame | {summary.get('flops', 0) / 1e6:.2f} M |",
    ]
    if "onnx_bytes" in summary:
        lines.append(f"| ONNX size | {summary['onnx_kb']} KB ({summary['onnx_bytes']} bytes) |")
    if "ort_ms_per_frame_batch1" in summary:
        lines.append(f"| ORT latency, batch 1, 1 thread | {summary['ort_ms_per_frame_batch1']:.3f} ms/frame |")
        thr = [k for k in summary if k.startswith("ort_frames_per_s_batch")]
        for k in thr:
            lines.append(f"| ORT throughput, batch {k.rsplit('batch', 1)[1]}, 1 thread | {summary[k]:,.0f} frames/s |")
    lines += [
        f"| evaluated on | {summary.get('n_frames')} frames, split `{summary.get('split')}` of `{_portable(summary.get('data_root'))}` |",
        "",
        "## Interface",
        "",
        f"- classes ({len(summary.get('classes', []))}): {', '.join(summary.get('classes', []))}",
        f"- frame length: {md.get('frame_len', 'n/a')} complex samples, samples/symbol: {md.get('samples_per_symbol', 'n/a')}",
        f"- distillation: {md.get('distillation', 'none')}, pruning: {md.get('pruning', 'none')}, exits: {md.get('exits', 1)}",
        *_version2_lines(md, training),
        "",
        "## How it was produced",
        "",
        *_commands(training),
        f"- seed: {training.get('seed', 'n/a')}",
        f"- data: `{data.get('name', 'n/a')}` (generator seed {data.get('seed', 'n/a')}, frames per class and SNR "
        f"{_j(data.get('frames_per_class_snr'))}, {data.get('train_frames', 'n/a')} train / {data.get('val_frames', 'n/a')} val frames)",
    ]
    members = training.get("ensemble_of")
    if cfg:  # an ensemble's config holds its model and data only: its members (listed) were trained by their own
        lines += [f"- {label}: `{_j(cfg[key])}`" for label, key in (("model", "model"), ("optimiser", "optim"),
                  ("schedule", "schedule"), ("training", "train"), ("augmentation", "augment"))
                  if key in cfg and not (members and key == "model")]
    if members:  # modrec ensemble (ensemble_checkpoint.py)
        lines.append(f"- an ensemble of {len(members)} trained models, their logits averaged (models/ensemble.py):")
        lines += [f"  - `{_portable(m['checkpoint'])}`: {m['model']}, distillation {m.get('distillation', 'none')}, "
                  f"validation accuracy {_fmt(m.get('val_acc'))}"
                  + (f", rebuilt from `{_portable(m['rebuilt_from_onnx'])}`" if m.get("rebuilt_from_onnx") else "")
                  for m in members]
    distill = training.get("distill")
    if distill:
        teacher = distill.get("teacher") or {}
        source = teacher.get("checkpoint") or f"{teacher.get('model')} (trained jointly)"
        acc = f", validation accuracy {_fmt(teacher['val_acc'])}" if teacher.get("val_acc") is not None else ""
        cache = ("teacher outputs computed on the fly" if not distill.get("cache_teacher") else
                 f"teacher outputs cached on {distill['cache_views']} augmented copies of the train split"
                 if distill.get("cache_views") else "teacher outputs cached on the clean train split, augmentation off")
        lines.append(f"- distillation: {distill.get('method')} `{_j(distill.get('cfg'))}` from `{source}` "
                     f"({teacher.get('model')}{acc}); {cache}")
    beside = training.get("online_teacher_of")
    if beside:  # an online distillation's teacher, taken out of its student's run (online_teacher.py)
        lines.append(f"- trained jointly with the student of `{_portable(beside.get('checkpoint', 'n/a'))}` "
                     f"({beside.get('student')}, {beside.get('method')} `{_j(beside.get('distill_cfg'))}`), "
                     f"taken at its epoch {beside.get('epoch')}: validation accuracy {_fmt(beside.get('teacher_val_acc'))}, "
                     f"the student's {_fmt(beside.get('student_val_acc'))}")
    pruning = training.get("pruning")
    if pruning and pruning.get("before"):
        before, after = pruning["before"], pruning["after"]
        options = f" `{_j(pruning['criterion_cfg'])}`" if pruning.get("criterion_cfg") else ""
        lines.append(f"- pruned from: `{_portable(pruning.get('source_checkpoint', 'n/a'))}` (validation accuracy "
                     f"{_fmt(pruning.get('source_val_acc'))}), {pruning['criterion']}{options}, "
                     f"{pruning['ratio']:.0%} of each layer's channels ({pruning['strategy']}): {before['params']:,} -> "
                     f"{after['params']:,} parameters, {before['flops'] / 1e6:.2f} -> {after['flops'] / 1e6:.2f} MFLOPs/frame "
                     f"({1 - after['flops'] / before['flops']:.1%} cut), then fine-tuned")
    ck = training.get("checkpoint")
    if ck and not members:  # an ensemble's checkpoint is its members' (above): no epoch of its own
        lines.append(f"- checkpoint: epoch {ck.get('epoch')}, validation accuracy {_fmt(ck.get('val_acc'))}")
    calibration, export_flags = training.get("exit_calibration"), ""
    if calibration:  # an early-exit model: the rule its export calibrated
        export_flags = f" --exit-policy {calibration['policy']} --exit-budget-pp {calibration['budget_pp']:g}"
        if calibration.get("snr_min") is not None:
            export_flags += f" --exit-budget-snr-min {calibration['snr_min']:g}"
        lines.append(f"- exit rule: `{calibration['policy']}` <= {calibration['threshold']:.3f}, calibrated on the "
                     f"validation split to lose at most {calibration['budget_pp']:g} pp"
                     + (f" (also at SNR >= {calibration['snr_min']:g} dB)" if calibration.get("snr_min") is not None else ""))
    detector = training.get("detector")
    joined = (detector or {}).get("checkpoint")  # a signal detector joined at export, or the model's own heads
    if detector:  # contract version 2: the detector's noise threshold set at export
        export_flags += f" --detector {joined}" if joined else ""
        export_flags += f" --noise-false-rate {detector['noise_false_rate']:g}"
    if training.get("export_data"):
        export_flags += f" --data {_portable(training['export_data'])}"
    detecting = training.get("detecting") or {}
    init = detecting.get("init_from")
    if init:  # a classifier with detector heads, its backbone from a trained classifier
        how = ("kept frozen: only the detector heads trained" if detecting.get("freeze_backbone")
               else "trained with its detector heads")
        lines.append(f"- backbone initialised from `{_portable(init['checkpoint'])}` ({init.get('model')}, validation "
                     f"accuracy {_fmt(init.get('val_acc'))}), {how}")
    if md.get(contract.UNKNOWN_SCORE):
        export_flags += f" --unknown-score {md[contract.UNKNOWN_SCORE]}"
        if md.get(contract.UNKNOWN_FALSE_RATE) is not None:
            export_flags += f" --unknown-false-rate {float(md[contract.UNKNOWN_FALSE_RATE]):g}"
    quantized = training.get("quantization")
    if quantized:  # an int8 copy of an exported model (training/quantize.py)
        lines.append(f"- quantization: {quantized['format']} {quantized['activations']} activations, "
                     f"{quantized['weights']} weights on {', '.join(quantized.get('ops', []))}, "
                     f"{quantized['calibration']} calibration on {quantized['calibration_frames']:,} generated frames "
                     f"(seed {quantized['calibration_seed']}), from `{quantized['from']}`")
    if members:
        experiment = cfg.get("experiment", name)
        lines += [
            "",
            "## Reproduce",
            "",
            "```sh",
            *_member_steps(members),
            f"modrec ensemble --checkpoints {' '.join(_member_checkpoint(m, members) for m in members)} --out "
            f"runs/{experiment}/best.pt --force",
            f"modrec export --checkpoint runs/{experiment}/best.pt --out models/{name}.onnx{export_flags} --force",
            f"modrec evaluate --checkpoint runs/{experiment}/best.pt --onnx models/{name}.onnx{_evaluate_data(summary, data)} "
            f"--out runs/{experiment}/eval --card models/{name}.md --force",
            "```",
        ]
    elif cfg.get("source"):
        experiment = cfg.get("experiment", name)
        # an int8 file is quantised from the fp32 file its export writes
        exported = Path(quantized["from"]).stem if quantized else name
        lines += [
            "",
            "## Reproduce",
            "",
            "```sh",
            f"{_train_command(training, cfg)}      # the dataset is generated into the cache if missing",
            *([f"modrec train --config configs/{Path(joined).parent.name}.yaml      # the signal detector "
               f"(runs/<experiment> is configs/<experiment>.yaml's run)"] if joined else []),
            *([f"modrec online-teacher --checkpoint runs/{Path(beside['checkpoint']).parent.name}/"
               f"{Path(beside['checkpoint']).name} --out runs/{experiment}/best.pt --force"] if beside else []),
            # --force: these regenerate the model and card this page describes, which exist
            f"modrec export --checkpoint runs/{experiment}/best.pt --out models/{exported}.onnx{export_flags} --force",
            *([f"modrec quantize --onnx models/{exported}.onnx --out models/{name}.onnx --frames "
               f"{quantized['calibration_frames']} --seed {quantized['calibration_seed']} --force"] if quantized else []),
            f"modrec evaluate --checkpoint runs/{experiment}/best.pt --onnx models/{name}.onnx{_evaluate_data(summary, data)} "
            f"--out runs/{experiment}/eval --card models/{name}.md --force",
            "```",
        ]
    lines += [
        "",
        "## Figures",
        "",
        f"![accuracy vs SNR]({rel('accuracy_vs_snr.png')})",
        "",
        f"![confusion matrix, all SNRs]({rel('confusion.png')})",
        "",
    ]
    if "confusion_snr_ge_10.png" in figures or (not figures and "confusion_snr_ge_10" in (summary.get("figures") or {})):
        lines += [f"![confusion matrix, SNR >= 10 dB]({rel('confusion_snr_ge_10.png')})", ""]
    lines += [
        "## Accuracy per SNR",
        "",
        "| SNR (dB) | frames | accuracy |",
        "|---:|---:|---:|",
    ]
    for r in summary.get("per_snr", []):
        lines.append(f"| {r['snr_db']:g} | {r['n']} | {_fmt(r['accuracy'])} |")
    lines.append("")
    return "\n".join(lines)


def _member_checkpoint(member, members):
    """Where a Reproduce section puts an ensemble member: runs/<its experiment>/best.pt, or the
    path it was read from when two members share an experiment name."""
    names = [m.get("experiment") for m in members]
    run = member.get("experiment")
    return f"runs/{run}/best.pt" if run and names.count(run) == 1 else _portable(member["checkpoint"])


def _member_steps(members):
    """The commands that give an ensemble's members their checkpoints: rebuilt from the ONNX file
    a member was rebuilt from, else trained by its experiment's config."""
    steps = []
    for m in members:
        where = _member_checkpoint(m, members)
        if m.get("rebuilt_from_onnx"):
            steps.append(f"modrec from-onnx --onnx {_portable(m['rebuilt_from_onnx'])} --out {where}")
        elif m.get("experiment"):
            steps.append(f"modrec train --config configs/{m['experiment']}.yaml --out {Path(where).parent}      "
                         f"# its own card has the recipe")
    return steps


def _evaluate_data(summary, data):
    """`` --data ROOT`` when the model was evaluated on other data than its run trained on (a
    classifier with detector heads trains on frames with noise, and is scored on the test split
    every model is scored on), else ''."""
    scored, trained = summary.get("data_root"), data.get("root")
    return f" --data {_portable(scored)}" if scored and trained and str(scored) != str(trained) else ""


def _portable(text):
    """Paths under the working directory (the checkout a study runs from) shown relative to it,
    and the home directory (the dataset cache's) as ``~``: a card should not carry one machine's
    paths."""
    if not text:
        return text
    return str(text).replace(f"{Path.cwd()}/", "").replace(f"{Path.home()}/", "~/")


def _train_command(training, cfg):
    """The command that trains this run from scratch: the recorded one (it carries the run's
    --set overrides) without --resume, or the bare config."""
    runs = training.get("invocations") or []
    recorded = runs[-1].get("command") if runs else training.get("command")
    if recorded and recorded.startswith("modrec train "):
        return _portable(" ".join(word for word in recorded.split(" ") if word != "--resume"))
    return f"modrec train --config {_portable(cfg['source'])}"


def _version2_lines(md, training):
    """What a contract version-2 model says besides its classes (noise, unknown, SNR)."""
    lines = []
    if md.get(contract.NOISE_CLASS):
        detector = training.get("detector") or {}
        heads = ("its own detector heads (on its frozen backbone)"
                 if (training.get("detecting") or {}).get("freeze_backbone") else
                 "its own detector heads (trained with its classes)")
        source = (f"the signal detector `{detector['checkpoint']}`" if detector.get("checkpoint") else
                  heads if detector.get("own_heads") else None)
        lines.append(f"- no signal: class `{md[contract.NOISE_CLASS]}` (tagged `noise`)"
                     + (f", from {source}, calibrated to call {detector['noise_false_rate']:.1%} of known validation "
                        f"frames at SNR >= 0 dB noise" if source else ""))
    if md.get(contract.UNKNOWN_SCORE):
        lines.append(f"- unknown: open-set score `{md[contract.UNKNOWN_SCORE]}` above {float(md[contract.UNKNOWN_THRESHOLD]):.4g} "
                     f"(calibrated to call {float(md.get(contract.UNKNOWN_FALSE_RATE, 'nan')):.1%} of known validation "
                     f"frames at SNR >= 0 dB unknown)")
    return lines


def _commands(training):
    runs = training.get("invocations") or []
    if len(runs) <= 1:
        return [f"- command: `{_portable(training.get('command')) or 'n/a'}`"]
    lines = ["- commands (the run was resumed):"]
    for k, r in enumerate(runs):
        first, last = r["epochs"]
        if k + 1 < len(runs):  # an invocation records the epochs it planned; an interrupted one ended where the next resumed
            last = min(last, runs[k + 1]["epochs"][0] - 1)
        where = f" on {r['device']}" if r.get("device") else ""
        lines.append(f"  - epochs {first}-{last}{where}: `{_portable(r.get('command')) or 'n/a'}`")
    return lines


NOTES = "## Notes"


def _notes(path):
    """A hand-written Notes section of an existing card: kept when the card is re-rendered."""
    if not path.is_file():
        return ""
    text = path.read_text()
    if NOTES not in text:
        return ""
    notes = NOTES + text.split(NOTES, 1)[1]
    nxt = notes.find("\n## ", len(NOTES))
    return notes if nxt < 0 else notes[:nxt + 1]


def write_model_card(summary_path, out_path, name=None):
    """Write the card and copy the evaluation's figures and summary beside it.

    The card is titled ``name``, else the model's name the summary records (model_name), and
    only when it records none the card's file stem.

    A ``## Notes`` section of an existing card (written by hand: hardware, caveats) is kept.

    The copies are named ``<card stem>-<figure>`` and ``<card stem>.summary.json``, so a card in
    ``models/`` stays readable (and its figures resolvable) without the run directory.
    """
    summary_path, out_path = Path(summary_path), Path(out_path)
    summary = json.loads(summary_path.read_text())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    summary_copy = out_path.parent / f"{out_path.stem}.summary.json"
    # re-rendering a shipped card from its own summary copy: its figures are the copies beside it,
    # not whatever shares the evaluation's figure names in that folder (models/accuracy_vs_snr.png)
    rerender = summary_path.resolve() == summary_copy.resolve()
    figures = {}
    for fig in FIGURES:
        target = out_path.parent / f"{out_path.stem}-{fig}"
        source = target if rerender else summary_path.parent / fig
        if source.is_file():
            if source.resolve() != target.resolve():
                shutil.copyfile(source, target)
            figures[fig] = target.name
    if summary_path.resolve() != summary_copy.resolve():
        shutil.copyfile(summary_path, summary_copy)
    notes = _notes(out_path)
    card = render_model_card(summary, name or model_name(summary) or out_path.stem, figures)
    out_path.write_text(card + ("\n" + notes.rstrip("\n") + "\n" if notes else ""))
    return out_path
