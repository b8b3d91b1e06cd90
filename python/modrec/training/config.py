"""Experiment configuration: one YAML file per experiment, validated into dataclasses.

Errors name the file, the dotted field, what was expected and what was found, because a typo in
a config otherwise surfaces as a silent default hours into a cluster job.
"""

import copy
import dataclasses
import typing
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

from .. import contract

from .data.source import DataSourceError, parse_split_scheme


class ConfigError(ValueError):
    pass


@dataclass
class DataConfig:
    """Where the frames come from: the synthetic generator (default) or a file (``source``)."""

    # A file or dataset to read instead of generating one (training/data/sources.py):
    # rml2016:PATH, rml2018:PATH, sigmf:PATH, synthetic:DIR, or a bare PATH (format detected).
    source: Optional[str] = None
    # file sources: train/val/test percentages, stratified per (class, SNR), seeded by data.seed
    split: str = "60/20/20"
    limit: int = 0  # file sources: at most this many frames per (class, SNR), 0 = all
    # rml2018: the names of Y's columns (default: the corrected RadioML 2018.01A order, classes.py);
    # sigmf: the classes the labels must belong to
    classes: list = field(default_factory=list, metadata={"items": str})
    frame_len: int = 0  # sigmf: samples per frame (0 = the default, 128)
    samples_per_symbol: int = 0  # rml2018 / sigmf: the data's oversampling when known (0 = not stated)
    # --- the synthetic generator (used when source is empty)
    name: str = "rml2016-synth"
    # None: $MODREC_CACHE/datasets/<name> or ~/.cache/gr-modrec/datasets/<name>
    root: Optional[str] = None
    # frames per (class, SNR) for each split; the dataset is generated when root lacks it
    frames_per_class_snr: Dict[str, int] = field(default_factory=lambda: {"train": 1000, "val": 100, "test": 200})
    seed: int = 2016  # the generator's seed, or a file source's split seed
    workers: int = 0  # 0 = all cores
    generator: Dict[str, Any] = field(default_factory=dict)  # GeneratorConfig overrides
    # synthetic data only: every epoch after the first trains on frames generated anew for the
    # train split's labels, seeded by (seed, epoch), instead of the same frames again
    # (data/fresh.py); fresh_workers processes generate the next epoch's while one trains
    fresh_frames: bool = False
    fresh_workers: int = 1


@dataclass
class ModelConfig:
    name: str = "cnn3"
    cfg: Dict[str, Any] = field(default_factory=dict)  # n_classes / frame_len are taken from the data


@dataclass
class OptimConfig:
    name: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-2
    betas: tuple = (0.9, 0.999)


@dataclass
class ScheduleConfig:
    name: str = "onecycle"  # onecycle | cosine | constant
    warmup_frac: float = 0.1  # of all steps: onecycle pct_start, or cosine linear warm-up
    final_lr_frac: float = 1e-3  # lr at the end, as a fraction of optim.lr


@dataclass
class AugmentConfig:
    phase_rotation: bool = True  # uniform random carrier phase per frame
    time_shift: bool = True  # random circular shift over the whole frame
    freq_offset: float = 0.0  # max |CFO| in cycles/sample (0 = off)
    conjugate: bool = False  # random I/Q conjugation (spectral flip)
    # freq_offset leaves frames of the noise class at their frequency: a receiver's DC offset stays
    # at 0 Hz instead of becoming a carrier near it (augment.receiver_frames)
    hold_noise_frequency: bool = False


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 256
    eval_batch_size: int = 2048
    label_smoothing: float = 0.05
    grad_clip: float = 5.0  # max grad norm, 0 = off
    # network slimming's sparsity training: L1 penalty on every batch-norm scale (lambda, e.g. 1e-4),
    # so a later bn-gamma pruning removes channels the model learnt to do without; 0 = off
    bn_sparsity: float = 0.0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch intra-op threads, 0 = all cores


