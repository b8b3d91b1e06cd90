"""Channel-importance criteria, as torch-pruning ``Importance`` objects.

Ours, ``gamma-redundancy``: a channel matters when its batch-norm scale is large AND it is not a
near-copy of a channel that is already more important. For the channels of one pruning group
(a conv's outputs plus everything coupled to them: the following BN, residual partners, the
next layer's inputs)::

    g_i   = |gamma_i| / mean_j |gamma_j|          (BN scale relative to its layer, mean over the group's BNs)
    s_i   = max over channels j ranked above i by g of  max(0, cos(d_i, d_j))
    score = g_i * (1 - w * s_i)                    (w = redundancy_weight, default 1)

d_i describes channel i: its output filters (``similarity: filter``: the weights of every dense
conv/linear layer producing the channel, depthwise convolutions left out; the cosines of several
layers are averaged weighted by filter length), every layer on the channel's path
(``similarity: path``: dense and depthwise producers alike; a pair is only as alike as in the
layer where it differs most, the smallest cosine over the layers that hold both channels, since a
MobileNet channel whose expansion filter matches another's is still a different channel when its
depthwise filter differs) or its batch-norm responses on a calibration batch
(``similarity: feature``). Only channels ranked *above* i count against it, so of two
duplicates the one with the smaller gamma (on a tie, the later index) loses its score and the
other keeps it: pruning removes the copy, not both. Negative correlation is not redundancy here
(a sign-flipped channel passes a different half through the ReLU). A group with no BN falls
back to the L1 norm of its filters for g.

Baselines: ``l1`` (L1 norm of each filter, Li et al. 2017), ``bn-gamma`` (g alone: network
slimming, Liu et al. 2017; our score with w = 0) and ``random``.

With ``above_chance: true`` a cosine counts only by how far it exceeds what chance gives: n
unrelated vectors of length d reach a largest cosine near t = sqrt(2 ln n / d) (about 0.5 for the
120 filters of 32 weights of a MobileNet expansion layer), so cos becomes max(0, (cos - t) / (1 - t))
before ranking; an exact copy still scores 1. Filters too short to beat chance at all (t >= 1:
the 3-5 taps of a depthwise filter) count only when they are copies, so ``similarity: path``
with ``above_chance`` sees a MobileNet pair as redundant only when its depthwise filters are
identical. models/PRUNING.md compares the variants.
"""

import math

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning.pruner import function as tpf

_OUT_CHANNELS = (tpf.prune_conv_out_channels, tpf.prune_linear_out_channels)
_PRODUCERS = (*_OUT_CHANNELS, tpf.prune_depthwise_conv_out_channels)


def _accumulate(total, count, root, values):
    total.index_add_(0, root, values / values.mean().clamp_min(1e-12))
    count.index_add_(0, root, torch.ones_like(values))


def _cosine(rows):
    rows = rows.flatten(1).float()
    unit = rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return unit @ unit.T


def _filters(layer, idxs):
    """(channels, weights) rows: the weights producing each of the output channels ``idxs``."""
    w = layer.weight.detach()
    if getattr(layer, "transposed", False):
        w = w.transpose(0, 1)
    return w[idxs].flatten(1).float().cpu()


def _above_chance(cos, length):
    """Cosines rescaled to their excess over the largest one chance gives ``len(cos)`` unrelated
    vectors of ``length`` entries (sqrt(2 ln n / d), the Gaussian maximum bound)."""
    floor = math.sqrt(2.0 * math.log(max(cos.shape[0], 2)) / max(length, 1))
    if floor >= 1.0:  # filters this short reach any cosine by chance: only a copy is evidence
        return (cos >= 1.0 - 1e-6).to(cos.dtype)
    return ((cos - floor) / (1.0 - floor)).clamp_min(0.0)


