"""One BLAS thread for the small matrix products of a single query.

A query's products are tiny (a few tokens by 384, or a few hundred candidate rows by
384): OpenBLAS's thread pool costs more than it saves there, and on a loaded machine
its spinning threads made the light query encoder 2-20x slower (13 ms with one thread,
31-284 ms with two, measured under load 5 on 2 cores). ``one_thread()`` limits numpy's
BLAS to one thread for the duration of a ``with`` block; its controller is made on
first use (it enumerates the loaded libraries once, ~20 ms), never at import.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import cache
from typing import Any


@cache
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController  # lazily: a third-party module off the start-up path
    except ImportError:  # not installed: BLAS keeps its own thread count
        return None
    return ThreadpoolController()


def one_thread() -> AbstractContextManager[Any]:
    """A context in which numpy's BLAS runs on one thread (a no-op without threadpoolctl)."""
    controller = _controller()
    return controller.limit(limits=1, user_api="blas") if controller is not None else nullcontext()
