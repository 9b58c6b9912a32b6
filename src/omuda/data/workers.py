"""Worker processes that end with their parent: `kill -9` of a run leaves no orphan.

A process pool's or data loader's workers wait on a queue that their siblings keep open, so
they do not notice when the parent dies; busy ones finish their item first. Each worker
therefore calls `exit_with_parent` when it starts.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

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
