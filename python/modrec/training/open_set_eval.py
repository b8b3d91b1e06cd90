"""What a shipped model says when the frame is not one of its classes: receiver noise, silence,
modulations it never learnt (``modrec open-set-eval``).

The frames come from the synthetic generator with a fixed seed, so two models are measured on the
same frames: the known classes at every SNR of the grid, each open-set modulation
(``data/open_set.py``) at the same SNRs through the same channel, and receiver-noise frames
(``data/receiver_noise.py``). Every model is scored with every open-set score it allows
(``maxprob`` always; ``energy`` when it outputs its logits), by AUROC of known against unseen
frames (scipy's Mann-Whitney U: AUROC = U / (n_known n_unseen); 0.5 = no better than chance), and
decided by the model's own rule (runtime/decisions.py): the shares of frames tagged ``noise``
and ``unknown``.
"""

import collections
import json
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu
from tqdm.auto import tqdm

from .. import contract
from ..classes import NOISE_LABEL, canonical_class_name
from ..runtime import load_model
from ..runtime.decisions import classify_frames, decision_labels
from ..runtime.open_set import energy_score, maxprob_score
from .data.generator import DEFAULT_CONFIG, GeneratorConfig, generate_frames
from .data.open_set import OPEN_SET_MODULATIONS
from .data.receiver_noise import NOISE_KINDS, noise_frames
from .detection import SNR_MAE_RANGE_DB
from .tables_and_figures import cell, pyplot, write_markdown

SNR_BANDS = ((-20, -10), (-10, 0), (0, 10), (10, 20), (20, 42))  # [lo, hi) dB
# RadioML's grid (-20..18 dB) and on to 40 dB: real captures are often far cleaner than 18 dB
DEFAULT_SNRS_DB = tuple(range(-20, 41, 2))


def auroc(known_scores, unseen_scores):
    """Area under the ROC curve of telling unseen from known frames by a score (larger = more
    unseen), ties counted half: U / (n_known n_unseen) of the Mann-Whitney U test. NaN when
    either side is empty."""
    known_scores, unseen_scores = np.asarray(known_scores, float), np.asarray(unseen_scores, float)
    if not len(known_scores) or not len(unseen_scores):
        return float("nan")
    return float(mannwhitneyu(unseen_scores, known_scores).statistic / (len(known_scores) * len(unseen_scores)))


def _scores(decided):
    """Every open-set score a batch's decisions allow: maxprob always, energy with logits."""
    scores = {contract.SCORE_MAXPROB: maxprob_score(decided.probs)}
    if decided.logits is not None:
        scores[contract.SCORE_ENERGY] = energy_score(decided.logits)
    return scores


def _run(model, frames, batch=2048):
    """(decision index (N,), top class (N,), {score name: (N,)}, SNR estimate (N,) dB, NaN when the
    model has none) over complex frames (N, L), in batches: one model run per batch."""
    decided, scores = [], collections.defaultdict(list)
    for s in range(0, len(frames), batch):
        decided.append(classify_frames(model, frames[s : s + batch]))
        for name, value in _scores(decided[-1]).items():
            scores[name].append(value)
    index = np.concatenate([d.index for d in decided])
    top = np.concatenate([d.probs.argmax(1) for d in decided])
    snr = np.concatenate([d.snr_db for d in decided])
    return index, top, {k: np.concatenate(v) for k, v in scores.items()}, snr


