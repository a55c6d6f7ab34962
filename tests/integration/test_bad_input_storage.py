"""Bad input from issue 13 (the storage side): one clear line, exit code 2 (1 for a damaged or full store),
and nothing stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layerwise.cli import app
from layerwise.storage import integrity
from layerwise.storage.collection import Store

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample"
runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("bad-input")
    assert runner.invoke(app, ["index", "c", str(SAMPLE / "docs"), "--home", str(home)]).exit_code == 0
    return home


def run(home: Path, *args: str):
    return runner.invoke(app, [*args, "--home", str(home)])


def stored(home: Path) -> dict:
    collection = Store(home=home).open("c")
    return {"counts": collection.counts(), "views": [v.name for v in collection.stored_views()],
            "generation": collection.state()[0]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "c", "bread", "-k", "3000000000000000000", "--view", "bm25"], "-k 3000000000000000000 is out of range: ask for 1..1000"),
        (["search", "c", "bread", "-k", "0"], "-k 0 is out of range"),
        (["compare", "c", "bread", "-k", "-5"], "-k -5 is out of range"),
        (["search", "c", "bread", "--view", "wsum(-2:; nan,1)"], "must be finite numbers (no nan or inf)"),
        (["search", "c", "bread", "--view", "wsum(-2:; 1,inf)"], "must be finite numbers (no nan or inf)"),
        (["search", "c", "bread", "--view", "wsum(-2:; 1e999,1)"], "must be finite numbers (no nan or inf)"),
        (["search", "c", "bread", "--view", "fuse(bm25:nan | -1:1)"], "must be finite numbers, not all zero"),
        (["search", "c", "bread", "--view", "fuse(bm25:-inf | -1:1)"], "must be finite numbers, not all zero"),
        (["mix", "c", "w", "wsum(-2:; nan,1)"], "must be finite numbers (no nan or inf)"),
        (["mix", "c", "f", "fuse(bm25:inf | -1:0.5)"], "must be finite numbers, not all zero"),
        (["index", "c", str(SAMPLE / "docs"), "--max-passages", "1"], "cannot change to 1"),
        (["index", "c", str(SAMPLE / "docs"), "--overlap", "8"], "was created with --overlap 32; it cannot change to 8"),
        (["index", "c", str(SAMPLE / "docs"), "--vector-dtype", "float16"], "was created with --vector-dtype float32"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_stores_nothing(home, args, message):
    before = stored(home)
    result = run(home, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output and "internal error" not in result.output
    assert stored(home) == before


def test_a_home_that_is_a_regular_file(tmp_path):
    file = tmp_path / "home"
    file.write_text("not a folder")
    for args in (["list"], ["index", "c", str(SAMPLE / "docs")], ["search", "c", "q"]):
        result = runner.invoke(app, [*args, "--home", str(file)])
        assert result.exit_code == 2 and f"home {file} is a file, not a folder" in result.stderr, result.output
    inside = runner.invoke(app, ["list", "--home", str(file / "sub")])
    assert inside.exit_code == 2 and "part of that path is a file" in inside.stderr
    assert file.read_text() == "not a folder"


@pytest.mark.parametrize(
    ("output", "message"),
    [("{tmp}", "is a folder: give a file name ending in .npz"), ("{tmp}/vectors", "has no known format: end its name in .npz"),
     ("{tmp}/missing/dir/x.npz", "the folder {tmp}/missing/dir of output {tmp}/missing/dir/x.npz does not exist")],
)
def test_embed_checks_its_output_before_loading_a_model(tmp_path, monkeypatch, output, message):
    def no_encoding(*_args, **_kwargs):
        raise AssertionError("the output must be refused before any model is loaded")

    monkeypatch.setattr("layerwise.indexer.encoder.Encoder.__init__", no_encoding)
    result = runner.invoke(app, ["embed", str(SAMPLE / "texts.txt"), "-o", output.format(tmp=tmp_path)])
    assert result.exit_code == 2 and message.format(tmp=tmp_path) in result.stderr, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_truncated_database_says_it_is_damaged_and_what_to_do(tmp_path):
    index = [sys.executable, "-m", "layerwise", "index", "c", str(SAMPLE / "docs" / "ops"), "--home", str(tmp_path)]
    subprocess.run(index, check=True, capture_output=True)  # another process: no connection of this one stays open
    db = tmp_path / "layerwise.db"
    db.write_bytes(db.read_bytes()[:5000])
    for args in (["list"], ["search", "c", "cron"], ["index", "c", str(SAMPLE / "docs" / "ops")], ["check", "c"]):
        result = runner.invoke(app, [*args, "--home", str(tmp_path)])
        assert result.exit_code == 1, result.output
        assert f"the metadata database {db} is damaged" in result.stderr and "restore it from a backup" in result.stderr
        assert "sqlalche.me" not in result.output and "DatabaseError" not in result.output


class _FullDisk(integrity.HashingWriter):
    """Every index write goes through /dev/full first: the kernel's own ENOSPC."""

    def write(self, data: bytes) -> int:
        with open("/dev/full", "wb", buffering=0) as full:
            full.write(data)
        return super().write(data)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_during_repair_mix_or_a_stale_search_is_the_clear_disk_full_message(tmp_path, monkeypatch):
    # HNSW: index files to write (exact views have none)
    assert runner.invoke(app, ["index", "c", str(SAMPLE / "docs"), "--index", "hnsw", "--home", str(tmp_path)]).exit_code == 0
    collection = Store(home=tmp_path).open("c")
    collection.index_path("layer6").unlink()
    monkeypatch.setattr("layerwise.storage.faiss_index.HashingWriter", _FullDisk)
    for args in (["check", "c", "--repair"], ["mix", "c", "m", "mean(-2:)", "--index", "hnsw"]):
        result = run(tmp_path, *args)
        assert result.exit_code == 1 and "the disk is full" in result.stderr, result.output
        assert "RuntimeError" not in result.output and "write_index" not in result.output
    search = run(tmp_path, "search", "c", "bread", "--json")  # a reader writes nothing, so a full disk cannot stop it
    assert search.exit_code == 0 and json.loads(search.stdout)["results"][0]["hits"]
    assert not list(collection.dir.rglob("*.tmp")) and not collection.index_path("layer6").exists()
    monkeypatch.undo()
    assert run(tmp_path, "check", "c", "--repair").exit_code == 0 and run(tmp_path, "check", "c", "--deep").exit_code == 0


def test_document_text_with_ansi_escapes_and_rich_markup_is_shown_inert(tmp_path, monkeypatch):
    docs = tmp_path / "docs.jsonl"
    record = {"_id": "[red]id[/red]", "title": "[bold red]Boom[/bold red]", "text": "\x1b[31mred alert\x1b[0m [link=http://x]click[/link] siren"}
    docs.write_text(json.dumps(record) + "\n")
    assert run(tmp_path, "index", "c", str(docs)).exit_code == 0
    monkeypatch.setenv("COLUMNS", "250")
    for args in (["search", "c", "red alert siren"], ["search", "c", "siren", "--view", "all"], ["compare", "c", "siren", "-k", "1"]):
        result = run(tmp_path, *args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output  # no escape sequence reaches the terminal
        assert "[red]id[/red]" in result.stdout
    table = run(tmp_path, "search", "c", "red alert siren").stdout
    assert "red alert\\x1b[0m" in table and "[bold red]Boom[/bold red]" in table and "[link=http://x]click[/link]" in table
