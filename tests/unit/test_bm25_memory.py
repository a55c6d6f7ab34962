"""The in-memory whole-document BM25 index ranks exactly as SQLite FTS5's bm25() does."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from layerwise.search.searcher import _bm25_documents
from layerwise.storage import bm25, bm25_memory

SCIFACT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "scifact"
COLLECTION = 7

TEXTS = [
    "The cat sat on the mat. The cat ran.",
    "Running runners run; a runner runs and ran.",
    "Café naïve résumé — cafe naive resume",
    "Ελληνικά κείμενα και ΕΛΛΗΝΙΚΆ",
    "foo_bar baz foo bar foo_bar_baz",
    "covid-19 2019 2020 19 covid19 COVID",
    "",
    "cat",
    "mat mat mat mat mat mat mat mat mat mat",
    "the the the the of of and and a a",
    "Über große Straße strasse gross uber",
    "connection connections connected connecting connect",
    "日本語のテキスト 東京",
    "x" * 70 + " longwordstemming generalizations generalization",
    "cat mat",
    "mat cat",
    "dog",
    "dog",
    "dog",
]
WORDS = sorted({w for t in TEXTS for w in bm25._WORD_RE.findall(t)} | {"zebra", "qqq", "_", "__", "Runs", "CONNECT"})


def fts5(session: Session, query: str, k: int) -> list[tuple[int, float, int]]:
    """FTS5's own ranking, double scores (higher is better), the query ``bm25.search_documents`` runs."""
    name = bm25.document_table(COLLECTION)
    expression = bm25.match_expression(query)
    if not expression:
        return []
    found = session.execute(
        text(f"SELECT {name}.rowid, bm25({name}), (SELECT min(p.row) FROM passages p WHERE p.document_id = {name}.rowid) "
             f"FROM {name} WHERE {name} MATCH :q ORDER BY bm25({name}) LIMIT :k"), {"q": expression, "k": k}).all()
    return [(r[0], -r[1], -1 if r[2] is None else r[2]) for r in found]


def fill(session: Session, texts: list[str], ids: list[int]) -> None:
    session.execute(text("CREATE TABLE passages (id INTEGER PRIMARY KEY, document_id INTEGER, row INTEGER)"))
    bm25.add_documents(session, COLLECTION, ids, texts)
    passages = [{"d": i, "r": 10 * i + j} for i in ids for j in (3, 1, 2) if i % 4]  # every 4th document has none
    session.execute(text("INSERT INTO passages(document_id, row) VALUES (:d, :r)"), passages)


@pytest.fixture()
def sessions(tmp_path):
    return sessionmaker(create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))


@pytest.fixture()
def session(sessions):
    rng = random.Random(3)
    ids = rng.sample(range(1, 500), len(TEXTS) + 6)
    texts = TEXTS + [rng.choice(TEXTS) for _ in range(6)]  # some documents twice: exact ties
    with sessions.begin() as s:
        fill(s, texts, ids)
    with sessions.begin() as s:
        bm25.remove_documents(s, COLLECTION, ids[:2])  # deleted documents leave FTS5's totals
    with sessions() as s:
        yield s


def queries(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) for _ in range(count)]


def assert_same(index: bm25_memory.DocumentIndex, session: Session, query: str, k: int) -> int:
    expected = fts5(session, query, k)
    found = index.search(query, k)
    assert found is not None, query
    keys, scores, first = found
    assert keys.tolist() == [e[0] for e in expected], query
    assert first.tolist() == [e[2] for e in expected], query
    np.testing.assert_allclose(scores, [e[1] for e in expected], rtol=1e-12, atol=0, err_msg=query)
    return len(expected)


def test_the_same_documents_order_and_scores_as_fts5(session):
    index = bm25_memory.build(session, COLLECTION)
    assert index is not None and len(index.keys) == len(TEXTS) + 4
    compared = 0
    for query in queries(400) + ["cat", "the", "mat", "dog", "run", "running ran", "CAFÉ cafe", "ελληνικά", "2019 19",
                                 "connections", "uber Über", "zebra", "zebra qqq", "_", "_ cat", "cat cat CAT", "東京"]:
        if bm25_memory.query_phrases(query) is None:
            continue
        for k in (1, 3, 100):
            compared += assert_same(index, session, query, k)
    assert compared > 1000


