"""Data-parallel training under ``torchrun`` (PyTorch DistributedDataParallel).

The same ``modrec train`` command runs unchanged as one process or as ``torchrun
--nproc_per_node N -m gnuradio.modrec.training train ...``: torchrun's environment variables
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) switch this module on. gloo is used on CPU, nccl
on CUDA.

How the work is split keeps a run comparable with a single-process run: every rank draws the
same global permutation of the training set each epoch (same seeded generator) and takes every
W-th index of each global batch, so the global batch, the number of optimiser steps and the lr
schedule are those of one process; DDP averages the gradients. Batch-norm running statistics are
per rank in DDP, so they are broadcast from rank 0 at the end of every epoch, which leaves every
rank with identical weights and buffers. Modules trained beside the student without DDP (a
distiller's projection, an online teacher) get their gradients averaged explicitly. Only rank 0
writes checkpoints and logs.
"""

import os
import warnings
import weakref
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self):
        return self.world_size > 1

    @property
    def is_main(self):
        return self.rank == 0


def from_environment():
    """The process's place in a torchrun job; a plain single-process context without torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    return Context(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def setup(ctx, device):
    """Join the process group (gloo on CPU, nccl on CUDA); returns the device for this rank."""
    if not ctx.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # Import torch.distributed.nn before the group exists. Its functional collectives take
        # `group=group.WORLD` as a default argument, evaluated once at import; DDP imports the module
        # lazily (through torch.distributed._shard) when it wraps the model, i.e. after
        # init_process_group, so ten module-level functions kept the world group as their default.
        # destroy_process_group() then only forgot the group: the gloo backend (its pt_gloo_runloop
        # and gloo_tcp_loop threads, its sockets to the peers) lived on and was torn down during
        # interpreter finalization instead, racing the peer's exit and Python's own shutdown; a
        # backend thread that needs the GIL once finalization has begun is ended with
        # pthread_exit, whose forced unwind through C++ noexcept frames aborts the process with
        # "terminate called without an active exception" (seen on rank 1 of a loaded machine).
        # Imported now, those defaults are None and the group's last reference is the one that
        # destroy_process_group() drops.
        import torch.distributed.nn  # noqa: F401

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def teardown(ctx, clean=True):
    """Leave the job's process group and free its backend while the interpreter is fully alive.

    ``clean``: this rank finished normally, so every rank is on its way here; a final barrier then
    makes sure no rank closes its connections while a peer still takes part in a collective. A rank
    that failed passes False and leaves at once: its peers may never reach that barrier (closing
    its connections makes their pending collectives fail instead of hang).
    """
    if not (ctx.enabled and dist.is_initialized()):
        return
    if clean:
        dist.barrier()
    world = weakref.ref(dist.group.WORLD)
    dist.destroy_process_group()
    # The backend's threads are joined and its sockets closed when the last reference to the group
    # goes, which must be here and not in interpreter finalization (see setup). A module that
    # captured the group (a default argument, a cache) keeps it alive: say so instead of aborting
    # at random at exit.
    if world() is not None:
        warnings.warn("the torch.distributed process group is still referenced after "
                      "destroy_process_group(): its backend threads will be torn down at interpreter "
                      "exit, which can abort the process", RuntimeWarning, stacklevel=2)


def wrap(model, ctx, device):
    """DDP-wrap ``model`` when distributed; the bare module otherwise."""
    if not ctx.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


class MethodAsForward(torch.nn.Module):
    """``forward`` = another method of the model (``forward_features``, ``forward_exits``): what
    DDP must wrap when a loss needs more than the logits (DDP only synchronises gradients of what
    goes through its own forward)."""

    def __init__(self, model, method):
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, x):
        return getattr(self.model, self.method)(x)


def unwrap(model):
    model = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    return model.model if isinstance(model, MethodAsForward) else model


def shard(indices, ctx):
    """This rank's share of a global batch of indices (every W-th, starting at the rank)."""
    return indices[ctx.rank :: ctx.world_size] if ctx.enabled else indices


def sum_across(values, ctx):
    """Sum a 1-D tensor of running totals over all ranks (in place) and return it."""
    if ctx.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def average_gradients(parameters, ctx):
    """Average the gradients of modules that DDP does not wrap (a distiller's projection, an
    online teacher) over all ranks, in one all-reduce. Every rank passes the same parameters in
    the same order; a missing gradient counts as zero so the collective never mismatches."""
    if not ctx.enabled:
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= ctx.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def sync_buffers(model, ctx):
    """Copy rank 0's buffers (batch-norm running statistics) to every rank."""
    if ctx.enabled:
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer, src=0)


def barrier(ctx):
    if ctx.enabled:
        dist.barrier()
