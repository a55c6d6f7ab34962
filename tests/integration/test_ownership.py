"""Folder ownership: databases sharing one home never delete, reuse or write into each other's collections."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layerwise.cli import app
from layerwise.errors import CollectionNotFound, StorageError
from layerwise.storage import ownership
from layerwise.storage.collection import Store
from tests.integration import postgres

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
runner = CliRunner()


def cli(home: Path, db: str | None, *args: str):
    return runner.invoke(app, [*args, "--home", str(home), *(["--db", db] if db else [])])


def top(home: Path, db: str | None, query: str) -> list[str]:
    result = cli(home, db, "search", "k", query, "--view", "all", "-k", "3", "--json")
    assert result.exit_code == 0, result.output
    return [h["doc_id"] for view in json.loads(result.stdout)["results"] for h in view["hits"]]


def two_stores_share_a_home(home: Path, other_db: str) -> None:
    """The reproduction of issue 13: the first store's 'k' (38 documents) must survive a second store's 'k'."""
    assert cli(home, None, "index", "k", str(SAMPLE)).exit_code == 0
    before = top(home, None, "sourdough bread")
    second = cli(home, other_db, "index", "k", str(SAMPLE / "ops"))
    assert second.exit_code == 0, second.output
    assert "is left untouched and collection 'k' uses its own folder" in second.stderr
    first, other = Store(home=home).open("k"), Store(other_db, home).open("k")
    assert first.dir != other.dir and first.dir.name == f"k-{first.id}"
    assert (first.counts(), other.counts()["documents"]) == ({"documents": 38, "passages": 38, "vector_rows": 38}, 6)
    assert top(home, None, "sourdough bread") == before
    assert set(top(home, other_db, "sourdough bread")) <= {p.name for p in (SAMPLE / "ops").iterdir()}
    for db in (None, other_db):
        assert cli(home, db, "check", "k", "--deep").exit_code == 0
    assert cli(home, other_db, "drop", "k", "-y").exit_code == 0  # dropping the namesake leaves the first alone
    assert not other.dir.exists() and first.dir.exists()
    assert top(home, None, "sourdough bread") == before and cli(home, None, "check", "k", "--deep").exit_code == 0


def test_two_sqlite_databases_with_the_same_collection_name_share_a_home(tmp_path):
    two_stores_share_a_home(tmp_path / "home", f"sqlite:///{tmp_path / 'other.db'}")


def test_sqlite_and_postgresql_with_the_same_collection_name_share_a_home(tmp_path):
    if postgres.binaries() is None:
        pytest.skip("PostgreSQL is not installed (make test installs it)")
    with postgres.server() as url:
        two_stores_share_a_home(tmp_path / "home", url)


def test_a_folder_with_another_stores_marker_is_refused_for_reading_and_writing(tmp_path):
    assert cli(tmp_path, None, "index", "k", str(SAMPLE / "ops")).exit_code == 0
    folder = Store(home=tmp_path).open("k").dir
    ownership.write_marker(folder, "0" * 32, "k", "postgresql://elsewhere/db")
    for args in (["search", "k", "cron"], ["index", "k", str(SAMPLE / "ops")], ["check", "k"]):
        result = cli(tmp_path, None, *args)
        assert result.exit_code == 1 and "belongs to collection 'k' of database postgresql://elsewhere/db" in result.stderr


def test_a_collection_dropped_while_a_writer_waited_leaves_no_orphan_folder(tmp_path):
    store = Store(home=tmp_path)
    assert cli(tmp_path, None, "index", "k", str(SAMPLE / "ops")).exit_code == 0
    stale = store.open("k")  # a writer that opened the collection before the drop
    store.drop("k")
    assert not stale.dir.exists()
    with pytest.raises(CollectionNotFound, match="was dropped"):
        with stale.writing():
            pass
    assert not stale.dir.exists() and list((tmp_path / "collections").iterdir()) == []


def _make_legacy(home: Path) -> Path:
    """Turn a current home into what layerwise wrote at schema version 2: no uid, no marker, no checksums,
    stored views' indices named after the view."""
    collection = Store(home=home).open("k")
    stored = collection.index_path("m")
    stored.rename(collection.dir / "indices" / "m.faiss")
    (collection.dir / ownership.MARKER).unlink()
    db = sqlite3.connect(home / "layerwise.db")
    for statement in ("ALTER TABLE collections DROP COLUMN uid", "ALTER TABLE collections DROP COLUMN folder",
                      "DROP TABLE vector_chunks", "DROP TABLE index_files",
                      "UPDATE layerwise_meta SET value = '2' WHERE key = 'schema_version'"):
        db.execute(statement)
    db.commit()
    db.close()
    return collection.dir


def test_a_collection_from_schema_2_is_read_as_before_and_claimed_at_its_first_write(tmp_path):
    assert cli(tmp_path, None, "index", "k", str(SAMPLE)).exit_code == 0
    assert cli(tmp_path, None, "mix", "k", "m", "mean(-2:)", "--index", "hnsw").exit_code == 0  # an index file to rename
    before = runner.invoke(app, ["search", "k", "bread", "--view", "m", "--home", str(tmp_path), "--json"]).stdout
    folder = _make_legacy(tmp_path)
    assert runner.invoke(app, ["search", "k", "bread", "--view", "m", "--home", str(tmp_path), "--json"]).stdout == before
    assert cli(tmp_path, None, "check", "k", "--deep").exit_code == 0  # found by its old name until a writer moves it
    other = f"sqlite:///{tmp_path / 'other.db'}"  # a new store's namesake never takes the unmarked folder
    assert cli(tmp_path, other, "index", "k", str(SAMPLE / "ops")).exit_code == 0
    assert Store(other, tmp_path).open("k").dir != folder
    assert cli(tmp_path, None, "delete", "k", "ops/cron.md").exit_code == 0  # the first write claims and renames
    legacy = Store(home=tmp_path).open("k")
    assert legacy.uid and ownership.read_marker(folder)["uid"] == legacy.uid
    assert not (folder / "indices" / "m.faiss").exists() and legacy.index_path("m").parent.name == "stored"
    assert cli(tmp_path, None, "check", "k", "--deep").exit_code == 0


def test_drop_never_deletes_a_folder_another_store_owns(tmp_path):
    store = Store(home=tmp_path)
    assert cli(tmp_path, None, "index", "k", str(SAMPLE / "ops")).exit_code == 0
    collection = store.open("k")
    ownership.write_marker(collection.dir, "f" * 32, "k", "sqlite:////elsewhere.db")
    with pytest.raises(StorageError, match="belongs to collection 'k' of database sqlite:////elsewhere.db"):
        store.open("k")
    assert cli(tmp_path, None, "drop", "k", "-y").exit_code == 0  # the rows go; the other store's folder stays
    assert store.names() == [] and (collection.dir / "vectors" / "layer0.float32").exists()