@dataclass
class DistillConfig:
    method: str = "none"  # none | a registered distiller (modrec.training.distill: kd, skd, nkd, bdkd)
    # offline methods: {checkpoint: path/to/best.pt}; online (bdkd): {model: name, cfg: {...}}
    teacher: Dict[str, Any] = field(default_factory=dict)
    cfg: Dict[str, Any] = field(default_factory=dict)  # the distiller's hyper-parameters (its defaults otherwise)
    # teacher outputs computed once and cached on disk (offline methods only); with cache_views = 0
    # over the clean train split, which turns augmentation off
    cache_teacher: bool = False
    # with cache_teacher: K >= 1 augmented copies of the train split, made once (seeded) with the
    # run's augmentation, the teacher's outputs cached for each; epoch e trains on copy e mod K
    cache_views: int = 0
    cache_dir: Optional[str] = None  # None: $MODREC_CACHE/teacher or ~/.cache/gr-modrec/teacher


# The criteria the prune package registers (checked here without importing torch-pruning).
PRUNE_CRITERIA = ("gamma-redundancy", "l1", "bn-gamma", "random")


@dataclass
class PruneConfig:
    checkpoint: Optional[str] = None  # a trained run's best.pt: set = prune it, then fine-tune (train.*)
    criterion: str = "gamma-redundancy"  # gamma-redundancy | l1 | bn-gamma | random
    criterion_cfg: Dict[str, Any] = field(default_factory=dict)  # gamma-redundancy: redundancy_weight, similarity, above_chance
    ratio: float = 0.5  # fraction of conv output channels removed
    strategy: str = "local"  # local: each layer by itself | global: one ranking across layers
    steps: int = 1  # > 1: reach the ratio in equal steps, fine-tuning step_epochs after each
    step_epochs: int = 1
    calibration_frames: int = 512  # train frames whose feature maps the feature-similarity criterion compares


@dataclass
class ExitsConfig:
    """How an early-exit student (a model with exits, e.g. mobilenet1d_ee) trains and exits."""

    scheme: str = "joint"  # joint | two_phase | heads (see training/exits/loss.py)
    weights: list = field(default_factory=list)  # loss weight per exit, early first; empty = all 1
    phase1_epochs: int = 0  # two_phase: epochs of the first phase
    self_distill: float = 0.0  # weight of KL(final exit || early exit) on the early exits
    temperature: float = 3.0
    init_from: Optional[str] = None  # a trained plain student's checkpoint for the backbone
    policy: str = contract.POLICY_ENTROPY  # one of contract.EXIT_POLICIES (gate: learned, exits/gate.py): the exit rule calibrated at export
    budget_pp: float = 0.5  # accuracy loss allowed for the exit threshold (validation split)
    budget_snr_min: Optional[float] = None  # also hold the budget on frames at or above this SNR


@dataclass
class DetectorConfig:
    """How the signal detector (model signal_detector) and a classifier with detector heads
    (models/detecting.py) train (training/detection.py)."""

    snr_weight: float = 1.0  # weight of the SNR regression loss (SmoothL1, dB)
    noise_weight: float = 1.0  # weight of the noise logit's binary cross-entropy
    ignore_below_db: float = -6.0  # signal frames below this SNR do not teach the noise output
    # a classifier with detector heads (models/detecting.py, JointDetection): the class loss's
    # weight, and a trained classifier's checkpoint the backbone starts from (None: from scratch)
    class_weight: float = 1.0
    init_from: Optional[str] = None
    # keep the backbone as init_from left it (needs init_from): only the heads train, so the class
    # outputs stay that classifier's, bit for bit
    freeze_backbone: bool = False


@dataclass
class ExperimentConfig:
    experiment: str = "experiment"
    seed: int = 0
    output_dir: Optional[str] = None  # default runs/<experiment>
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    exits: ExitsConfig = field(default_factory=ExitsConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    source: Optional[str] = None  # the YAML file it came from (set by the loader)

    @property
    def run_dir(self):
        return Path(self.output_dir or os.path.join("runs", self.experiment))

    @property
    def data_root(self):
        if self.data.root:
            return Path(self.data.root).expanduser()
        base = os.environ.get("MODREC_CACHE") or os.path.join("~", ".cache", "gr-modrec")
        return Path(base).expanduser() / "datasets" / self.data.name

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["optim"]["betas"] = list(d["optim"]["betas"])
        return d


_SCALARS = {int: "an integer", float: "a number", str: "a string", bool: "true/false"}


def _check_scalar(value, typ, where, source):
    name = _SCALARS[typ]
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
    }[typ](value)
    if not ok:
        raise ConfigError(f"{source}: field '{where}' expected {name}, got {type(value).__name__} {value!r}")
    return float(value) if typ is float else value


