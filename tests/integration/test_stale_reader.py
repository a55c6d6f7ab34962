"""After a writer dies between committing rows and rebuilding indices, readers see the stale-index flag:
they search the committed vectors exactly, in memory, and never write an index file."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from layerwise.api import Library
from layerwise.cli import app
from layerwise.storage import faiss_index
from layerwise.storage.collection import Store

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
runner = CliRunner()
NEW = ["Glaciers carve fjords as the ice sheet retreats northward.", "The violin's sound post transmits vibrations."]


class Killed(BaseException):
    """Stands for SIGKILL at the moment after the last batch commits and before indices are rebuilt."""


def index_files(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*.faiss"))}


def hits(home: Path, query: str, view: str) -> dict[str, list[str]]:
    result = runner.invoke(app, ["search", "c", query, "--view", view, "-k", "5", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    return {r["view"]: [h["doc_id"] for h in r["hits"]] for r in json.loads(result.stdout)["results"]}


def test_stale_indices_are_searched_exactly_from_committed_vectors_and_never_written(tmp_path, monkeypatch):
    home = tmp_path / "home"
    kb = Library(home, device="cpu").open("c", create=True)
    kb.index([SAMPLE], index_type="hnsw")  # ANN files (exact views have none: they always search the vector files)
    kb.save_view("m", "mean(-2:)", index_type="hnsw")
    monkeypatch.setattr("layerwise.indexer.pipeline.update_all", lambda *a, **k: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        kb.add(NEW, ids=["new/glacier", "new/violin"])
    collection = Store(home=home).open("c")
    assert collection.indices_stale() and collection.counts()["documents"] == 40
    collection.index_path("layer5").unlink()  # a missing file is searched exactly too, and not written back
    before = index_files(collection.dir)
    stale = {view: hits(home, NEW[0], view) for view in ("all", "m", "mean(-3:)")}
    assert all(found[0] == "new/glacier" for by_view in stale.values() for found in by_view.values())
    assert index_files(collection.dir) == before and not collection.index_path("layer5").exists()
    assert not list(collection.dir.rglob("*.tmp"))
    rebuilt = tmp_path / "rebuilt"  # the same collection with every index rebuilt: identical answers
    shutil.copytree(home, rebuilt)
    assert runner.invoke(app, ["check", "c", "--repair", "--home", str(rebuilt)]).exit_code == 0
    assert {view: hits(rebuilt, NEW[0], view) for view in stale} == stale


def _corpus(path: Path, n: int) -> Path:
    rng = random.Random(0)
    topics = ["volcanoes", "databases", "bread", "orbits", "violins", "tides", "compilers", "forests"]
    with open(path, "w") as f:
        for i in range(n):
            words = " ".join(rng.choice(topics) + f" fact{rng.randint(0, 999)}" for _ in range(40))
            f.write(json.dumps({"_id": f"doc{i}", "title": f"Note {i} on {topics[i % 8]}", "text": words}) + "\n")
    return path


def _kill_after_commits(corpus: Path, home: Path, rows: int) -> None:
    cmd = [sys.executable, "-m", "layerwise", "index", "c", str(corpus), "--home", str(home), "--batch-docs", "8"]
    proc = subprocess.Popen(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        try:
            if Store(home=home).open("c").vector_rows() >= rows:
                break
        except Exception:  # noqa: BLE001 - the collection is not created yet
            pass
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_after_a_real_sigkill_dense_search_answers_from_the_committed_vectors(tmp_path):
    home = tmp_path / "home"
    assert runner.invoke(app, ["index", "c", str(SAMPLE), "--home", str(home)]).exit_code == 0  # indices exist
    _kill_after_commits(_corpus(tmp_path / "corpus.jsonl", 300), home, rows=38 + 24)
    collection = Store(home=home).open("c")
    assert collection.indices_stale()
    before = index_files(collection.dir)
    query = "volcanoes fact12 tides"
    found = hits(home, query, "-1")["layer6"]
    assert index_files(collection.dir) == before
    rows, doc_of, doc_ids = collection.passage_table  # exact: every committed passage, best passage per document
    vectors = faiss_index.normalize(np.asarray(collection.layer_vectors(6))[rows])  # (n, d)
    query_vector = faiss_index.normalize(Library(home, device="cpu").encoder_for(collection.identity).encode([query], [6]).vectors[:, 0])
    scores = vectors @ query_vector[0]  # (n,)
    best = {}
    for score, doc in zip(scores.tolist(), doc_of.tolist()):
        best[doc] = max(best.get(doc, -2.0), score)
    assert found == [doc_ids[d] for d in sorted(best, key=lambda d: -best[d])[:5]]
    assert any(d.startswith("doc") for d in doc_ids)  # the killed run's committed documents are searched