def test_tied_scores_come_out_by_rowid_as_fts5_orders_them(sessions):
    ids = list(range(1, 61))
    random.Random(1).shuffle(ids)
    with sessions.begin() as s:
        fill(s, ["apple pie"] * 30 + ["pie"] * 20 + ["apple"] * 10, ids)
    with sessions() as s:
        index = bm25_memory.build(s, COLLECTION)
        for query in ("apple", "pie", "apple pie", "pie apple"):
            for k in (1, 5, 29, 30, 31, 45, 100):
                assert_same(index, s, query, k)


def test_words_that_match_nothing_find_nothing(session):
    index = bm25_memory.build(session, COLLECTION)
    for query in ("zebra", "qqq zebra", "_", "__ _"):
        keys, scores, first = index.search(query, 10)
        assert len(keys) == len(scores) == len(first) == 0
        assert fts5(session, query, 10) == []


def test_a_word_fts5_splits_into_several_tokens_is_left_to_fts5(session):
    index = bm25_memory.build(session, COLLECTION)
    assert bm25_memory.query_phrases("foo_bar cat") is None
    assert index.search("foo_bar cat", 10) is None
    keys = _bm25_documents(index, session, COLLECTION, "foo_bar cat", 10)[0]
    expected = fts5(session, "foo_bar cat", 10)
    assert keys.tolist() == [e[0] for e in expected] and len(expected) > 0


def test_the_searcher_path_returns_float32_scores_equal_to_fts5s(session):
    index = bm25_memory.build(session, COLLECTION)
    for query in queries(50, seed=5):
        memory = _bm25_documents(index, session, COLLECTION, query, 10)
        stored = bm25.search_documents(session, COLLECTION, query, 10)
        for a, b in zip(memory, stored):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


def test_the_index_is_built_in_a_thread_from_the_second_search_and_not_above_the_limit(sessions, session):
    lazy = bm25_memory.Lazy()
    assert lazy.index(sessions, COLLECTION) is None and lazy._builder is None  # a one-shot search builds nothing
    lazy.index(sessions, COLLECTION)
    assert lazy._builder is not None and lazy.wait(timeout=60) is not None
    assert lazy.index(sessions, COLLECTION) is lazy.wait()
    small = bm25_memory.Lazy(limit=3)
    small.index(sessions, COLLECTION)
    small.index(sessions, COLLECTION)
    assert small.wait(timeout=60) is None and small.index(sessions, COLLECTION) is None


def test_a_fresh_table_without_an_averages_record_counts_from_docsize(sessions):
    with sessions.begin() as s:
        fill(s, TEXTS, list(range(1, len(TEXTS) + 1)))
        s.execute(text(f"UPDATE {bm25.document_table(COLLECTION)}_data SET block = x'' WHERE id = 1"))
        index = bm25_memory.build(s, COLLECTION)
        assert index is not None and index.rows == len(TEXTS)


@pytest.mark.slow
@pytest.mark.skipif(not SCIFACT.is_dir(), reason="../shared/data/scifact is absent")
def test_scifact_test_queries_rank_as_fts5(sessions):
    corpus = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").read_text().splitlines()]
    with sessions.begin() as s:
        fill(s, [f"{d['title']} {d['text']}" for d in corpus], list(range(1, len(corpus) + 1)))
    wanted = {line.split("\t")[0] for line in (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    texts = [q["text"] for line in (SCIFACT / "queries.jsonl").read_text().splitlines()
             if (q := json.loads(line))["_id"] in wanted]
    assert len(texts) == 300
    with sessions() as s:
        index = bm25_memory.build(s, COLLECTION)
        compared = sum(assert_same(index, s, query, 100) for query in texts)
    assert compared == 300 * 100


def test_threads_build_once_and_search_alike(sessions, session):
    expected = {q: fts5(session, q, 5) for q in queries(80, seed=9) if bm25_memory.query_phrases(q) is not None}
    lazy = bm25_memory.Lazy()
    bm25_memory._TOKENIZER._cache.clear()  # threads tokenise words concurrently too

    def run(query: str) -> bool:
        index = lazy.index(sessions, COLLECTION)
        found = index.search(query, 5) if index is not None else None
        return found is None or found[0].tolist() == [e[0] for e in expected[query]]

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(run, list(expected) * 5))
    assert lazy.wait(timeout=60) is not None and all(run(q) for q in expected)
