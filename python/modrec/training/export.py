"""``modrec export``: a training checkpoint to a contract ONNX model, plain or early-exit (with its
exit threshold calibrated on the run's validation split). The export itself is onnx_export.py."""

import copy
import json
import warnings

import numpy as np
import torch

from .. import contract
from ..classes import DEFAULT_SAMPLES_PER_SYMBOL
from .data.sources import read_split, run_source
from .exits.export import export_early_exit
from .onnx_export import export_onnx



def _real_frames(source, n=64):
    """A spread of validation frames from ``source``, if it is still on disk."""
    try:
        val = read_split(source, "val")
    except Exception as err:  # real frames only strengthen the check; random ones are always used
        warnings.warn(f"parity check without real frames: cannot read the run's validation split ({err})")
        return None
    idx = np.linspace(0, len(val.x) - 1, min(n, len(val.x))).astype(int)  # across classes and SNRs
    return np.asarray(val.x[idx], np.float32)


def _pruning_metadata(pruning):
    """The contract's ``pruning`` field for a checkpoint's pruning report (None: not pruned)."""
    if not pruning:
        return contract.encode_pruning()
    return contract.encode_pruning(pruning["criterion"], pruning["ratio"])


def export_checkpoint(checkpoint, out, *, dynamo=True, opset=18, real_like=None, exit_calibration=None,
                      samples_per_symbol=None, detector=None, unknown=None, data=None, noise_false_rate=0.005):
    """Export a training checkpoint (best.pt / last.pt) to ``out``.

    Parity is also checked on real validation frames when the run's dataset is available. For an
    early-exit model the exit threshold is calibrated on the run's validation split, as its
    ``exits:`` config says unless ``exit_calibration`` overrides policy / budget_pp / budget_snr_min.
    ``samples_per_symbol`` is written to the metadata when the training data did not state it
    (RadioML 2018, SigMF recordings); ValueError when neither says.

    Contract version 2: ``detector`` (a signal detector's checkpoint) is joined to the classifier
    (onnx_export.ContractOutputs), its noise decision calibrated so that ``noise_false_rate`` of
    the known validation frames at SNR >= 0 dB are called noise (calibrate_noise_bias);
    ``unknown`` = (score, false rate) calibrates an unknown threshold (calibrate_unknown).
    ``data`` (a source spec) replaces the run's own data for the parity check and the
    calibrations.
    """
    from .checkpoint import load_checkpoint, model_from_checkpoint
    from .models.detecting import DetectingClassifier
    from .models.signal_detector import SignalDetector

    ckpt = load_checkpoint(checkpoint)
    source = data or run_source(ckpt["training"]["data"])
    if real_like is None:
        real_like = _real_frames(source)
    model = model_from_checkpoint(ckpt)
    joint = isinstance(model, DetectingClassifier)
    if isinstance(model, SignalDetector):
        raise ValueError(f"{checkpoint}: a signal detector is exported joined to a classifier: modrec export "
                         f"--checkpoint CLASSIFIER/best.pt --detector {checkpoint}")
    if joint and detector is not None:
        raise ValueError(f"{checkpoint}: {ckpt['model_name']} has detector heads of its own; export it without "
                         f"--detector")
    det = None
    if detector is not None:
        det = model_from_checkpoint(load_checkpoint(detector))
        if not isinstance(det, SignalDetector):
            raise ValueError(f"{detector}: --detector needs a signal detector's checkpoint, this holds a "
                             f"{type(det).__name__}")
    meta = ckpt.get("meta", {})
    sps = meta.get("samples_per_symbol", DEFAULT_SAMPLES_PER_SYMBOL) if samples_per_symbol is None else samples_per_symbol
    if sps is None:
        raise ValueError(f"{checkpoint}: its training data ({meta.get('source')}) does not state its samples per symbol, "
                         f"which the model's metadata must hold: give --samples-per-symbol (or set data.samples_per_symbol "
                         f"when training)")
    training = dict(ckpt.get("training", {}))
    training["checkpoint"] = {"path": str(checkpoint), "epoch": ckpt.get("epoch"),
                              "val_acc": ckpt.get("val_acc")}
    if data is not None:  # parity and calibrations on other data than the run's (the card repeats it)
        training["export_data"] = data if isinstance(data, str) else getattr(data, "spec", str(data))
    common = dict(
        # a classifier with detector heads was trained on its known classes and noise (last): the
        # export names the known ones, as it does a classifier joined to a detector, and adds noise
        classes=ckpt["classes"][:-1] if joint else ckpt["classes"],
        frame_len=int(ckpt["model_cfg"].get("frame_len", meta.get("frame_len"))),
        samples_per_symbol=int(sps),
        architecture=ckpt["model_name"], distillation=str(training.get("distillation", "none")),
        pruning=_pruning_metadata(ckpt.get("pruning")), opset=opset, real_like=real_like,
    )
    if hasattr(model, "forward_exits"):
        if det is not None or unknown is not None:
            raise ValueError(f"{checkpoint}: an early-exit model is exported without a detector or unknown threshold "
                             f"(its stages give probabilities only); export the plain student with them")
        # the run's exits: section, with any of policy / budget_pp / budget_snr_min overridden
        exits_cfg = {**((ckpt.get("config") or {}).get("exits") or {}), **(exit_calibration or {})}
        calibration = calibrate_exits(model, ckpt, exits_cfg.get("policy", contract.POLICY_ENTROPY), exits_cfg.get("budget_pp", 0.5),
                                      exits_cfg.get("budget_snr_min"), source=source)
        gates = calibration.pop("gates", None)  # they travel as metadata exit_gates, not twice
        training["exit_calibration"] = calibration
        return export_early_exit(model, out, thresholds=[calibration["threshold"]] * (model.n_exits - 1),
                                 policy=calibration["policy"], gates=gates,
                                 training=json.loads(json.dumps(training, default=str)), **common)
    noise_bias = 0.0
    if det is not None or joint:
        noise_bias, frames = calibrate_noise_bias(model, det, source, noise_false_rate)
        # "checkpoint": the signal detector joined to the classifier; "own_heads": the model's own
        training["detector"] = {**({"checkpoint": str(detector)} if det is not None else {"own_heads": True}),
                                "noise_false_rate": noise_false_rate, "noise_bias": noise_bias,
                                "calibration_frames": frames}
    info = export_onnx(model, out, training=json.loads(json.dumps(training, default=str)), dynamo=dynamo,
                       detector=det, noise_bias=noise_bias, **common)
    if unknown is not None:
        info["unknown_calibration"] = calibrate_unknown(out, source, *unknown)
    return info


