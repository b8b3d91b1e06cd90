"""An ensemble of trained models as one model: their averaged logits, their features side by side.

Averaging the members' logits is the usual ensemble teacher (Hinton et al., "Distilling the
knowledge in a neural network", 2015: distil an ensemble into one network); feature-matching
methods (skd) read the members' pooled features concatenated, which the student's projector maps
to. Two ways in:

* a distillation config's ``distill.teacher.checkpoints`` (a list): the session loads each
  member's checkpoint and joins them (``Ensemble(members)``) for that run;
* ``modrec ensemble --checkpoints A B ... --out runs/<name>/best.pt`` (ensemble_checkpoint.py):
  one checkpoint of the registered ``ensemble`` model (its config names each member's
  architecture and config), which is evaluated, exported, shipped and used as a teacher like any
  other (``distill.teacher.checkpoint``).

Measured on the shared test split (2026-11-30), the five best shipped students averaged
(mobilenet1d-skd, -nkd, -kd, mini_inception_resnet-skd, -kd) reached 78.87 % at SNR >= 0 dB and
85.25 % at SNR >= 10 dB, against 78.37 and 84.39 % for the best of them alone.
"""

import torch
from torch import nn

from .interface import ModRecModel
from .registry import create_model, list_models, register_model


class Ensemble(ModRecModel):
    """``members``: models of the same classes, each implementing models/interface.py.
    (N, 2, L) float32 -> logits (N, C), the members' mean; ``forward_features`` -> (features (N,
    sum of the members' feature_dim), mean logits). An ensemble has no single backbone: it has no
    early exits or detector heads (``backbone_blocks`` raises NotImplementedError)."""

    def __init__(self, members):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.feature_dim = sum(int(m.feature_dim) for m in members)
        self.description = "ensemble(" + ", ".join(getattr(m, "model_name", type(m).__name__) for m in members) + ")"

    def forward_features(self, x):
        outputs = [m.forward_features(x) for m in self.members]
        return torch.cat([f for f, _ in outputs], dim=1), torch.stack([z for _, z in outputs]).mean(dim=0)

    def forward(self, x):
        return torch.stack([m(x) for m in self.members]).mean(dim=0)

    def backbone_blocks(self):
        raise NotImplementedError("an ensemble has no single backbone: early exits and detector heads need one model")

    def final_head(self):
        raise NotImplementedError("an ensemble has no single backbone: early exits and detector heads need one model")


def plain_classifiers():
    """The registered architectures an ensemble may hold: classifiers without early exits."""
    return [n for n in list_models(kind="classifier") if not n.endswith("_ee")]


# the default: the architectures of the shipped ensemble5 (models/README.md), each at its defaults
DEFAULT_MEMBERS = (*[{"name": "mobilenet1d", "cfg": {}}] * 3, *[{"name": "mini_inception_resnet", "cfg": {}}] * 2)


@register_model(kind="ensemble")
def ensemble(n_classes=11, frame_len=128, members=DEFAULT_MEMBERS):
    """Ensemble (module docstring) of ``members``: a list of {"name": registered classifier,
    "cfg": its config}, at least 2. Each member's ``n_classes`` and ``frame_len`` are the
    ensemble's; a member config that names others raises ValueError. Trained weights come from
    the members' checkpoints (``modrec ensemble``); built from its config alone, it is untrained."""
    if len(members) < 2:
        raise ValueError(f"ensemble: 'members' needs at least 2 entries ({{'name': ..., 'cfg': {{...}}}}), got "
                         f"{len(members)}")
    modules = []
    for i, spec in enumerate(members):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ValueError(f"ensemble: members[{i}] must be {{'name': architecture, 'cfg': {{...}}}}, got {spec!r}")
        plain = plain_classifiers()
        if spec["name"] not in plain:
            raise ValueError(f"ensemble: members[{i}] is a {spec['name']!r}; members are plain classifiers: "
                             f"{', '.join(plain)}")
        cfg = dict(spec.get("cfg") or {})
        for key, value in (("n_classes", n_classes), ("frame_len", frame_len)):
            if cfg.setdefault(key, value) != value:
                raise ValueError(f"ensemble: members[{i}] ({spec['name']}) has {key} {cfg[key]}, the ensemble {value}")
        modules.append(create_model(spec["name"], **cfg))
    return Ensemble(modules)
