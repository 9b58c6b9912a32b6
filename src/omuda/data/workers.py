"""Worker processes that end with their parent: `kill -9` of a run leaves no orphan.

A process pool's or data loader's workers wait on a queue that their siblings keep open, so
they do not notice when the parent dies; busy ones finish their item first. Each worker
therefore calls `exit_with_parent` when it starts. `process_pool` makes such a pool.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_POLL_SECONDS = 0.5


def exit_with_parent(parent_pid: int, *_worker_id: object) -> None:
    """End this worker process as soon as the process `parent_pid` has ended.

    A process-pool `initializer` (initargs=(os.getpid(),)) or, through functools.partial, a
    DataLoader `worker_init_fn`. On Linux the kernel kills the worker when its parent dies
    (prctl PR_SET_PDEATHSIG); elsewhere a daemon thread polls for the parent.
    """
    parent_now = os.getppid()
    if _kill_with_parent():
        if _gone(parent_pid, parent_now):  # died before the request took effect
            os._exit(1)
        return
    threading.Thread(target=_watch, args=(parent_pid, parent_now), daemon=True).start()


def _kill_with_parent() -> bool:
    """Ask the kernel for SIGKILL when the parent dies; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _gone(parent_pid: int, parent_at_start: int) -> bool:
    """True once this process was re-parented or `parent_pid` no longer exists."""
    if os.getppid() != parent_at_start:
        return True
    if sys.platform == "win32":  # os.kill would terminate the process there
        return False
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by someone else
        return False
    return False


def _watch(parent_pid: int, parent_at_start: int) -> None:
    while not _gone(parent_pid, parent_at_start):
        time.sleep(_POLL_SECONDS)
    os._exit(1)


def process_pool(
    workers: int, initializer: Callable[[], None] | None = None
) -> ProcessPoolExecutor:
    """A pool of `workers` processes that end with this one, each running the module-level
    `initializer` (if any) first.

    The workers are fresh interpreters (`spawn`), not forks: a fork of a process whose other
    threads (PyTorch's, OpenCV's, tqdm's) hold a lock inherits that lock held and can hang.
    So the main module must guard its entry point with `if __name__ == "__main__":`.
    """
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(), initializer),
    )


def _start_worker(parent_pid: int, initializer: Callable[[], None] | None) -> None:
    exit_with_parent(parent_pid)
    if initializer is not None:
        initializer()
