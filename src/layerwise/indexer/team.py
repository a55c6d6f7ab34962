"""Where a query's torch kernels run: on every core through one thread, or single-threaded in the caller's.

A search granted more than one core (``layerwise.cores``) hands its encoder pass to
the one thread of this process that owns a team of kernel threads, one per core. A
team belongs to the thread that first runs a parallel kernel (OpenMP's), and keeps
its threads for as long as that thread lives. With eight live server threads each
owning a team of two, a lone 2-thread query pass on a 2-core machine took 10.4 ms
against 4.5 ms with one team: the runtime, managing more threads than cores, stops
spinning between kernels and wakes its threads each time. So only this thread ever
runs more than one kernel thread; every other search keeps its kernels to one. A
server opts in (``take_over``); elsewhere the caller's threads keep torch's count.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TypeVar

import torch

from layerwise import cores

T = TypeVar("T")
_taken_over = False


def _own(count: int) -> None:
    """Give the calling (team) thread ``count`` kernel threads, leaving torch's process-wide default as it was."""
    default = _in_a_new_thread(torch.get_num_threads)  # a new thread starts from the default: this one may not
    torch.set_num_threads(count)  # this thread's count, and (a side effect) torch's default for new threads
    _in_a_new_thread(lambda: torch.set_num_threads(default))  # the default back, this thread's count untouched


def _in_a_new_thread(work: Callable[[], T]) -> T:
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(work()), name="layerwise-threads-default")
    thread.start()
    thread.join()
    return out[0]


def _with_threads(count: int, work: Callable[..., T], *args: object) -> T:
    """In the team thread: ``work(*args)`` on ``count`` kernel threads (a share can be less than every core)."""
    if torch.get_num_threads() != count:
        _own(count)
    return work(*args)


@cache
def _team() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="layerwise-kernels", initializer=lambda: _own(cores.available()))


os.register_at_fork(after_in_child=_team.cache_clear)  # a forked child has none of its parent's threads


def take_over() -> None:
    """Make the team thread the one way a search uses more than one core (a server, whose other threads all run
    single-threaded kernels). Without it a search granted several cores runs in its own thread with torch's
    own count: in a script whose main thread already owns a team, a second team stalled both (a 1 M-passage
    search of one view: 20 ms against 15)."""
    global _taken_over
    _taken_over = True


def run(granted: int | None, work: Callable[..., T], *args: object) -> T:
    """``work(*args)`` with the kernel threads a search was granted: None (outside a search) leaves torch as it
    is; one keeps the kernels to the calling thread; more hands the work to the thread that owns every core,
    or, unless ``take_over`` was called, leaves torch as it is."""
    if granted is None or (granted > 1 and not _taken_over):
        return work(*args)
    if granted > 1:
        return _team().submit(_with_threads, granted, work, *args).result()
    previous = torch.get_num_threads()
    if previous != 1:
        torch.set_num_threads(1)
    try:
        return work(*args)
    finally:
        if previous != 1:
            torch.set_num_threads(previous)
