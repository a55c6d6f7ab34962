"""Whole-document BM25 does not depend on how the encoder split documents; bm25-passages keeps the passage variant."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from layerwise.api import Library
from layerwise.cli import app

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample"
QUERIES = [json.loads(line)["text"] for line in (SAMPLE / "queries.jsonl").read_text().splitlines()]
runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("bm25-home")
    for name, extra in (("whole", []), ("split", ["--max-tokens", "24", "--overlap", "4"])):
        result = runner.invoke(app, ["index", str(SAMPLE / "docs"), "-c", name, *extra, "--home", str(home), "--json"])
        assert result.exit_code == 0, result.output
    return home


def top(home, collection: str, view: str, query: str) -> list[tuple[str, float]]:
    result = runner.invoke(app, ["search", collection, query, "-l", view, "-k", "10", "--json", "--home", str(home)])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["results"][0]["hits"]
    return [(h["doc_id"], round(h["score"], 4)) for h in hits]


def test_document_bm25_is_the_same_however_the_documents_were_split(home):
    info = json.loads(runner.invoke(app, ["info", "split", "--json", "--home", str(home)]).stdout)
    assert info["passages"] > 2 * info["documents"]  # the split collection really is split
    assert "split into passages" in info["scoring"] and "MaxP" in info["scoring"]
    differs = 0
    for query in QUERIES[:12]:
        assert top(home, "whole", "bm25", query) == top(home, "split", "bm25", query)
        differs += top(home, "whole", "bm25-passages", query) != top(home, "split", "bm25-passages", query)
    assert differs > 0  # the passage variant does depend on the split


def test_deleting_a_document_removes_it_from_document_bm25(home):
    assert top(home, "split", "bm25", "logrotate")[0][0] == "ops/log-rotation.md"
    assert runner.invoke(app, ["delete", "split", "ops/log-rotation.md", "--home", str(home)]).exit_code == 0
    assert "ops/log-rotation.md" not in [d for d, _ in top(home, "split", "bm25", "logrotate")]


def test_a_searcher_answers_from_memory_from_its_second_search_as_fts5_does(home):
    base = Library(home=home).open("whole")
    searcher = base.searcher()
    first = searcher.rank_bm25(QUERIES, 10)  # FTS5
    assert searcher._bm25_memory._index is None
    searcher.rank_bm25(QUERIES, 10)  # starts the build in a thread; FTS5 meanwhile
    assert searcher._bm25_memory.wait(timeout=60) is not None
    second = searcher.rank_bm25(QUERIES, 10)  # the in-memory index
    for a, b in zip(first, second, strict=True):
        assert a.docs.tolist() == b.docs.tolist() and a.rows.tolist() == b.rows.tolist()
        np.testing.assert_array_equal(a.scores, b.scores)
    assert sum(len(a.docs) for a in first) > 0
    assert base.delete(["ops/log-rotation.md"]) == 1
    assert searcher.refresh()  # a reader moved on to a new commit drops the copy of the old one
    assert searcher._bm25_memory._index is None
