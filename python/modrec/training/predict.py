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
