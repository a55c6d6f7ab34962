"""View names never become paths: the names of issue 13 are refused, index files are named from ids,
and a stored view with a name an older layerwise let through is ignored, reported and removed without
touching the path its name spells."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layerwise.cli import app
from layerwise.storage.collection import Store

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A home inside a folder of its own, with two collections: 's' and 'other'."""
    home = tmp_path_factory.mktemp("views") / "home"
    for name, docs in (("s", SAMPLE), ("other", SAMPLE / "ops")):  # HNSW: index files to name (exact views have none)
        assert runner.invoke(app, ["index", name, str(docs), "--index", "hnsw", "--home", str(home)]).exit_code == 0
    return home


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix not in (".db", ".db-wal", ".db-shm", ".lock")}


@pytest.mark.parametrize("name", ["./layer6", "../../other-2/indices/layer6", "../../../../escaped", "-1", "layer6",
                                  "bm25", "all", "mean", "a/b", "x\n", ".hidden", "Layer3"])
def test_a_view_name_that_could_read_as_a_path_or_a_layer_is_refused_and_nothing_is_written(home, name):
    before = snapshot(home.parent)
    result = runner.invoke(app, ["mix", "--home", str(home), "s", "--", name, "mean(0:2)"])
    assert result.exit_code == 2, result.output
    assert "view name" in result.stderr and ("is invalid" in result.stderr or "is reserved" in result.stderr)
    assert snapshot(home.parent) == before
    plain = runner.invoke(app, ["search", "s", "bread", "--home", str(home), "--json"])
    assert json.loads(plain.stdout)["results"][0]["view"] == "layer6"  # nothing took over plain search


def test_stored_view_indices_are_named_by_row_id(home):
    assert runner.invoke(app, ["mix", "s", "m.v-1", "mean(-2:)", "--index", "hnsw", "--home", str(home)]).exit_code == 0
    collection = Store(home=home).open("s")
    path = collection.index_path("m.v-1")
    assert path.parent == collection.dir / "indices" / "stored" and path.stem.isdigit() and path.is_file()
    assert not any("m.v-1" in p.name for p in collection.dir.rglob("*"))
    replaced = runner.invoke(app, ["mix", "s", "m.v-1", "mean(-3:)", "--index", "hnsw", "--home", str(home)])
    assert replaced.exit_code == 0
    assert sorted(p.name for p in (collection.dir / "indices" / "stored").iterdir()) == [collection.index_path("m.v-1").name]
    assert runner.invoke(app, ["check", "s", "--deep", "--home", str(home)]).exit_code == 0


def test_a_stored_view_with_a_refused_name_from_an_older_layerwise_is_ignored_reported_and_removed(home):
    """Such a row must not take over search, and its name must never be turned into a path (here it spells the
    other collection's layer-6 index, which must survive check --repair byte for byte)."""
    collection, other = Store(home=home).open("s"), Store(home=home).open("other")
    spelt = f"../../{other.dir.name}/indices/layer6"
    with sqlite3.connect(home / "layerwise.db") as db:
        for name in ("-1", spelt):
            db.execute("INSERT INTO views (collection_id, name, spec, index_type, created_at) VALUES (?, ?, 'mean(0:2)', 'flat', "
                       "'2024-01-01 00:00:00.000000')", (collection.id, name))
    victim = other.index_path("layer6").read_bytes()
    plain = runner.invoke(app, ["search", "s", "bread", "--home", str(home), "--json"])
    assert json.loads(plain.stdout)["results"][0]["view"] == "layer6"
    report = runner.invoke(app, ["check", "s", "--home", str(home)])
    assert report.exit_code == 1 and "stored view '-1' has a name that is no longer allowed" in report.stdout
    repaired = runner.invoke(app, ["check", "s", "--repair", "--home", str(home)])
    assert repaired.exit_code == 0 and "removed stored views whose names are no longer allowed" in repaired.stdout
    assert other.index_path("layer6").read_bytes() == victim
    assert [v.name for v in Store(home=home).open("s").stored_views(valid=False)] == []
    assert runner.invoke(app, ["check", "other", "--deep", "--home", str(home)]).exit_code == 0
