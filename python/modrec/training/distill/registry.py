"""Distiller registry, shaped like the model registry: ``@register_distiller("kd")`` on a
``Distiller`` subclass, ``create_distiller(name, **cfg)``.

A distiller's keyword constructor defaults ARE its config: the YAML's ``distill.cfg`` is checked
against them (unknown keys and wrong types are errors). Keyword-ONLY constructor arguments
(feature widths) are supplied by the trainer from the models, never by a config.
"""

import difflib
import fnmatch
import inspect

import torch.nn.functional as F
from torch import nn

_DISTILLERS = {}


class Distiller(nn.Module):
    """One distillation objective. May own trainable parameters (SKD's projection): the trainer
    optimises them with the student and saves them in checkpoints.

    ``loss(student_logits, targets, teacher_logits, student_features=None, teacher_features=None)``
    returns ``(loss, parts)``; ``parts`` holds detached scalar tensors for the history.
    """

    name = None
    needs_features = False  # the trainer then calls forward_features on student and teacher
    online = False  # the teacher is built fresh and trained jointly, its logits carry gradients

    @classmethod
    def check(cls, cfg):
        """Raise ValueError("'key' expected ..., got ...") for out-of-range values."""

    def loss(self, student_logits, targets, teacher_logits, student_features=None, teacher_features=None):
        raise NotImplementedError

    def forward(self, *args, **kwargs):
        return self.loss(*args, **kwargs)


def check_range(cfg, key, ok, expected):
    if not ok(cfg[key]):
        raise ValueError(f"'{key}' expected {expected}, got {cfg[key]!r}")


def kl_per_sample(p_logits, q_logits, temperature):
    """KL(softmax(p/T) || softmax(q/T)) per sample, (N,). log-softmax on both sides, so a
    confidently zero probability gives 0 * log 0 = 0 instead of NaN."""
    log_p = F.log_softmax(p_logits / temperature, dim=1)
    log_q = F.log_softmax(q_logits / temperature, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def register_distiller(name):
    def wrap(cls):
        if not (isinstance(cls, type) and issubclass(cls, Distiller)):
            raise TypeError(f"distiller '{name}': {cls!r} is not a Distiller subclass")
        if name in _DISTILLERS and _DISTILLERS[name] is not cls:
            raise ValueError(f"distiller '{name}' is registered twice ({_DISTILLERS[name].__module__} and {cls.__module__})")
        if name == "none":
            raise ValueError("'none' means plain training and cannot name a distiller")
        cls.name = name
        _DISTILLERS[name] = cls
        return cls

    return wrap


def list_distillers(pattern="*"):
    return sorted(n for n in _DISTILLERS if fnmatch.fnmatch(n, pattern))


def get_distiller(name):
    if name not in _DISTILLERS:
        hint = difflib.get_close_matches(str(name), list(_DISTILLERS), n=1)
        hint = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise KeyError(f"unknown distillation method '{name}'{hint}; registered: none, {', '.join(list_distillers())}")
    return _DISTILLERS[name]


def default_config(name):
    sig = inspect.signature(get_distiller(name).__init__)
    return {p.name: p.default for p in sig.parameters.values()
            if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is not inspect.Parameter.empty}


def _type_ok(value, default):
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def resolve_config(name, cfg):
    """The full config for ``name`` (defaults + ``cfg``), checked; raises KeyError (method),
    TypeError (unknown key or wrong type) or ValueError (range), each naming the key."""
    defaults = default_config(name)
    unknown = sorted(set(cfg) - set(defaults))
    if unknown:
        raise TypeError(f"distiller '{name}': unknown config key(s) {', '.join(unknown)}; "
                        f"expected a subset of {', '.join(defaults)}")
    full = dict(defaults)
    for key, value in cfg.items():
        if not _type_ok(value, defaults[key]):
            raise TypeError(f"'{key}' expected {type(defaults[key]).__name__} like the default "
                            f"{defaults[key]!r}, got {type(value).__name__} {value!r}")
        full[key] = float(value) if isinstance(defaults[key], float) else value
    get_distiller(name).check(full)
    return full


def create_distiller(name, *, student_dim=None, teacher_dim=None, **cfg):
    """Build a registered distiller; ``student_dim``/``teacher_dim`` are the models' feature_dim
    (used only by feature-matching methods)."""
    cls = get_distiller(name)
    full = resolve_config(name, cfg)
    kwonly = {p.name for p in inspect.signature(cls.__init__).parameters.values()
              if p.kind is inspect.Parameter.KEYWORD_ONLY}
    extra = {k: v for k, v in (("student_dim", student_dim), ("teacher_dim", teacher_dim)) if k in kwonly}
    distiller = cls(**full, **extra)
    distiller.distill_cfg = full
    return distiller


def hard_ce(logits, targets):
    # plain CE: the soft targets already regularise, so train.label_smoothing is not added on top
    return F.cross_entropy(logits, targets)


def entropy(logits, temperature):
    log_p = F.log_softmax(logits / temperature, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


__all__ = ["Distiller", "register_distiller", "create_distiller", "list_distillers", "default_config",
           "resolve_config", "get_distiller", "kl_per_sample", "entropy", "hard_ce", "check_range"]