class GammaRedundancyImportance(tp.importance.Importance):
    def __init__(self, redundancy_weight=1.0, similarity="filter", above_chance=False):
        if not 0.0 <= float(redundancy_weight) <= 1.0:
            raise ValueError(f"gamma-redundancy: redundancy_weight must be in [0, 1], got {redundancy_weight}")
        if similarity not in ("filter", "path", "feature"):
            raise ValueError(f"gamma-redundancy: similarity must be 'filter', 'path' or 'feature', got {similarity!r}")
        if not isinstance(above_chance, bool):
            raise ValueError(f"gamma-redundancy: above_chance must be true or false, got {above_chance!r}")
        self.redundancy_weight = float(redundancy_weight)
        self.similarity = similarity
        self.above_chance = above_chance
        self.features = {}  # BatchNorm module -> (channels, samples) responses on the calibration batch

    @property
    def needs_calibration(self):
        return self.similarity == "feature"

    @torch.no_grad()
    def collect_features(self, model, frames):
        """Record every BN's output on ``frames`` (N, 2, L); call again after each pruning step."""
        self.features = {}
        hooks = [m.register_forward_hook(self._recorder(m)) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        was = model.training
        model.eval()
        try:
            model(frames)
        finally:
            for h in hooks:
                h.remove()
            model.train(was)

    def _recorder(self, module):
        def hook(_mod, _inp, out):
            self.features[module] = out.detach().transpose(0, 1).flatten(1)  # (C, N*L)

        return hook

    @torch.no_grad()
    def scores(self, gamma, similarity):
        """The ranking rule on plain tensors: gamma (n,), similarity (n, n). Exposed for tests."""
        g = gamma / gamma.mean().clamp_min(1e-12)
        order = torch.sort(-g, stable=True).indices  # most important first; ties keep index order
        ranked = similarity[order][:, order].clamp_min(0.0)
        above = torch.tril(torch.ones_like(ranked), diagonal=-1)  # entry (a, b): b ranked above a
        s_ranked = (ranked * above).max(dim=1).values
        s = torch.empty_like(s_ranked)
        s[order] = s_ranked
        return g * (1.0 - self.redundancy_weight * s)

    @torch.no_grad()
    def __call__(self, group):
        n = len(group[0].idxs)
        gamma, gamma_n = torch.zeros(n), torch.zeros(n)
        l1, l1_n = torch.zeros(n), torch.zeros(n)
        sims = []
        path = []  # (similarity, which pairs the layer holds) per producing layer, for similarity: path
        for i, (dep, idxs) in enumerate(group):
            layer, fn, root = dep.layer, dep.pruning_fn, group[i].root_idxs
            if any(r is None for r in root):
                continue
            root = torch.as_tensor(root)
            if fn == tpf.prune_batchnorm_out_channels and getattr(layer, "affine", False):
                _accumulate(gamma, gamma_n, root, layer.weight.detach()[idxs].abs().float().cpu())
                if self.similarity == "feature" and layer in self.features:
                    responses = self.features[layer][idxs].cpu()
                    sims.append((self._scatter(self._similarity(responses), root, n), 1.0))
            elif fn in _OUT_CHANNELS or (fn in _PRODUCERS and self.similarity == "path"):
                w = _filters(layer, idxs)
                if fn in _OUT_CHANNELS:
                    _accumulate(l1, l1_n, root, w.abs().sum(1))
                if self.similarity == "path":
                    held = self._scatter(torch.ones(len(idxs), len(idxs)), root, n) > 0
                    path.append((self._scatter(self._similarity(w), root, n), held))
                elif self.similarity == "filter" and fn in _OUT_CHANNELS:
                    # weighted by filter length: a 1x1 conv's 64 input weights are alike only when
                    # the channels really are, a short filter's by chance too
                    sims.append((self._scatter(self._similarity(w), root, n), float(w.shape[1])))
        # Each layer's values are relative to that layer's mean, so channels of a group that
        # come from different layers (concatenations, pass-through pooling branches without BN)
        # are ranked on one scale; a channel with no BN falls back to its filter norm.
        g = torch.where(gamma_n > 0, gamma / gamma_n.clamp_min(1), torch.where(l1_n > 0, l1 / l1_n.clamp_min(1), 1.0))
        similarity = torch.zeros(n, n)
        if path:
            smallest = torch.full((n, n), float("inf"))
            for sim, held in path:
                smallest = torch.where(held, torch.minimum(smallest, sim), smallest)
            similarity = torch.where(torch.isinf(smallest), torch.zeros_like(smallest), smallest)
        elif sims:
            total = sum(weight for _, weight in sims)
            similarity = sum(sim * (weight / total) for sim, weight in sims)
        return self.scores(g, similarity)

    def _similarity(self, rows):
        cos = _cosine(rows)
        return _above_chance(cos, rows[0].numel()) if self.above_chance else cos

    @staticmethod
    def _scatter(sim, root, n):
        full = torch.zeros(n, n)
        full[root[:, None], root[None, :]] = sim
        return full


def _l1():
    # L1 norm of each output filter of the group's first layer (Li et al.), mean-normalised per
    # group so that a global ranking compares layers on one scale
    return tp.importance.GroupMagnitudeImportance(p=1, group_reduction="first", normalizer="mean")


CRITERIA = {
    "gamma-redundancy": GammaRedundancyImportance,
    "l1": _l1,
    # our criterion without the redundancy term: |gamma| ranked the same way (torch-pruning's
    # BNScaleImportance sizes its scores by the group's first BN and fails on concatenations)
    "bn-gamma": lambda: GammaRedundancyImportance(redundancy_weight=0.0),
    "random": tp.importance.RandomImportance,
}


def create_criterion(name, **cfg):
    if name not in CRITERIA:
        raise KeyError(f"unknown pruning criterion '{name}'; known: {', '.join(CRITERIA)}")
    if cfg and name != "gamma-redundancy":
        raise TypeError(f"pruning criterion '{name}' takes no options, got {', '.join(cfg)}")
    return CRITERIA[name](**cfg)
