"""The cores a search is granted: the share arithmetic, the machine's load from /proc/stat, the count of work in flight."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from pathlib import Path

import pytest

from layerwise import cores

STAT = "cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"


@pytest.mark.parametrize(("cores_", "others", "requests", "expected"), [
    (2, 0.0, 1, 2),  # alone on an idle machine: both cores
    (2, 0.3, 1, 2),  # a client's light work leaves the core free
    (2, 0.5, 1, 1),  # half a core of other work takes it
    (2, 0.0, 2, 1),  # two requests in flight: one core each
    (16, 1.2, 3, 5),
    (2, 3.0, 1, 1),  # never below one
    (2, None, 1, 1),  # load unknown: the other cores count as busy
])
def test_share(cores_: int, others: float | None, requests: int, expected: int):
    assert cores.share(cores_, others, requests) == expected


def test_busy_seconds_reads_the_first_line(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cores.os, "sysconf", lambda name: 100)
    assert cores.busy_seconds("cpu  10 20 30 999 5 1 2 3 0 0\n") == pytest.approx((10 + 20 + 30 + 1 + 2 + 3) / 100)


def test_load_is_machine_busy_time_less_this_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    stat = tmp_path / "stat"
    clock = {"wall": 100.0, "own": 5.0}
    monkeypatch.setattr(cores.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(cores.time, "process_time", lambda: clock["own"])
    monkeypatch.setattr(cores.os, "sysconf", lambda name: 100)
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("0.50 0.40 0.30 2/123 4567\n")  # the caller and one other task running
    load = cores.Load(stat, loadavg)
    stat.write_text(STAT.format(busy=1000, idle=0))
    assert load.others() == 1.0  # one reading: no interval yet, so the tasks running right now
    clock.update(wall=100.5, own=5.2)  # this process used 0.2 s of the 0.5 s
    stat.write_text(STAT.format(busy=1000 + 80, idle=20))  # the machine 0.8 s
    assert load.others() == pytest.approx(1.2)  # another process kept 1.2 cores busy
    clock.update(wall=100.55, own=5.9)
    stat.write_text(STAT.format(busy=5000, idle=20))
    assert load.others() == pytest.approx(1.2)  # within INTERVAL: the last figure, not re-read
    assert cores.Load(tmp_path / "missing", tmp_path / "missing").others() is None


def test_work_is_counted_once_per_context_and_searches_see_their_share(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cores, "available", lambda: 2)
    monkeypatch.setattr(cores.LOAD, "others", lambda: 0.0)
    assert cores.granted() is None
    with cores.working():
        assert cores.REQUESTS.count == 1
        with cores.searching() as granted:  # the request's own search: not counted twice
            assert granted == cores.granted() == 2 and cores.REQUESTS.count == 1
        assert cores.granted() is None
    assert cores.REQUESTS.count == 0


def test_a_search_in_a_worker_thread_of_a_counted_request_is_not_counted_again(monkeypatch: pytest.MonkeyPatch):
    """What the server does: the request is counted in the event loop; its endpoint runs in a thread with a copy of
    the context (anyio's to_thread)."""
    monkeypatch.setattr(cores, "available", lambda: 2)
    monkeypatch.setattr(cores.LOAD, "others", lambda: 0.0)
    with cores.working(), ThreadPoolExecutor(1) as pool:
        context = copy_context()
        assert pool.submit(context.run, _granted_in_search).result() == 2


def test_concurrent_searches_share_the_cores(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cores, "available", lambda: 2)
    monkeypatch.setattr(cores.LOAD, "others", lambda: 0.0)
    inside, release = threading.Barrier(3), threading.Event()  # both searches and this thread

    def search() -> int:
        with cores.searching() as granted:
            inside.wait(timeout=10)
            release.wait(timeout=10)
            return granted

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(search) for _ in range(2)]
        inside.wait(timeout=10)
        release.set()
        grants = sorted(f.result() for f in futures)
    assert grants[0] == 1  # the second search to start gets one core (the first may have started alone)
    assert cores.REQUESTS.count == 0


def _granted_in_search() -> int | None:
    with cores.searching():
        assert cores.REQUESTS.count == 1
        return cores.granted()


def test_the_server_sets_the_spin_count_before_torch_loads():
    """spin_briefly only works if torch (libgomp) is not loaded yet when serve() calls it."""
    code = "import sys, layerwise.server.run, layerwise.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


@pytest.mark.parametrize(("files", "expected"), [
    ({"cpu.max": "200000 100000\n"}, 2.0),  # cgroup v2: two cores
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.5),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cgroup_quota(tmp_path: Path, files: dict[str, str], expected: float | None):
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert cores.cgroup_quota(tmp_path) == expected


def test_a_quota_caps_the_cores(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cores, "cgroup_quota", lambda: 1.5)
    assert cores.available() == 1