def open_set_evaluation(model_path, snrs_db=None, frames_per_point=200, noise_frame_count=4000, seed=2016,
                        config=None, threads=1, progress=True):
    """Measure a model on known, unseen and no-signal frames; returns a JSON-able dict.

    ``snrs_db``: the SNR grid (default DEFAULT_SNRS_DB); ``frames_per_point``: frames per (class
    or modulation, SNR); ``noise_frame_count``: receiver-noise frames; ``seed``: the frames' seed.
    Raises ValueError when the model's frame length or samples per symbol differ from the
    generator config's (the frames would not be what the model expects).
    """
    cfg = config or DEFAULT_CONFIG
    model = load_model(model_path, threads=threads)
    if (model.frame_len, model.samples_per_symbol) != (cfg.frame_len, cfg.samples_per_symbol):
        raise ValueError(f"{model_path}: frame_len {model.frame_len} and samples_per_symbol {model.samples_per_symbol}; "
                         f"the generator makes {cfg.frame_len} and {cfg.samples_per_symbol}")
    cfg = GeneratorConfig(**{**cfg.to_dict(), "frame_len": model.frame_len})
    snrs = list(snrs_db if snrs_db is not None else DEFAULT_SNRS_DB)
    labels = decision_labels(model)
    noise_index = labels.index(NOISE_LABEL) if NOISE_LABEL in labels[:-1] else None
    model_classes = {canonical_class_name(c): i for i, c in enumerate(model.classes)}
    rng = np.random.default_rng(seed)
    bar = tqdm(total=len(snrs) * (len(cfg.classes) + len(OPEN_SET_MODULATIONS)) + 1, desc="open-set eval",
               disable=not progress, leave=False)

    def frames_of(name):
        out = []
        for snr in snrs:
            out.append((snr, generate_frames(name, frames_per_point, float(snr), rng=rng, config=cfg)))
            bar.update()
        return out

    known = {"snr_db": [], "label": [], "index": [], "top": [], "estimate": [], "scores": collections.defaultdict(list)}
    for name in cfg.classes:
        if canonical_class_name(name) not in model_classes:
            continue
        for snr, frames in frames_of(name):
            index, top, scores, estimate = _run(model, frames)
            known["estimate"].append(estimate)
            known["snr_db"].append(np.full(len(frames), snr))
            known["label"].append(np.full(len(frames), model_classes[canonical_class_name(name)]))
            known["index"].append(index)
            known["top"].append(top)
            for k, v in scores.items():
                known["scores"][k].append(v)
    known = {k: (np.concatenate(v) if k != "scores" else {s: np.concatenate(x) for s, x in v.items()})
             for k, v in known.items()}
    score_names = list(known["scores"])

    def shares(index, n):
        return {"noise": float(np.mean(index == noise_index)) if noise_index is not None and n else 0.0,
                "unknown": float(np.mean(index == -1)) if n else 0.0}

    result = {"model": str(model_path), "version": model.metadata.get(contract.VERSION), "scores": score_names,
              "open_set": {"noise_class": model.open_set.noise_class, "score": model.open_set.score,
                           "threshold": model.open_set.threshold, "false_rate": model.open_set.false_rate},
              "frames_per_point": frames_per_point, "seed": seed, "snrs_db": snrs, "known": [], "unseen": [], "noise": []}
    result["has_snr"] = bool(model.has_snr)
    for snr in snrs:
        at = known["snr_db"] == snr
        err = known["estimate"][at] - snr
        result["known"].append({"snr_db": snr, "n": int(at.sum()),
                                "accuracy": float(np.mean(known["top"][at] == known["label"][at])),
                                **shares(known["index"][at], int(at.sum())),
                                **({"snr_bias_db": float(np.mean(err)), "snr_mae_db": float(np.mean(np.abs(err)))}
                                   if model.has_snr else {})})
    if model.has_snr:
        lo, hi = SNR_MAE_RANGE_DB
        band = (known["snr_db"] >= lo) & (known["snr_db"] <= hi)
        err = known["estimate"][band] - known["snr_db"][band]
        result["snr_mae_db"] = {"range_db": [lo, hi], "mae": float(np.mean(np.abs(err))), "bias": float(np.mean(err))}

    for name in OPEN_SET_MODULATIONS:
        rows = []
        scores_by_snr = []
        for snr, frames in frames_of(name):
            index, top, scores, _ = _run(model, frames)
            called = collections.Counter(labels[i] for i in top.tolist()).most_common(1)[0][0]
            rows.append({"snr_db": snr, "n": len(frames), **shares(index, len(frames)), "most_called": called})
            scores_by_snr.append((snr, scores))
        entry = {"modulation": name, "per_snr": rows, "auroc_by_band": {}, "auroc_snr_ge_0": {}}
        for score in score_names:
            for lo, hi in SNR_BANDS:
                unseen = np.concatenate([s[score] for snr, s in scores_by_snr if lo <= snr < hi] or [np.zeros(0)])
                ref = known["scores"][score][(known["snr_db"] >= lo) & (known["snr_db"] < hi)]
                entry["auroc_by_band"].setdefault(score, {})[f"{lo}..{hi}"] = auroc(ref, unseen)
            unseen = np.concatenate([s[score] for snr, s in scores_by_snr if snr >= 0] or [np.zeros(0)])
            entry["auroc_snr_ge_0"][score] = auroc(known["scores"][score][known["snr_db"] >= 0], unseen)
        result["unseen"].append(entry)

    x, kinds = noise_frames(noise_frame_count, rng, cfg, return_kinds=True)
    index, top, scores, _ = _run(model, x)
    bar.update()
    bar.close()
    for kind in NOISE_KINDS:
        at = kinds == kind
        called = collections.Counter(labels[i] for i in top[at].tolist()).most_common(3)
        result["noise"].append({"kind": kind, "n": int(at.sum()), **shares(index[at], int(at.sum())),
                                "most_called": [[name, count] for name, count in called]})
    result["noise_all"] = {"n": len(x), **shares(index, len(x))}
    result["known_snr_ge_0"] = shares(known["index"][known["snr_db"] >= 0], int((known["snr_db"] >= 0).sum()))
    return result


