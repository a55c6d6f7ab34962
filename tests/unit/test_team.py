"""Where a query's kernels run: the team thread with every core, or the caller's thread with one."""

from __future__ import annotations

import threading

import pytest
import torch

from layerwise import cores
from layerwise.indexer import team


def _where() -> tuple[str, int]:
    return threading.current_thread().name, torch.get_num_threads()


def _threads_of_a_new_thread() -> int:
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


def test_outside_a_search_torch_is_left_alone():
    assert team.run(None, _where) == (threading.current_thread().name, torch.get_num_threads())


def test_one_core_keeps_the_kernels_in_the_calling_thread_and_restores_its_count():
    before = torch.get_num_threads()
    name, threads = team.run(1, _where)
    assert name == threading.current_thread().name and threads == 1
    assert torch.get_num_threads() == before


def test_more_cores_leave_torch_alone_until_a_server_takes_over(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(team, "_taken_over", False)
    assert team.run(2, _where) == (threading.current_thread().name, torch.get_num_threads())


def test_more_cores_run_in_the_team_thread_and_leave_the_default_for_new_threads(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(team, "_taken_over", False)
    team.take_over()
    team.run(4, _where)  # whatever count the team thread had from earlier tests
    torch.set_num_threads(1)  # the default changes after the team thread started (a server's create_app)
    default = _threads_of_a_new_thread()
    name, threads = team.run(2, _where)
    assert name.startswith("layerwise-kernels") and threads == 2
    assert team.run(3, _where) == (name, 3)  # always the same thread (one team in the process), with the share asked
    assert _threads_of_a_new_thread() == default == 1  # the team's count did not become torch's default
