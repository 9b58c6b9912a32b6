"""The training loop's batches: an endless DataLoader over an infinite sampler, each batch
moved to the device without blocking, and its worker processes stopped with the run."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from omuda.data.datasets import collate
from omuda.data.workers import exit_with_parent


def infinite_loader(
    dataset: torch.utils.data.Dataset,
    sampler: torch.utils.data.Sampler,
    batch_size: int,
    workers: int,
    device: torch.device,
) -> Iterator[dict]:
    """Batches from an infinite sampler, moved to the device without blocking.

    The worker processes end with this process, even when it is killed.
    """
    with warnings.catch_warnings():
        # torch warns when the configured workers outnumber the CPUs; data.workers says so.
        warnings.filterwarnings("ignore", "This DataLoader will create", UserWarning)
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=device.type == "cuda",
            worker_init_fn=functools.partial(exit_with_parent, os.getpid()),
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None,
            drop_last=True,
        )
        # Create the iterator now: it draws a seed from the global RNG, which must happen
        # before the loop reseeds that RNG per iteration (or resumed runs would differ).
        batches = iter(loader)
    return _on_device(batches, device)


def _on_device(batches: Iterator[dict], device: torch.device) -> Iterator[dict]:
    """The batches on `device`; closing this generator, or a failed batch, stops the
    loader's workers at once (left to garbage collection, a failed run's loader would stop
    them only after a 5-second timeout each)."""
    try:
        for batch in batches:
            yield _to_device(batch, device)
    finally:
        stop_workers = getattr(batches, "_shutdown_workers", None)
        if stop_workers is not None:
            stop_workers()


def _to_device(batch: dict, device: torch.device) -> dict:
    return {
        key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value
        for key, value in batch.items()
    }
