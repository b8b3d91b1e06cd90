"""Batched inference of a torch model in eval mode."""

import numpy as np
import torch


@torch.no_grad()
def predict_logits(model, x, batch_size=2048, device=None):
    """Logits for a (N, 2, L) tensor or array, in eval mode, batched."""
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    out = [model(x[s : s + batch_size].to(device)).float().cpu() for s in range(0, len(x), batch_size)]
    model.train(was)
    return torch.cat(out) if out else torch.zeros(0)


@torch.no_grad()
def predict_detect(model, x, batch_size=2048, device=None):
    """(class logits (N, n_known), detector outputs (N, 2)) of a classifier with detector heads
    (models/detecting.py: ``forward_detect``) for a (N, 2, L) tensor or array, in eval mode,
    batched, on the CPU."""
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    logits, det = [], []
    for s in range(0, len(x), batch_size):
        out = model.forward_detect(x[s : s + batch_size].to(device))
        logits.append(out[0].float().cpu())
        det.append(out[1].float().cpu())
    model.train(was)
    if not logits:
        return torch.zeros(0), torch.zeros(0, 2)
    return torch.cat(logits), torch.cat(det)
