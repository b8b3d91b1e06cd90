"""Batched inference of a torch model in eval mode."""

import numpy as np
import torch


def _cpu(out):
    return tuple(o.float().cpu() for o in out) if isinstance(out, tuple) else out.float().cpu()


@torch.no_grad()
def _predict(model, forward, x, batch_size, device):
    """``forward`` (``model`` or one of its methods) over a (N, 2, L) tensor or array in eval
    mode, batched: each batch's output (a tensor or a tuple of them) on the CPU, in a list."""
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    out = [_cpu(forward(x[s : s + batch_size].to(device))) for s in range(0, len(x), batch_size)]
    model.train(was)
    return out


def predict_logits(model, x, batch_size=2048, device=None):
    """Logits for a (N, 2, L) tensor or array, in eval mode, batched."""
    out = _predict(model, model, x, batch_size, device)
    return torch.cat(out) if out else torch.zeros(0)


def predict_detect(model, x, batch_size=2048, device=None):
    """(class logits (N, n_known), detector outputs (N, 2)) of a classifier with detector heads
    (models/detecting.py: ``forward_detect``) for a (N, 2, L) tensor or array, in eval mode,
    batched, on the CPU."""
    out = _predict(model, model.forward_detect, x, batch_size, device)
    if not out:
        return torch.zeros(0), torch.zeros(0, 2)
    return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])