def _optional_type(field):
    """The X of an Optional[X] field (a scalar type), str when it is not one."""
    args = [a for a in typing.get_args(field.type) if a is not type(None)]
    return args[0] if len(args) == 1 and args[0] in _SCALARS else str


def _build(cls, raw, source, prefix=""):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: field '{prefix.rstrip('.') or '<top>'}' expected a mapping, got {type(raw).__name__} {raw!r}")
    # ExperimentConfig.source is the YAML file's own path, set by the loader, not a field to write
    fields = {f.name: f for f in dataclasses.fields(cls) if not (cls is ExperimentConfig and f.name == "source")}
    kwargs = {}
    for key, value in raw.items():
        where = prefix + str(key)
        if key not in fields:
            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{prefix}{hint[0]}'?)" if hint else ""
            raise ConfigError(f"{source}: unknown field '{where}'{hint}; expected one of {', '.join(fields)}")
        default = fields[key].default
        if default is dataclasses.MISSING:
            default = fields[key].default_factory()
        if dataclasses.is_dataclass(default):
            kwargs[key] = _build(type(default), value, source, where + ".")
        elif isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: field '{where}' expected a mapping, got {type(value).__name__} {value!r}")
            kwargs[key] = value
        elif isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or len(value) != len(default):
                raise ConfigError(f"{source}: field '{where}' expected a list of {len(default)} numbers, got {value!r}")
            kwargs[key] = tuple(_check_scalar(v, float, where, source) for v in value)
        elif isinstance(default, list):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{source}: field '{where}' expected a list, got {type(value).__name__} {value!r}")
            items = fields[key].metadata.get("items", float)
            kwargs[key] = [_check_scalar(v, items, where, source) for v in value]
        elif value is None and (default is None):
            kwargs[key] = None
        else:
            typ = type(default) if default is not None else _optional_type(fields[key])
            kwargs[key] = _check_scalar(value, typ, where, source)
    return cls(**kwargs)


