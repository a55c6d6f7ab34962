"""The damage matrix: every file kind x (flipped bytes, truncation, appended bytes) is detected by
`check` (or `check --deep`) and either repaired to the clean search results or refused with a clear message.

    file kind         flip (same size)              truncate                   append
    vector file       check --deep -> re-encoded    check -> re-encoded        check -> cut back
    rows file         check -> remade from the db   check -> remade            check -> remade
    norms file        check --deep -> recomputed    check -> recomputed        check -> recomputed
    stored-view index check -> rebuilt              check -> rebuilt           check -> rebuilt
    SQLite database   any command: refused          any command: refused       check: refused (VACUUM fixes)

The layer views are exact (no index file: they search the vector files, the rows file and the
norms file); the stored mix has an HNSW index file.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layerwise.api import Library
from layerwise.cli import app
from layerwise.storage import check as checking
from layerwise.storage import rowmap
from layerwise.storage.collection import Store

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
QUERIES = ["how do I rotate the logs", "sourdough bread", "planet orbits"]
VIEWS = ["all", "m"]
runner = CliRunner()


def results(home: Path) -> dict:
    """Top-5 (document, score) of every query under every layer and the stored mix."""
    kb = Library(home, device="cpu").open("c")
    out = {}
    for query in QUERIES:
        for view, hits in kb.search_views(query, VIEWS, 5).results.items():
            out[(query, view)] = [(h.doc_id, h.score) for h in hits]
    return out


def same_results(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        [d for d, _ in a[k]] == [d for d, _ in b[k]] and all(abs(x - y) < 1e-4 for (_, x), (_, y) in zip(a[k], b[k]))
        for k in a)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict]:
    """A home with the sample indexed as 'c' plus a stored mix 'm', and its search results."""
    home = tmp_path_factory.mktemp("clean")
    kb = Library(home, device="cpu").open("c", create=True)
    kb.index([SAMPLE])
    kb.save_view("m", "mean(-2:)", index_type="hnsw")
    with sqlite3.connect(home / "layerwise.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return home, results(home)


def damage(path: Path, how: str, start: int = 0, end: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    if how == "flip":  # every 7th byte of the region, same size
        for i in range(start, len(data) if end is None else end, 7):
            data[i] ^= 0xFF
    elif how == "truncate":
        data = data[: len(data) // 2]
    else:
        data += b"\x5a" * 100
    path.write_bytes(bytes(data))


def case_home(clean: tuple[Path, dict], tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(clean[0], home)
    return home


def cli(home: Path, *args: str):
    return runner.invoke(app, [*args, "--home", str(home)])


def _target(home: Path, kind: str) -> tuple[Path, int, int | None]:
    collection = Store(home=home).open("c")
    if kind == "vector":
        file = collection.vector_file(3)
        return file.path, 5 * file.row_bytes, 11 * file.row_bytes  # rows 5..10 rot
    if kind in ("rows", "norms"):
        file = rowmap.row_file(collection) if kind == "rows" else rowmap.norm_file(collection)
        return file.path, 5 * file.row_bytes, 11 * file.row_bytes
    return collection.index_path("m"), 0, None


@pytest.mark.parametrize("how", ["flip", "truncate", "append"])
@pytest.mark.parametrize("kind", ["vector", "rows", "norms", "stored-index"])
def test_file_damage_is_detected_and_repaired_to_the_clean_results(clean, tmp_path, kind, how):
    home = case_home(clean, tmp_path)
    path, start, end = _target(home, kind)
    damage(path, how, start, end)
    cheap, deep = cli(home, "check", "c"), cli(home, "check", "c", "--deep")
    assert deep.exit_code == 1 and "--repair" in deep.stdout
    # flipped vector or norm bytes keep every size and every index intact: only rereading every byte (--deep) sees them
    assert cheap.exit_code == (0 if how == "flip" and kind in ("vector", "norms") else 1)
    repaired = cli(home, "check", "c", "--repair")
    assert repaired.exit_code == 0, repaired.output
    if kind == "vector" and how != "append":
        assert "re-encoded 38 passages from their stored text" in repaired.stdout
    assert cli(home, "check", "c", "--deep").exit_code == 0
    assert same_results(results(home), clean[1])


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_damaged_database_is_refused_with_a_clear_message(clean, tmp_path, how):
    home = case_home(clean, tmp_path)
    damage(home / "layerwise.db", how, 4096, 2 * 4096)  # flip: every 7th byte of page 2
    for args in (["check", "c"], ["check", "c", "--repair"], ["search", "c", "bread"], ["list"]):
        result = cli(home, *args)
        assert result.exit_code == 1, (args, result.output)
        assert "the metadata database" in result.stderr and "is damaged" in result.stderr and "restore it from a backup" in result.stderr
        assert "sqlalche.me" not in result.output and "Traceback" not in result.output


def test_bytes_appended_to_the_database_are_found_and_repair_refuses_until_vacuum(clean, tmp_path):
    home = case_home(clean, tmp_path)
    damage(home / "layerwise.db", "append")
    report = cli(home, "check", "c")
    assert report.exit_code == 1 and "100 bytes after its last page" in report.stdout
    refused = cli(home, "check", "c", "--repair")
    assert refused.exit_code == 1 and "VACUUM" in refused.stderr
    db = sqlite3.connect(home / "layerwise.db")
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # VACUUM's pages reach the file (and its end) at a checkpoint
    db.close()
    assert cli(home, "check", "c", "--deep").exit_code == 0
    assert same_results(results(home), clean[1])


def test_a_changed_document_text_in_the_database_is_found_by_the_deep_check(clean, tmp_path):
    home = case_home(clean, tmp_path)
    with sqlite3.connect(home / "layerwise.db") as db:
        db.execute("UPDATE documents SET text = text || ' tampered' WHERE doc_id = 'ops/cron.md'")
    assert cli(home, "check", "c").exit_code == 0
    deep = cli(home, "check", "c", "--deep")
    assert deep.exit_code == 1 and "documents' text differs from its recorded hash" in deep.stdout
    refused = cli(home, "check", "c", "--repair")
    assert refused.exit_code == 1 and "restore it from a backup" in refused.stderr


def test_without_an_encoder_repair_drops_the_damaged_documents_and_never_indexes_their_vectors(clean, tmp_path):
    home = case_home(clean, tmp_path)
    path, start, end = _target(home, "vector")
    damage(path, "flip", start, end)
    collection = Store(home=home).open("c")
    report = checking.repair(collection)  # the storage layer alone cannot encode
    assert report.ok and "removed 38 documents whose vectors were lost or damaged" in report.repaired[0]
    assert collection.counts()["documents"] == 0
    again = cli(home, "index", "c", str(SAMPLE), "--json")
    assert again.exit_code == 0 and '"added": 38' in again.stdout
    assert same_results(results(home), clean[1])


def test_an_index_is_never_built_from_damaged_vectors(clean, tmp_path):
    home = case_home(clean, tmp_path)
    path, start, end = _target(home, "vector")
    damage(path, "flip", start, end)
    mixed = cli(home, "mix", "c", "m2", "mean(2:5)")
    assert mixed.exit_code == 1 and "vector rows 0..37 of layer 3 fail their checksum" in mixed.stderr
    assert "--repair" in mixed.stderr
    # a delete only marks rows dead and removes ids in place: it puts no vector into any index, so it goes through
    deleted = cli(home, "delete", "c", "ops/cron.md")
    assert deleted.exit_code == 0, deleted.output
    rebuilt = cli(home, "index", "c", str(SAMPLE), "--index", "hnsw")  # a new index type builds every layer: refused
    assert rebuilt.exit_code == 1 and "fail their checksum" in rebuilt.stderr and "--repair" in rebuilt.stderr
