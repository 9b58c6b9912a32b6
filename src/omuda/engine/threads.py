"""How many CPU threads a run uses: shared fairly between the omuda runs on one machine.

OpenMP threads spin while they wait for each other. When two trainings with two threads
each share two cores, every thread keeps waiting for one that is descheduled and each run
becomes ~50x slower (docs/PERFORMANCE.md). So each run advertises itself in a per-user
folder (a file it holds an exclusive `flock` on for its whole life) and takes
`cpus // live_runs` threads; it counts again every few seconds and follows when runs
start or finish. A run killed with `kill -9` releases its lock with the process, so a
stale file never counts.

What wins, in order: `OMP_NUM_THREADS` in the environment (the user's explicit choice),
then `train.threads` as an upper bound, then the fair share of the CPUs this process may
use (its affinity mask, e.g. under `taskset` or a container's cpuset).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

REFRESH_SECONDS = 5.0


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API on this platform
        return max(1, os.cpu_count() or 1)


def default_registry_folder() -> Path:
    """`$OMUDA_RUNS_DIR`, else a per-user folder in the system's temporary directory."""
    override = os.environ.get("OMUDA_RUNS_DIR")
    if override:
        return Path(override)
    return Path(tempfile.gettempdir()) / f"omuda-runs-{os.getuid()}"


@dataclass(frozen=True)
class ThreadDecision:
    """A thread count and the one-line reason printed in the run's log."""

    threads: int
    reason: str


def decide_threads(
    cpus: int, live_runs: int, configured: int, environment: Mapping[str, str]
) -> ThreadDecision:
    """The thread count for one run.

    cpus: CPUs this process may use; live_runs: omuda runs sharing them (this one
    included); configured: `train.threads` (0 = no limit); environment: `os.environ`.
    """
    user_threads = environment.get("OMP_NUM_THREADS", "").strip()
    if user_threads.isdigit() and int(user_threads) > 0:
        return ThreadDecision(
            int(user_threads), f"OMP_NUM_THREADS={user_threads} is set in the environment"
        )
    share = max(1, cpus // max(1, live_runs))
    runs = "this run alone" if live_runs <= 1 else f"{live_runs} omuda runs"
    reason = f"{cpus} CPUs for {runs}: {share} each"
    if 0 < configured < share:
        return ThreadDecision(configured, f"{reason}, capped by train.threads={configured}")
    return ThreadDecision(share, reason)


class RunRegistry:
    """This process's entry in the shared folder of live runs (a held `flock`)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or default_registry_folder()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.run"
        self._handle = open(self.path, "w")  # noqa: SIM115 - held for the run's life
        fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def live_runs(self) -> int:
        """Runs whose lock is held (this one included); stale entries are removed."""
        live = 0
        for entry in self.folder.glob("*.run"):
            if entry == self.path:
                live += 1
                continue
            try:
                with open(entry, "a") as handle:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    entry.unlink(missing_ok=True)  # its process is gone
            except BlockingIOError:
                live += 1
            except OSError:  # vanished or unreadable in the meantime: not ours to count
                continue
        return live

    def close(self) -> None:
        """Leave the registry (the lock also goes with the process on any exit)."""
        if self._handle.closed:
            return
        self.path.unlink(missing_ok=True)
        self._handle.close()


class ThreadBalancer:
    """Keeps torch's thread count at this run's fair share while it runs.

    `refresh()` is cheap to call every iteration: it recounts the live runs at most every
    `REFRESH_SECONDS` and returns a message when the count of threads changed. Fewer
    threads take effect at once (too many is what collapses); more threads only once two
    counts in a row allow them, so short runs coming and going do not make it flap.
    """

    def __init__(
        self,
        configured: int,
        registry: RunRegistry | None,
        environment: Mapping[str, str] | None = None,
        set_threads: Callable[[int], None] = torch.set_num_threads,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.configured = configured
        self.registry = registry
        self.environment = os.environ if environment is None else environment
        self.set_threads = set_threads
        self.clock = clock
        self.cpus = available_cpus()
        self.decision = self._decide()
        self.set_threads(self.decision.threads)
        self._checked = self.clock()
        self._more_allowed = False  # the previous count already allowed more threads

    def _decide(self) -> ThreadDecision:
        live = self.registry.live_runs() if self.registry is not None else 1
        return decide_threads(self.cpus, live, self.configured, self.environment)

    def refresh(self) -> str | None:
        """Recount (at most every few seconds); a log line when the thread count changed."""
        now = self.clock()
        if now - self._checked < REFRESH_SECONDS:
            return None
        self._checked = now
        decision = self._decide()
        more = decision.threads > self.decision.threads
        if decision.threads == self.decision.threads or (more and not self._more_allowed):
            self._more_allowed = more
            if not more:
                self.decision = decision
            return None
        self._more_allowed = False
        before, self.decision = self.decision.threads, decision
        self.set_threads(decision.threads)
        return f"threads {before} -> {decision.threads} ({decision.reason})"

    def close(self) -> None:
        """Leave the registry."""
        if self.registry is not None:
            self.registry.close()


@contextlib.contextmanager
def balanced_threads(configured: int, on_cpu: bool = True) -> Iterator[ThreadBalancer | None]:
    """A `ThreadBalancer` for a CPU run, registered for the block's duration.

    None on a GPU run (torch's CPU threads only feed the device there; `train.threads`, when
    set, still applies). Without a writable registry folder the run counts itself alone.
    """
    if not on_cpu:
        if configured > 0:
            torch.set_num_threads(configured)
        yield None
        return
    try:
        registry: RunRegistry | None = RunRegistry()
    except OSError:
        registry = None
    balancer = ThreadBalancer(configured, registry)
    try:
        yield balancer
    finally:
        balancer.close()