def _validate(cfg, source):
    def bad(where, expected, got):
        raise ConfigError(f"{source}: field '{where}' expected {expected}, got {got!r}")

    if cfg.train.epochs < 1:
        bad("train.epochs", ">= 1", cfg.train.epochs)
    if cfg.train.batch_size < 1:
        bad("train.batch_size", ">= 1", cfg.train.batch_size)
    if cfg.train.eval_batch_size < 1:
        bad("train.eval_batch_size", ">= 1", cfg.train.eval_batch_size)
    cores = os.cpu_count() or 1
    if not 0 <= cfg.train.threads <= cores:
        bad("train.threads", f"0 (all cores) to {cores} (this machine's cores)", cfg.train.threads)
    if cfg.train.grad_clip < 0:
        bad("train.grad_clip", ">= 0 (0 = off)", cfg.train.grad_clip)
    if cfg.data.workers < 0:
        bad("data.workers", ">= 0 (0 = all cores)", cfg.data.workers)
    if cfg.optim.name.lower() not in ("adamw", "adam", "sgd"):
        bad("optim.name", "one of adamw, adam, sgd", cfg.optim.name)
    if cfg.optim.lr <= 0:
        bad("optim.lr", "> 0", cfg.optim.lr)
    if cfg.schedule.name.lower() not in ("onecycle", "cosine", "constant"):
        bad("schedule.name", "one of onecycle, cosine, constant", cfg.schedule.name)
    if not 0 <= cfg.schedule.warmup_frac < 1:
        bad("schedule.warmup_frac", "in [0, 1)", cfg.schedule.warmup_frac)
    if cfg.train.bn_sparsity < 0:
        bad("train.bn_sparsity", ">= 0", cfg.train.bn_sparsity)
    if not 0 <= cfg.train.label_smoothing < 1:
        bad("train.label_smoothing", "in [0, 1)", cfg.train.label_smoothing)
    dev = cfg.train.device
    if not (dev in ("auto", "cpu", "cuda", "mps") or dev.startswith("cuda:")):
        bad("train.device", "auto, cpu, cuda, cuda:N or mps", dev)
    if cfg.data.source is not None:
        _validate_source(cfg.data, source)
    if cfg.data.fresh_workers < 0:
        bad("data.fresh_workers", ">= 0 (0 = each epoch's frames generated when it starts)", cfg.data.fresh_workers)
    if cfg.data.fresh_frames and cfg.data.source is not None:
        raise ConfigError(f"{source}: field 'data.fresh_frames' is true, but data.source ({cfg.data.source!r}) is a "
                          f"file: fresh frames come from the synthetic generator (remove one of the two)")
    if cfg.data.fresh_frames and cfg.distill.cache_teacher:
        raise ConfigError(f"{source}: field 'data.fresh_frames' is true, but distill.cache_teacher is too: the "
                          f"teacher's outputs are cached for the stored frames, and every epoch brings new ones "
                          f"(set cache_teacher: false, the teacher then runs on each batch)")
    for split in ("train", "val"):
        n = cfg.data.frames_per_class_snr.get(split)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            bad(f"data.frames_per_class_snr.{split}", "an integer >= 1", n)
    from .models import default_config

    try:
        known = default_config(cfg.model.name)
    except KeyError as err:
        raise ConfigError(f"{source}: field 'model.name': {err.args[0]}") from None
    unknown = sorted(set(cfg.model.cfg) - set(known))
    if unknown:
        raise ConfigError(
            f"{source}: field 'model.cfg' has unknown key(s) {', '.join(unknown)} for model "
            f"'{cfg.model.name}'; expected a subset of {', '.join(known)}"
        )
    if cfg.distill.method != "none":
        _validate_distill(cfg.distill, source)
    ec = cfg.exits
    if ec.scheme not in ("joint", "two_phase", "heads"):
        bad("exits.scheme", "joint, two_phase or heads", ec.scheme)
    if ec.policy not in contract.EXIT_POLICIES:
        bad("exits.policy", f"one of {', '.join(contract.EXIT_POLICIES)}", ec.policy)
    if ec.self_distill < 0 or ec.temperature <= 0 or ec.budget_pp < 0:
        bad("exits.self_distill / temperature / budget_pp", ">= 0 / > 0 / >= 0", (ec.self_distill, ec.temperature, ec.budget_pp))
    if any(not isinstance(w, (int, float)) or w < 0 for w in ec.weights):
        bad("exits.weights", "non-negative numbers", ec.weights)
    dc = cfg.detector
    if dc.snr_weight < 0 or dc.noise_weight < 0 or dc.snr_weight + dc.noise_weight == 0:
        bad("detector.snr_weight / noise_weight", "numbers >= 0, not both 0", (dc.snr_weight, dc.noise_weight))
    pc = cfg.prune
    if pc.criterion not in PRUNE_CRITERIA:
        bad("prune.criterion", f"one of {', '.join(PRUNE_CRITERIA)}", pc.criterion)
    if pc.criterion_cfg and pc.criterion != "gamma-redundancy":
        bad("prune.criterion_cfg", f"nothing for criterion '{pc.criterion}' (it takes no options)", pc.criterion_cfg)
    if not 0 < pc.ratio < 1:
        bad("prune.ratio", "a fraction in (0, 1)", pc.ratio)
    if pc.strategy not in ("local", "global"):
        bad("prune.strategy", "local or global", pc.strategy)
    if pc.steps < 1 or pc.step_epochs < 1 or pc.calibration_frames < 1:
        bad("prune.steps / step_epochs / calibration_frames", "integers >= 1", (pc.steps, pc.step_epochs, pc.calibration_frames))


def _validate_source(dc, source):
    # the file itself is opened by the training run; here only what can be checked without it
    try:
        parse_split_scheme(dc.split)
    except DataSourceError as err:
        raise ConfigError(f"{source}: field 'data.split': {err}") from None
    for name in ("limit", "frame_len", "samples_per_symbol"):
        if getattr(dc, name) < 0:
            raise ConfigError(f"{source}: field 'data.{name}' expected an integer >= 0, got {getattr(dc, name)!r}")
    if not dc.source:
        raise ConfigError(f"{source}: field 'data.source' expected KIND:PATH or a path, got an empty string")


def source_options(dc):
    """The open_source() options a DataConfig asks for (only the ones it sets)."""
    options = {"split": dc.split, "seed": dc.seed, "limit": dc.limit}
    for name in ("classes", "frame_len", "samples_per_symbol"):
        if getattr(dc, name):
            options[name] = getattr(dc, name)
    return options


