"""One training run per work dir: an advisory lock file that names its holder."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from omuda.errors import OmudaError

LOCK_FILE = "train.lock"


@contextlib.contextmanager
def hold_work_dir(work_dir: Path) -> Iterator[None]:
    """Hold `work_dir` for one training run; OmudaError at once when a live run holds it.

    `WORK_DIR/train.lock` is locked with `flock`, which the kernel releases when the holding
    process ends, however it ends: the file a killed run leaves behind binds nobody. While
    held, the file names the holder (pid, host, start time) for the other run's message.
    Where `fcntl` does not exist (Windows) nothing is locked.
    """
    work_dir = Path(work_dir)
    if work_dir.exists() and not work_dir.is_dir():
        raise OmudaError(f"--work-dir {work_dir} exists and is not a folder")
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    descriptor = os.open(work_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip()
            raise OmudaError(
                f"{work_dir} is in use by another training run ({holder or 'starting up'}):"
                " wait for it to end, or choose another --work-dir"
            ) from None
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        holder = f"pid {os.getpid()} on {socket.gethostname()}, since {started}\n"
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, holder.encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock
