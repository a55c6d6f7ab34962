"""The CPU cores a search may use: every idle core while it runs alone, one as soon as anything else runs.

A query's encoder pass is a few dozen small matrix products: 6-8 ms on one core of
a 2-core Xeon, 4.5-5.5 ms on two. But a team of kernel threads is only fast while
every member has a core of its own. A member that waits for one holds up each product
it joins: on that machine, with one core kept busy by another process, searches with
two threads took 16 ms at the median and 164 ms at p99, against 8 and 13 ms with one.

So a search asks here for its share as it starts (``searching``). The share is the
cores that other processes left idle over the last tenth of a second (Linux's
``/proc/stat`` less this process's own CPU time; before that, the tasks running at
that moment, from ``/proc/loadavg``), divided among the requests this
process has in flight (``working``, which the server wraps around every request: a
request busy in the event loop, not yet searching, needs a core too). Where the load
cannot be read, the other cores count as busy. The encoder reads the share of its
search (``granted``); outside a search nothing is set and torch keeps its own count.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from pathlib import Path

INTERVAL = 0.1  # seconds between two readings of the machine's load
SPIN = "5000"  # GOMP_SPINCOUNT of a server (spin_briefly)
BUSY = 0.5  # cores of other work that count as one core taken

_STAT = Path("/proc/stat")
_LOADAVG = Path("/proc/loadavg")
_counted: ContextVar[bool] = ContextVar("layerwise_core_counted", default=False)
_granted: ContextVar[int | None] = ContextVar("layerwise_cores_granted", default=None)


def available() -> int:
    """Cores this process may run on: its CPU affinity, capped by a container's CPU quota (cgroup v2 or v1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_quota()
    return max(1, min(cores, math.floor(quota))) if quota is not None else cores


@functools.cache  # read once: every search asks
def cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota in cores ('200000 100000' in cpu.max is 2), or None where there is none or it cannot be read."""
    try:
        if (root / "cpu.max").exists():
            quota, period = (root / "cpu.max").read_text().split()[:2]
        else:
            quota, period = ((root / "cpu" / name).read_text().strip() for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us"))
        return None if quota in ("max", "-1") else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def busy_seconds(stat: str) -> float:
    """CPU seconds the whole machine has spent busy since boot, from /proc/stat's first line (steal counts as busy)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in stat.split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def running_now(loadavg: Path) -> float | None:
    """Tasks running on the machine right now other than the caller, from /proc/loadavg's 'running/total'."""
    try:
        return float(max(0, int(loadavg.read_text().split()[3].split("/")[0]) - 1))
    except (OSError, IndexError, ValueError):
        return None


class Load:
    """Cores that other processes kept busy, measured over intervals of at least INTERVAL seconds."""

    def __init__(self, stat: Path = _STAT, loadavg: Path = _LOADAVG) -> None:
        self.stat = stat
        self.loadavg = loadavg
        self._lock = threading.Lock()
        self._last: tuple[float, float, float] | None = None  # (wall, machine busy, this process's CPU) seconds
        self._others: float | None = None  # None: not measured yet

    def others(self) -> float | None:
        """Cores busy with other processes' work over the last measured interval; None where it cannot be read.
        Before the first interval (a one-shot command's only search), the tasks running right now, less the caller:
        a fresh process has no threads of its own at work yet."""
        now = time.monotonic()
        with self._lock:
            if self._last is None or now - self._last[0] >= INTERVAL:
                self._sample(now)
            return self._others if self._others is not None else running_now(self.loadavg)

    def _sample(self, now: float) -> None:
        try:
            sample = (now, busy_seconds(self.stat.read_text()), time.process_time())
        except (OSError, ValueError):
            return
        if self._last is not None:
            wall, machine, own = (a - b for a, b in zip(sample, self._last))
            self._others = max(0.0, machine - own) / wall
        self._last = sample


class Requests:
    """Requests of this process in flight: searches, and whatever a front end counts as work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    @contextmanager
    def working(self) -> Iterator[None]:
        """Count the work of this context (once, however deeply entered) for as long as it runs."""
        if _counted.get():
            yield
            return
        token = _counted.set(True)
        with self._lock:
            self.count += 1
        try:
            yield
        finally:
            with self._lock:
                self.count -= 1
            _counted.reset(token)


LOAD = Load()
REQUESTS = Requests()


def share(cores: int, others: float | None, requests: int) -> int:
    """Cores for one of ``requests`` concurrent requests while other processes keep ``others`` cores busy
    (None: unknown, every other core counts as busy): at least one."""
    if others is None:
        return 1
    taken = math.floor(others + 1 - BUSY)  # BUSY cores of other work take a whole one
    return max(1, (cores - taken) // max(1, requests))


@contextmanager
def searching() -> Iterator[int]:
    """A search in flight: counted as work, and granted its share of the idle cores for as long as it runs."""
    with REQUESTS.working():
        cores = share(available(), LOAD.others(), REQUESTS.count)
        token = _granted.set(cores)
        try:
            yield cores
        finally:
            _granted.reset(token)


def working() -> AbstractContextManager[None]:
    """Count a front end's request as work for as long as it runs (the server wraps every request)."""
    return REQUESTS.working()


def spin_briefly() -> None:
    """Before torch loads (a server): let the team's idle kernel threads spin SPIN pauses, a fraction of a
    millisecond, before they sleep. OpenMP's default of 300,000 kept the second core busy for many milliseconds
    after each query, where the event loop and the client wanted it: through the server on a 2-core machine, p99
    of one view was 23-28 ms with the default and 14 ms with 5,000, at the same p50 (8.1-8.9 ms)."""
    os.environ.setdefault("GOMP_SPINCOUNT", SPIN)


def granted() -> int | None:
    """The cores granted to the calling context's search; None outside a search."""
    return _granted.get()
