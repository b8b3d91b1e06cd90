"""timm-style model registry: ``@register_model`` on a factory, ``create_model(name, **cfg)``.

A factory's keyword defaults ARE the model's default config, so there is one place to read
them and checkpoints only need (name, cfg) to rebuild a model.
"""

import difflib
import fnmatch
import inspect

_MODELS = {}
_KINDS = {}
# (N, 2, L) -> class logits | -> (SNR dB, noise logit), models/signal_detector.py | -> class logits, with
# forward_detect giving the detector's outputs too, models/detecting.py | -> class logits averaged over
# trained members, no backbone of its own (no exits or detector heads), models/ensemble.py
KINDS = ("classifier", "detector", "detecting", "ensemble")


def register_model(fn=None, *, name=None, kind="classifier"):
    """Register a factory under ``name`` (default: the function name); ``kind``: one of KINDS."""
    if kind not in KINDS:
        raise ValueError(f"register_model: kind must be one of {', '.join(KINDS)}, got {kind!r}")

    def wrap(factory):
        key = name or factory.__name__
        if key in _MODELS and _MODELS[key] is not factory:
            raise ValueError(f"model '{key}' is registered twice ({_MODELS[key].__module__} and {factory.__module__})")
        _MODELS[key] = factory
        _KINDS[key] = kind
        return factory

    return wrap(fn) if fn is not None else wrap


def list_models(pattern="*", kind=None):
    """Registered names matching ``pattern``, of one of KINDS or (None) all."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern) and kind in (None, _KINDS[n]))


def _factory(name):
    if name not in _MODELS:
        hint = difflib.get_close_matches(name, list(_MODELS), n=1)
        hint = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise KeyError(f"unknown model '{name}'{hint}; registered: {', '.join(list_models()) or 'none'}")
    return _MODELS[name]


def default_config(name):
    """The factory's keyword defaults as a plain dict."""
    sig = inspect.signature(_factory(name))
    return {
        p.name: (list(p.default) if isinstance(p.default, tuple) else p.default)
        for p in sig.parameters.values()
        if p.default is not inspect.Parameter.empty
    }


def create_model(name, **cfg):
    """Build a registered model; unknown config keys are an error, not silently dropped.

    The returned module carries ``model_name`` and ``model_cfg`` (the full resolved config) so
    that checkpoints and ONNX metadata can record exactly what was built.
    """
    defaults = default_config(name)
    unknown = sorted(set(cfg) - set(defaults))
    if unknown:
        raise TypeError(
            f"model '{name}': unknown config field(s) {', '.join(unknown)}; expected a subset of {', '.join(defaults)}"
        )
    full = {**defaults, **cfg}
    model = _factory(name)(**full)
    model.model_name = name
    model.model_cfg = full
    return model
