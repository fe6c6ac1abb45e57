"""Data parallelism across processes started by ``torchrun`` (one per GPU, or CPU processes).

``torchrun --nproc_per_node=K -m wavesmith train ...`` sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; each process trains a full copy of the model on its own share of the
batches, and rank 0 alone writes files. NCCL carries the traffic between GPUs, gloo
between CPU processes.

Why not ``DistributedDataParallel``? DDP averages gradients with hooks that fire during
*one* ``backward()`` of *the module's* ``forward()``. wavesmith models own their steps: a
WGAN-GP critic update differentiates twice (the gradient penalty backpropagates through
``autograd.grad(..., create_graph=True)``, which DDP does not support), a GAN alternates
two optimizers over parts of one module, and ``train_step`` is not ``forward``. So, as
NVIDIA's StyleGAN2-ADA and StyleGAN3 training loops do, the engine averages gradients
explicitly: after ``loss.backward()`` inside ``update(name, loss)`` it flattens the
gradients of optimizer ``name``'s parameters into a few large buckets, ``all_reduce``-s
each bucket once and divides by the world size. Parameters start equal because rank 0
broadcasts its weights before the first step; equal gradients then keep them equal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

BUCKET_BYTES = 32 * 2**20  # gradients per all_reduce call: large enough to amortise latency


@dataclass
class Dist:
    """Where this process sits: ``rank`` of ``world`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """True for the one process that writes files and prints progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def from_env() -> Dist:
    """The process layout torchrun describes in the environment (one process when unset)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(d: Dist, device: torch.device) -> None:
    """Join the process group (NCCL on CUDA, gloo otherwise) when there are several processes."""
    if d.active and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, rank=d.rank, world_size=d.world)


def shutdown(d: Dist, wait_for_all: bool = True) -> None:
    """Leave the process group; after a clean run, only once every process got here.

    Without the barrier a process that finishes first tears down its gloo/NCCL connections
    while rank 0 still writes its last checkpoint, and the other side aborts in C++
    ("terminate called without an active exception"). After an error the others may be
    gone, so then there is no barrier (it would wait forever).
    """
    if d.active and dist.is_initialized():
        if wait_for_all:
            dist.barrier()
        dist.destroy_process_group()


@torch.no_grad()
def broadcast_module(module: torch.nn.Module, d: Dist) -> None:
    """Copy rank 0's parameters and buffers to every process."""
    if not d.active:
        return
    for t in module.state_dict().values():
        dist.broadcast(t, src=0)


@torch.no_grad()
def average_gradients(params: list[torch.nn.Parameter], d: Dist) -> None:
    """Replace each gradient by its mean over all processes, in flattened buckets.

    Every process must pass the same parameters in the same order. A parameter that got
    no gradient here is averaged as zeros, since another process may have one; NaN and
    infinities are zeroed first, as in StyleGAN3, so one bad batch cannot poison all ranks.
    """
    if not d.active:
        return
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    bucket: list[torch.Tensor] = []
    size = 0
    for p in params:
        bucket.append(p.grad)
        size += p.grad.numel() * p.grad.element_size()
        if size >= BUCKET_BYTES:
            _reduce(bucket, d.world)
            bucket, size = [], 0
    if bucket:
        _reduce(bucket, d.world)


def _reduce(grads: list[torch.Tensor], world: int) -> None:
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.nan_to_num_(flat, nan=0.0, posinf=0.0, neginf=0.0)
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def any_flag(flag: bool, d: Dist, device: torch.device) -> bool:
    """True on every process when ``flag`` is true on any (so all stop at the same step)."""
    if not d.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_objects(obj, d: Dist) -> list:
    """``obj`` from every process, in rank order (``[obj]`` alone with one process)."""
    if not d.active:
        return [obj]
    out = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def parameter_checksums(module: torch.nn.Module, d: Dist) -> list[float]:
    """One float per process summarising its weights: equal lists mean the copies agree."""
    with torch.no_grad():
        total = sum(float(p.double().sum()) + float(p.double().abs().sum()) for p in module.parameters())
    return [float(x) for x in gather_objects(total, d)]