def markdown(result):
    """The tables of an open_set_evaluation result."""
    name = Path(result["model"]).stem
    lines = [f"### {name} (contract version {result['version']})", ""]
    lines += ["No signal: frames tagged `noise` and `unknown`, and what they were called most.", "",
              "| frames | n | tagged noise | tagged unknown | called most |", "|---|---:|---:|---:|---|"]
    for row in result["noise"]:
        called = ", ".join(f"{n} {c / row['n']:.0%}" for n, c in row["most_called"])
        lines.append(f"| {row['kind']} noise | {row['n']:,} | {row['noise']:.1%} | {row['unknown']:.1%} | {called} |")
    k = result["known_snr_ge_0"]
    lines += ["", f"Known classes at SNR >= 0 dB: {k['noise']:.2%} tagged `noise`, {k['unknown']:.2%} tagged `unknown`.", ""]
    lines += ["Known classes per SNR: accuracy of the top class, tagged `noise` and `unknown`"
              + (", and the SNR estimate's bias and mean absolute error." if result.get("has_snr") else "."), "",
              "| SNR (dB) | accuracy | tagged noise | tagged unknown |" + (" SNR bias (dB) | SNR MAE (dB) |"
                                                                       if result.get("has_snr") else ""),
              "|---:|---:|---:|---:|" + ("---:|---:|" if result.get("has_snr") else "")]
    for row in result["known"]:
        snr_cells = f" {row['snr_bias_db']:+.2f} | {row['snr_mae_db']:.2f} |" if result.get("has_snr") else ""
        lines.append(f"| {row['snr_db']} | {row['accuracy']:.1%} | {row['noise']:.1%} | {row['unknown']:.1%} |{snr_cells}")
    if result.get("snr_mae_db"):
        m = result["snr_mae_db"]
        lines += ["", f"SNR estimate over {m['range_db'][0]:g}..{m['range_db'][1]:g} dB: mean absolute error "
                      f"{m['mae']:.2f} dB, bias {m['bias']:+.2f} dB."]
    lines.append("")
    scores = result["scores"]
    bands = [f"{lo}..{hi}" for lo, hi in SNR_BANDS]
    lines += ["Unseen modulations: AUROC of each score (known vs unseen, per SNR band, dB) and the share tagged "
              "`unknown` at SNR >= 0 dB by the model's own rule.", "",
              "| modulation | called most (SNR >= 0) | " + " | ".join(f"{s} AUROC {b}" for s in scores for b in bands)
              + " | tagged unknown (SNR >= 0) |",
              "|---|---|" + "---:|" * (len(scores) * len(bands) + 1)]
    for entry in result["unseen"]:
        high = [r for r in entry["per_snr"] if r["snr_db"] >= 0]
        called = collections.Counter(r["most_called"] for r in high).most_common(1)[0][0] if high else "-"
        tagged = np.mean([r["unknown"] for r in high]) if high else float("nan")
        lines.append(f"| {entry['modulation']} | {called} | "
                     + " | ".join(cell(entry["auroc_by_band"][s][b], "float3") for s in scores for b in bands)
                     + f" | {tagged:.1%} |")
    return "\n".join(lines) + "\n"


def plot(result, path):
    """Per true SNR: the shares tagged noise and unknown and, for a model that estimates it, the SNR
    estimate's bias and mean absolute error."""
    plt = pyplot()
    rows = result["known"]
    snr = [r["snr_db"] for r in rows]
    n_axes = 2 if result.get("has_snr") else 1
    fig, axes = plt.subplots(1, n_axes, figsize=(5.5 * n_axes, 3.6), squeeze=False)
    ax = axes[0][0]
    ax.plot(snr, [r["noise"] for r in rows], "o-", label="known tagged noise")
    ax.plot(snr, [r["unknown"] for r in rows], "s-", label="known tagged unknown")
    ax.set_xlabel("true SNR (dB)")
    ax.set_ylabel("share of frames")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if result.get("has_snr"):
        ax = axes[0][1]
        ax.plot(snr, [r["snr_bias_db"] for r in rows], "o-", label="bias")
        ax.plot(snr, [r["snr_mae_db"] for r in rows], "s-", label="mean absolute error")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel("true SNR (dB)")
        ax.set_ylabel("SNR estimate error (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(Path(result["model"]).stem, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_open_set_report(result, json_path=None, markdown_path=None, plot_path=None):
    """Write the result's JSON, tables and (``plot_path``) figure; returns the markdown."""
    table = markdown(result)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=1) + "\n")
    if markdown_path:
        write_markdown(markdown_path, table)
    if plot_path:
        plot(result, plot_path)
    return table