def _validate_distill(dc, source):
    # imported only for distillation runs: plain training never needs the distill package
    from .distill import get_distiller, resolve_config
    from .models import default_config

    try:
        cls = get_distiller(dc.method)
    except KeyError as err:
        raise ConfigError(f"{source}: field 'distill.method': {err.args[0]}") from None
    try:
        resolve_config(dc.method, dc.cfg)
    except (TypeError, ValueError) as err:
        msg = str(err)
        field_name = "distill.cfg"
        if msg.startswith("'"):  # "'key' expected ...": name the exact field
            key, rest = msg[1:].split("'", 1)
            field_name, msg = f"distill.cfg.{key}", rest.strip()
        raise ConfigError(f"{source}: field '{field_name}' {msg}") from None
    teacher = dc.teacher
    if cls.online:
        allowed, required = ("model", "cfg"), "model"
    else:
        # a trained checkpoint, or several (an ensemble teacher: models/ensemble.py)
        allowed, required = ("checkpoint", "checkpoints"), "checkpoints" if "checkpoints" in teacher else "checkpoint"
    unknown = sorted(set(teacher) - set(allowed))
    if unknown:
        raise ConfigError(f"{source}: field 'distill.teacher' has unknown key(s) {', '.join(map(str, unknown))} for "
                          f"method '{dc.method}' ({'online: the teacher is built and trained' if cls.online else 'offline: the teacher is a trained checkpoint, or a list of them'}); "
                          f"expected {' or '.join(allowed)}")
    if not cls.online and len(set(teacher) & set(allowed)) > 1:
        raise ConfigError(f"{source}: field 'distill.teacher' has both checkpoint and checkpoints; give one "
                          f"checkpoint, or a list of them for an ensemble teacher")
    if required == "checkpoints":
        members = teacher["checkpoints"]
        if not (isinstance(members, list) and len(members) >= 2 and all(isinstance(p, str) and p for p in members)):
            raise ConfigError(f"{source}: field 'distill.teacher.checkpoints' expected a list of at least 2 checkpoint "
                              f"paths (an ensemble teacher), got {members!r}")
    elif not isinstance(teacher.get(required), str) or not teacher[required]:
        raise ConfigError(f"{source}: field 'distill.teacher.{required}' expected a string (method '{dc.method}' "
                          f"needs it), got {teacher.get(required)!r}")
    if cls.online:
        try:
            known = default_config(teacher["model"])
        except KeyError as err:
            raise ConfigError(f"{source}: field 'distill.teacher.model': {err.args[0]}") from None
        tcfg = teacher.get("cfg") or {}
        if not isinstance(tcfg, dict):
            raise ConfigError(f"{source}: field 'distill.teacher.cfg' expected a mapping, got {tcfg!r}")
        unknown = sorted(set(tcfg) - (set(known) - {"n_classes", "frame_len"}))
        if unknown:
            raise ConfigError(f"{source}: field 'distill.teacher.cfg' has unknown key(s) {', '.join(unknown)} for "
                              f"model '{teacher['model']}' (n_classes and frame_len come from the data)")
        if dc.cache_teacher:
            raise ConfigError(f"{source}: field 'distill.cache_teacher' expected false for method '{dc.method}', "
                              f"got True: its teacher is trained jointly, so its outputs change every step")
    if isinstance(dc.cache_views, bool) or not isinstance(dc.cache_views, int) or dc.cache_views < 0:
        raise ConfigError(f"{source}: field 'distill.cache_views' expected an integer >= 0, got {dc.cache_views!r}")
    if dc.cache_views and not dc.cache_teacher:
        raise ConfigError(f"{source}: field 'distill.cache_views' is {dc.cache_views}, but distill.cache_teacher is "
                          f"false: the views exist to cache the teacher's outputs on them (set cache_teacher: true)")


def config_from_dict(raw, source="<dict>"):
    cfg = _build(ExperimentConfig, raw, source)
    _validate(cfg, source)
    cfg.source = source
    return cfg


def load_config(path, overrides=()):
    """Load ``path`` and apply ``overrides`` ("dotted.key=yaml-value" strings)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    raw.setdefault("experiment", path.stem)
    raw = apply_overrides(raw, overrides, source=str(path))
    return config_from_dict(raw, source=str(path))


def apply_overrides(raw, overrides, source="<cli>"):
    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{source}: override {item!r} should look like dotted.key=value")
        key, value = item.split("=", 1)
        node = raw
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{source}: override {item!r}: '{p}' is not a section")
        node[parts[-1]] = yaml.safe_load(value)
    return raw
