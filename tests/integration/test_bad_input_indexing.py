"""Bad input to `layerwise index` (issue 13): one clear line, exit code 2, and nothing stored.

Inputs that can still be indexed (a FIFO among files, a document without text)
are indexed with a skip or a warning that names them; a FIFO never blocks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layerwise.cli import app
from layerwise.storage.collection import Store

runner = CliRunner()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Photosynthesis turns light into chemical energy.")
    (folder / "b.txt").write_text("Log rotation keeps disks from filling up.")
    return folder


def _index(home: Path, *args: str):  # noqa: ANN202
    return runner.invoke(app, ["index", *args, "--home", str(home)])


def _nothing_stored(home: Path) -> bool:
    return not (home / "layerwise.db").exists() or Store(home=home).names() == []


@pytest.mark.parametrize(
    "option,message",
    [
        (["--batch-docs", "0"], "--batch-docs 0 must be at least 1"),
        (["--batch-docs", "-3"], "--batch-docs -3 must be at least 1"),
        (["--max-tokens", "0"], "--max-tokens 0"),
        (["--max-tokens", "100000"], "--max-tokens 100000"),
        (["--max-tokens", "3"], "--max-tokens 3"),
        (["--max-tokens", "40"], "--max-tokens 40"),
    ],
)
def test_bad_options_are_usage_errors_and_store_nothing(tmp_path, docs, option, message):
    home = tmp_path / "home"
    result = _index(home, str(docs), "-c", "k", *option)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert _nothing_stored(home)


@pytest.mark.parametrize(
    "value,valid",
    [
        ("100000", "..256"),  # above the model's limit
        ("0", "1 up to the model's limit (256"),  # not a length at all
        ("3", "68..256"),  # above the encoder's floor (3), below what the default --overlap 32 needs
        ("10", "68..256"),
        ("40", "68..256"),  # too short for the default --overlap 32: 2 special + 2 x 33
    ],
)
def test_max_tokens_errors_name_the_valid_range(tmp_path, docs, value, valid):
    result = _index(tmp_path / "home", str(docs), "-c", "k", "--max-tokens", value)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --max-tokens {value} ") and valid in result.stderr, result.stderr


def test_collection_name_with_trailing_newline_is_refused(tmp_path, docs):
    home = tmp_path / "home"
    result = _index(home, str(docs), "-c", "k\n")
    assert result.exit_code == 2, result.output
    assert "collection name" in result.stderr and "invalid" in result.stderr
    assert _nothing_stored(home)


def test_fifo_input_is_skipped_with_its_name_and_does_not_hang(tmp_path, docs):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    home = tmp_path / "home"
    command = [sys.executable, "-m", "layerwise", "index", str(fifo), str(docs), "-c", "k", "--home", str(home), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)  # blocked forever before the fix
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["added"] == 2
    assert any(str(fifo) in line and "not a regular file" in line for line in summary["skipped"]), summary


def test_fifo_inside_a_folder_is_skipped_too(tmp_path, docs):
    os.mkfifo(docs / "pipe.md")
    home = tmp_path / "home"
    result = _index(home, str(docs), "-c", "k")
    assert result.exit_code == 0, result.output
    assert "pipe.md" in result.stdout and "not a regular file" in result.stdout


def test_document_without_text_is_indexed_from_its_title_with_a_warning(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        json.dumps({"_id": "t1", "title": "Only a title here"}) + "\n"
        + json.dumps({"_id": "t2", "title": "Both", "text": "and a body"}) + "\n"
    )
    home = tmp_path / "home"
    result = _index(home, str(corpus), "-c", "k")
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "'t1'" in result.stderr and "title alone" in result.stderr
    assert "'t2'" not in result.stderr
    assert Store(home=home).open("k").counts()["documents"] == 2