def _known_val_frames(source, snr_min):
    """float32 (N, 2, L) validation frames of ``source`` holding a known class (not noise) at
    SNR >= ``snr_min`` dB; ValueError when there are none."""
    from ..classes import NOISE_LABEL

    val = read_split(source, "val")
    classes = list(val.meta["classes"])
    keep = np.asarray(val.snr_db) >= snr_min
    if NOISE_LABEL in classes:
        keep &= np.asarray(val.y) != classes.index(NOISE_LABEL)
    if not keep.any():
        raise ValueError(f"{source}: no validation frames of a known class at SNR >= {snr_min} dB to calibrate on")
    return np.asarray(val.x)[keep]


@torch.no_grad()
def calibrate_noise_bias(model, detector, source, false_rate, snr_min=0.0, batch_size=2048):
    """(bias, frames): the amount the detector's noise logit d is lowered by so that ``noise`` wins
    (d - bias > log max softmax of the classifier: onnx_export.ContractOutputs) on ``false_rate``
    of the known validation frames at SNR >= ``snr_min`` dB; never below 0 (the detector's own
    decision is the least it says). ``detector`` None: the model's own detector heads
    (models/detecting.py)."""
    from .models.signal_detector import NOISE_COLUMN

    x = _known_val_frames(source, snr_min)
    model = copy.deepcopy(model).eval().cpu()
    detector = None if detector is None else copy.deepcopy(detector).eval().cpu()
    margins = []
    for s in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[s : s + batch_size])
        logits, d = model.forward_detect(xb) if detector is None else (model(xb), detector(xb))
        log_top = torch.log_softmax(logits, dim=-1).max(dim=-1).values
        margins.append((d[:, NOISE_COLUMN] - log_top).numpy())
    bias = float(np.quantile(np.concatenate(margins).astype(np.float64), 1.0 - false_rate))
    return max(bias, 0.0), int(len(x))


