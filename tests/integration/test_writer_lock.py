"""Every command that writes takes the collection's single-writer lock: held by another process, each one
fails with the clear CollectionLocked message (exit 1) and changes nothing; searches go on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layerwise.cli import app
from layerwise.storage.collection import Store

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
HOLD = """
import sys, time
from layerwise.storage.collection import Store
with Store(home=sys.argv[1]).open("c").writing():
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("locked")
    for args in (["index", "c", str(SAMPLE)], ["mix", "c", "m", "mean(-2:)"], ["default-view", "c", "m"]):
        assert runner.invoke(app, [*args, "--home", str(home)]).exit_code == 0
    return home


@pytest.fixture
def holder(home: Path) -> Iterator[int]:
    """Another process holding the collection's writer lock; yields its pid."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(home)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc.pid
    proc.kill()
    proc.wait()


def state(home: Path) -> dict:
    collection = Store(home=home).open("c")
    files = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and p.name != "write.lock")
    return {"counts": collection.counts(), "views": [(v.name, v.spec) for v in collection.stored_views()],
            "default": collection.default_view(), "generation": collection.state()[0], "files": files,
            "bytes": {f: (home / f).read_bytes() for f in files if not f.endswith((".db", ".db-wal", ".db-shm"))}}


WRITERS = [
    ["drop", "c", "-y"],
    ["mix", "c", "m2", "mean(-3:)"],
    ["mix", "c", "m", "mean(-4:)"],
    ["mix", "c", "f", "rrf(bm25 | -1)"],
    ["delete", "c", "ops/cron.md"],
    ["check", "c", "--repair"],
    ["default-view", "c", "--", "-2"],
    ["default-view", "c", "--reset"],
    ["index", "c", str(SAMPLE / "ops")],
]


@pytest.mark.parametrize("args", WRITERS, ids=lambda a: " ".join(a[:3]).replace(str(SAMPLE), "DOCS"))
def test_a_writing_command_waits_for_no_one_and_changes_nothing_while_another_process_writes(home, holder, args):
    before = state(home)
    result = runner.invoke(app, [args[0], "--home", str(home), *args[1:]])
    assert result.exit_code == 1, result.output
    assert f"collection 'c' is being written by process {holder}: wait for it to finish" in result.stderr
    assert "Traceback" not in result.output
    assert state(home) == before
    assert sorted(p.name for p in (home / "collections").iterdir()) == [Store(home=home).open("c").dir.name]
    search = runner.invoke(app, ["search", "c", "bread", "--home", str(home), "--json"])
    assert search.exit_code == 0 and json.loads(search.stdout)["results"][0]["view"] == "m"
