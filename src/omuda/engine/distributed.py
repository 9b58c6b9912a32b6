"""Process-group helpers for torchrun launches; every helper is a no-op in a single process.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them the run is one process on the
preferred device. NCCL serves CUDA, gloo the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain

import torch
from torch import Tensor, nn

from omuda.errors import OmudaError

DEVICE_PREFERENCES = ("auto", "cpu", "cuda")


@dataclass
class DistInfo:
    """Where this process sits in the launch and the device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device


def is_distributed() -> bool:
    """True when a process group is initialised (a multi-process torchrun launch)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _env_int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise OmudaError(f"environment variable {name} is not set (launch with torchrun)")
        return default
    try:
        return int(value)
    except ValueError:
        raise OmudaError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed(device_preference: str = "auto") -> DistInfo:
    """Join the torchrun process group if launched by torchrun, else run as one process.

    device_preference: "auto" (CUDA when available, else CPU), "cpu" or "cuda". Under
    torchrun each process takes the GPU of its LOCAL_RANK.
    """
    if device_preference not in DEVICE_PREFERENCES:
        raise OmudaError(
            f"unknown device {device_preference!r}; valid: {', '.join(DEVICE_PREFERENCES)}"
        )
    cuda_available = torch.cuda.is_available()
    if device_preference == "cuda" and not cuda_available:
        raise OmudaError("device 'cuda' was requested but no CUDA device is available")
    use_cuda = device_preference == "cuda" or (device_preference == "auto" and cuda_available)

    launched_by_torchrun = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    if not launched_by_torchrun:
        device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else None
        return DistInfo(0, 1, 0, device or torch.device("cpu"))

    rank = _env_int("RANK")
    world_size = _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK", default=0)
    if not 0 <= rank < world_size:
        raise OmudaError(f"RANK={rank} is outside 0..WORLD_SIZE-1 (WORLD_SIZE={world_size})")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise OmudaError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA devices"
            )
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not is_distributed():
        if use_cuda:
            # Binding the group to this GPU lets NCCL collectives and barriers pick it.
            torch.distributed.init_process_group("nccl", init_method="env://", device_id=device)
        else:
            torch.distributed.init_process_group("gloo", init_method="env://")
    return DistInfo(rank, world_size, local_rank, device)


def is_main_process() -> bool:
    """True on rank 0, and always in a single process: the one that logs and saves."""
    return not is_distributed() or torch.distributed.get_rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        torch.distributed.barrier()


def all_reduce_sum_(tensor: Tensor) -> Tensor:
    """Sum `tensor` over ranks in place and return it (unchanged in a single process)."""
    if is_distributed():
        torch.distributed.all_reduce(tensor)
    return tensor


@torch.no_grad()
def broadcast_module_(module: nn.Module, src: int = 0) -> nn.Module:
    """Overwrite every parameter and buffer with rank `src`'s values, in place."""
    if is_distributed():
        for tensor in chain(module.parameters(), module.buffers()):
            torch.distributed.broadcast(tensor.data, src=src)
    return module


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            # torch.compile's OptimizedModule keeps the original under `_orig_mod`.
            model = model._orig_mod
        else:
            return model


def cleanup() -> None:
    """Leave the process group if one was joined."""
    if is_distributed():
        torch.distributed.destroy_process_group()


def gradient_averager(model: nn.Module, dist_info: DistInfo) -> Callable[[], None]:
    """After the step's backward passes: average gradients over ranks in one all-reduce.

    The step runs several forward/backward passes per iteration; averaging once at the end
    keeps that simple (no DDP no_sync bookkeeping) and costs one flat all-reduce. Without
    SyncBatchNorm (CPU/gloo) the BatchNorm statistics are also taken from rank 0 here, so
    student and EMA teacher stay identical on every rank.
    """
    if dist_info.world_size == 1:
        return lambda: None
    broadcast_buffers = dist_info.device.type != "cuda"

    def average() -> None:
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= dist_info.world_size
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()
        if broadcast_buffers:
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer, src=0)

    return average