def calibrate_unknown(onnx_path, source, score, false_rate, snr_min=0.0):
    """Calibrate and write the unknown threshold of an exported model (contract version 2).

    The threshold is the (1 - ``false_rate``) quantile of open-set score ``score`` (runtime/
    open_set.py, as the block computes it, from the exported file itself) over the validation
    frames of ``source`` that hold a known class at SNR >= ``snr_min`` dB (not noise): so that
    share of them is called unknown. Writes UNKNOWN_SCORE, UNKNOWN_THRESHOLD and
    UNKNOWN_FALSE_RATE into the file; returns {score, false_rate, threshold, frames}.
    """
    from ..runtime import load_model
    from .onnx_export import add_metadata

    model = load_model(onnx_path)
    x = _known_val_frames(source, snr_min)
    scores = np.concatenate([_score(model, x[s : s + 4096], score) for s in range(0, len(x), 4096)])
    threshold = float(np.quantile(scores.astype(np.float64), 1.0 - false_rate))
    add_metadata(onnx_path, {contract.UNKNOWN_SCORE: score, contract.UNKNOWN_THRESHOLD: repr(threshold),
                             contract.UNKNOWN_FALSE_RATE: repr(float(false_rate))})
    return {"score": score, "false_rate": float(false_rate), "threshold": threshold, "frames": int(len(x))}


def _score(model, x, score):
    from ..runtime.open_set import open_set_score

    predictions = model.predict_details(x)
    return open_set_score(score, predictions.probs, predictions.logits)


def calibrate_exits(model, ckpt, policy, budget_pp, snr_min=None, batch_size=2048, gate_frames=60000, source=None):
    """The exit threshold, chosen on the run's validation split (or ``source``'s; see
    exits/calibrate.py); for policy ``gate`` the gates are fitted first, on ``gate_frames`` frames
    of the training split."""
    from .exits import calibrate_threshold

    source = source or run_source(ckpt["training"]["data"])
    model = copy.deepcopy(model).eval().cpu()

    def exit_probs(x):
        outs = []
        with torch.no_grad():
            for s in range(0, len(x), batch_size):
                outs.append([torch.softmax(o, -1).numpy() for o in model.forward_exits(torch.from_numpy(np.asarray(x[s:s + batch_size])))])
        return [np.concatenate([o[k] for o in outs]) for k in range(model.n_exits)]

    gates = None
    if policy == contract.POLICY_GATE:
        from .exits.gate import fit_gate

        train = read_split(source, "train")
        pick = np.sort(np.random.default_rng(0).permutation(len(train.y))[:gate_frames])
        train_probs, train_y = exit_probs(np.asarray(train.x)[pick]), np.asarray(train.y)[pick]
        gates = [fit_gate(train_probs[k], train_probs[-1], train_y) for k in range(model.n_exits - 1)]
    val = read_split(source, "val")
    result = calibrate_threshold(exit_probs(val.x), np.asarray(val.y), policy=policy, budget_pp=budget_pp,
                                 snr=np.asarray(val.snr_db), snr_min=snr_min, gates=gates)
    if gates:
        result["gates"] = gates
        result["gate_fit"] = [{k: g[k] for k in ("train_frames", "train_loss")} for g in gates]
    return result