"""Crash safety: an index run killed with SIGKILL at random moments, then resumed, equals a clean run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from layerwise.cli import app
from layerwise.search.searcher import Searcher
from layerwise.api import Library
from layerwise.storage import check as checking
from layerwise.storage.collection import Store

TOPICS = ["volcanoes", "databases", "bread", "orbits", "violins", "tides", "compilers", "forests", "markets", "glaciers"]


def _corpus(path: Path, n: int = 400) -> Path:
    rng = random.Random(0)
    with open(path, "w") as f:
        for i in range(n):
            words = " ".join(rng.choice(TOPICS) + f" fact{rng.randint(0, 999)}" for _ in range(45))
            f.write(json.dumps({"_id": f"doc{i}", "title": f"Note {i} on {TOPICS[i % 10]}", "text": words}) + "\n")
    return path


def _index_cmd(corpus: Path, home: Path) -> list[str]:
    return [sys.executable, "-m", "layerwise", "index", str(corpus), "-c", "c", "--home", str(home), "--batch-docs", "8", "--json"]


def _snapshot(home: Path) -> dict:
    collection = Store(home=home).open("c")
    rows, _, _ = collection.passage_table
    info = collection.passages(rows.tolist())
    key = {r: (info[r].doc_id, info[r].char_start) for r in rows.tolist()}
    order = sorted(rows.tolist(), key=lambda r: key[r])
    vectors = [np.asarray(collection.layer_vectors(i))[order] for i in range(collection.num_states)]
    searcher = Searcher(collection, Library(home=home, device="cpu").encoder_for)
    hits = {q: {v: [h.doc_id for h in hs] for v, hs in searcher.search(q, ["all"], 5).results.items()} for q in TOPICS[:3]}
    return {"keys": [key[r] for r in order], "texts": [info[r].text for r in order], "vectors": vectors, "hits": hits,
            "check": checking.check(collection).problems}


def _rows_written(home: Path) -> int:
    files = list(home.glob("collections/*/vectors/layer0.float32"))
    return files[0].stat().st_size // (384 * 4) if files else 0


def _kill_mid_run(cmd: list[str], home: Path, env: dict, rng: random.Random) -> bool:
    """Start an index run and SIGKILL it once it has written 8-80 more rows (plus a random delay)."""
    start = _rows_written(home)
    target = start + rng.randint(1, 10) * 8
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and _rows_written(home) < target:
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.3))  # land anywhere: mid-encode, between vector and row commits, mid-rebuild
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return killed


def test_sigkill_at_random_moments_then_resume_equals_clean_run(tmp_path):
    corpus = _corpus(tmp_path / "corpus.jsonl", n=600)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    subprocess.run(_index_cmd(corpus, clean), check=True, env=env, capture_output=True)
    rng = random.Random(1)
    kills = sum(_kill_mid_run(_index_cmd(corpus, crashed), crashed, env, rng) for _ in range(5))
    assert kills == 5, "every kill should land while the run is still going"
    final = subprocess.run(_index_cmd(corpus, crashed), check=True, env=env, capture_output=True, text=True)
    assert json.loads(final.stdout)["unchanged"] > 0, "the resumed run reuses committed batches"
    a, b = _snapshot(clean), _snapshot(crashed)
    assert a["keys"] == b["keys"] and a["texts"] == b["texts"]
    for x, y in zip(a["vectors"], b["vectors"]):
        np.testing.assert_allclose(x, y, atol=1e-5)
    assert a["hits"] == b["hits"]
    assert a["check"] == b["check"] == []


def test_second_writer_is_refused_while_readers_go_on(tmp_path):
    from layerwise.errors import CollectionLocked

    runner = CliRunner()
    docs = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
    assert runner.invoke(app, ["index", str(docs), "-c", "c", "--home", str(tmp_path)]).exit_code == 0
    collection = Store(home=tmp_path).open("c")
    with collection.writing():
        with pytest.raises(CollectionLocked, match="being written by process"):
            collection.writing().__enter__()
        result = runner.invoke(app, ["delete", "c", "ops/cron.md", "--home", str(tmp_path)])
        assert result.exit_code == 1 and "being written" in result.stderr
        assert runner.invoke(app, ["search", "c", "cron", "--home", str(tmp_path), "--json"]).exit_code == 0


def test_corrupt_index_names_the_repair_and_repair_fixes_it(tmp_path):
    runner = CliRunner()
    docs = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
    runner.invoke(app, ["index", str(docs), "-c", "c", "--home", str(tmp_path), "--index", "hnsw"])  # flat views have no file
    collection = Store(home=tmp_path).open("c")
    path = collection.index_path("layer6")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = runner.invoke(app, ["search", "c", "bread", "--home", str(tmp_path)])
    assert result.exit_code == 1 and "layerwise check c --repair" in result.stderr and "Traceback" not in result.output
    assert runner.invoke(app, ["check", "c", "--home", str(tmp_path)]).exit_code == 1
    assert runner.invoke(app, ["check", "c", "--repair", "--home", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["search", "c", "bread", "--home", str(tmp_path)]).exit_code == 0


def test_lost_vector_rows_are_re_encoded_from_the_stored_passages(tmp_path):
    runner = CliRunner()
    docs = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
    runner.invoke(app, ["index", str(docs), "-c", "c", "--home", str(tmp_path)])
    collection = Store(home=tmp_path).open("c")
    file = collection.vector_file(2)
    before = np.array(collection.layer_vectors(2))
    with open(file.path, "r+b") as f:
        f.truncate(30 * file.row_bytes)
    report = checking.check(collection)
    assert any("holds 30 rows, 38 committed" in p for p in report.problems)
    repaired = Library(home=tmp_path, device="cpu").open("c").check(repair=True)
    assert repaired.ok and "re-encoded 38 passages" in repaired.repaired[0]
    np.testing.assert_allclose(collection.layer_vectors(2), before, atol=1e-5)
    again = runner.invoke(app, ["index", str(docs), "-c", "c", "--home", str(tmp_path), "--json"])
    assert json.loads(again.stdout)["unchanged"] == 38


def test_disk_full_mid_batch_leaves_the_collection_consistent(tmp_path, monkeypatch):
    import errno

    from layerwise.storage.vectors import VectorFile

    runner = CliRunner()
    docs = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
    original = VectorFile.append
    calls = {"n": 0}

    def failing(self, vectors):
        calls["n"] += 1
        if calls["n"] == 9 + 4:  # second batch (7 layers + rows + norms files each), fourth layer: the disk fills
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return original(self, vectors)

    monkeypatch.setattr(VectorFile, "append", failing)
    result = runner.invoke(app, ["index", str(docs), "-c", "c", "--home", str(tmp_path), "--batch-docs", "10"])
    assert result.exit_code == 1 and "the disk is full" in result.stderr and "Traceback" not in result.output
    collection = Store(home=tmp_path).open("c")
    assert collection.counts()["documents"] == 10 and collection.vector_file(0).rows_on_disk() == 20
    monkeypatch.setattr(VectorFile, "append", original)
    again = runner.invoke(app, ["index", str(docs), "-c", "c", "--home", str(tmp_path), "--json"])
    assert json.loads(again.stdout)["added"] == 28
    assert checking.check(Store(home=tmp_path).open("c")).ok


def test_read_only_database_is_a_clear_error(tmp_path):
    runner = CliRunner()
    docs = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
    runner.invoke(app, ["index", str(docs / "ops"), "-c", "c", "--home", str(tmp_path)])
    url = f"sqlite:///file:{tmp_path / 'layerwise.db'}?mode=ro&uri=true"
    result = runner.invoke(app, ["index", str(docs), "-c", "c", "--home", str(tmp_path), "--db", url])
    assert result.exit_code == 1 and "readonly" in result.stderr.replace("-", "") and "Traceback" not in result.output
    assert Store(home=tmp_path).open("c").counts()["documents"] == 6


def test_sync_removes_vanished_documents_from_every_view(tmp_path):
    import shutil

    runner = CliRunner()
    docs = tmp_path / "docs"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs", docs)
    home = str(tmp_path / "home")
    runner.invoke(app, ["index", str(docs), "-c", "c", "--home", home])
    runner.invoke(app, ["mix", "c", "m", "mean(-2:)", "--home", home])
    (docs / "ops" / "cron.md").unlink()
    (docs / "ops" / "backups.md").write_text("# Backups\n\nNow about tape drives only.")
    result = json.loads(runner.invoke(app, ["index", str(docs), "-c", "c", "--home", home, "--sync", "--json"]).stdout)
    assert (result["removed"], result["updated"], result["unchanged"]) == (1, 1, 36)
    report = json.loads(runner.invoke(app, ["check", "c", "--home", home, "--json"]).stdout)
    assert report["ok"] and all(v["ntotal"] == 37 for v in report["views"]) and len(report["views"]) == 8


def test_ann_index_types_and_recall_check(tmp_path):
    runner = CliRunner()
    docs = Path(__file__).resolve().parents[2] / "examples" / "sample" / "docs"
    runner.invoke(app, ["index", str(docs), "-c", "c", "--home", str(tmp_path), "--index", "hnsw"])
    report = json.loads(runner.invoke(app, ["check", "c", "--recall", "--home", str(tmp_path), "--json"]).stdout)
    assert {v["kind"] for v in report["views"]} == {"hnsw"} and all(v["recall_at_10"] >= 0.9 for v in report["views"])
    bad = runner.invoke(app, ["index", str(docs), "-c", "c", "--home", str(tmp_path), "--index", "lsh"])
    assert bad.exit_code == 2 and "'lsh' is not one of" in bad.stderr


def test_database_from_another_schema_version_is_refused(tmp_path):
    import sqlite3

    from layerwise.errors import StorageError

    Store(home=tmp_path)
    with sqlite3.connect(tmp_path / "layerwise.db") as db:
        db.execute("UPDATE layerwise_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StorageError, match="schema version 99, this layerwise reads up to 3"):
        Store(home=tmp_path)


def _compact_fixture(home: Path) -> tuple[np.ndarray, list]:
    """A collection of 3,000 random-vector documents (no encoder), every third deleted, IVF views."""
    from layerwise.storage.views import update_all
    from layerwise.types import Document, ModelIdentity, Passage

    identity = ModelIdentity("fake", "abc", "tok", "mean", 16, 3, 32)
    col = Store(home=home).create("c", identity)
    col.set_index_type("ivf")
    rng = np.random.default_rng(0)
    for start in range(0, 3000, 500):
        docs = [Document(f"d{i}", "", f"note {i} on {TOPICS[i % 10]}") for i in range(start, start + 500)]
        col.commit_batch(docs, [[Passage(0, d.text, 0, len(d.text))] for d in docs], rng.normal(size=(500, 3, 32)).astype(np.float32))
    col.delete_documents([f"d{i}" for i in range(0, 3000, 3)])
    update_all(col)
    return rng.normal(size=(5, 32)).astype(np.float32), [TOPICS[1], "note 2999"]


def _results(home: Path, queries: np.ndarray, words: list) -> dict:
    from layerwise.search.ranking import Ranking
    from layerwise.storage.exact import ExactIndex
    from layerwise.storage.views import all_views

    collection = Store(home=home).open("c")
    searcher = Searcher(collection, lambda _: None)
    names = searcher.doc_ids
    out: dict = {}
    for view in all_views(collection):
        scores, rows = ExactIndex(collection, view, searcher.row_map).search(queries, 40)
        ranked = [Ranking.from_passages(r, s, searcher.row_map).top(10) for r, s in zip(rows, scores)]
        out[view.name] = [[(names[d], round(float(s), 5)) for d, s in zip(r.docs.tolist(), r.scores.tolist())] for r in ranked]
    bm25 = searcher.rank_bm25(words, 10)
    out["bm25"] = [[names[d] for d in r.docs.tolist()] for r in bm25]
    return out


def test_sigkill_during_compact_then_any_writer_recovers_to_the_same_results(tmp_path):
    """Kill `layerwise compact` at random moments after it starts writing; every state searches the same."""
    home = tmp_path / "home"
    queries, words = _compact_fixture(home)
    expected = _results(home, queries, words)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "layerwise", "compact", "c", "--home", str(home), "--json"]
    rng = random.Random(3)
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and not list(home.glob("collections/*/vectors/*.compact")):
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.15))  # land anywhere: writing new files, journal, database, renames, HNSW/IVF update
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        assert _results(home, queries, words) == expected  # a reader between kills sees the same documents
        Store(home=home).open("c").prepare_write()  # any writer's start recovers
        assert _results(home, queries, words) == expected
    assert kills >= 2, "most kills should land while compact is still running"
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    collection = Store(home=home).open("c")
    assert collection.vector_rows() == 2000 and checking.check(collection).ok
    assert _results(home, queries, words) == expected
