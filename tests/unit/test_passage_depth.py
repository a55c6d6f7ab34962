"""passage_depth: enough passages that collapsing them to documents (MaxP) keeps the top documents exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from layerwise.search.ranking import Ranking
from layerwise.search.searcher import passage_depth


def _top_documents(scores: np.ndarray, doc_of_row: np.ndarray, passages: int, depth: int) -> list[int]:
    """The top ``depth`` documents from the best ``passages`` passages (best first, ties by row)."""
    order = np.lexsort((np.arange(len(scores)), -scores))[:passages]
    ranking = Ranking.from_passages(order.astype(np.int64), scores[order], lambda rows: doc_of_row[rows])
    return ranking.top(depth).docs.tolist()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.integers(1, 15), st.integers(1, 60), st.integers(0, 2**32 - 1))
def test_depth_times_max_passages_keeps_the_top_documents(max_passages: int, depth: int, documents: int, seed: int):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, max_passages + 1, size=documents)  # passages of each document, at most max_passages
    doc_of_row = np.repeat(np.arange(documents), counts)
    rng.shuffle(doc_of_row)
    scores = rng.integers(0, 20, size=len(doc_of_row)).astype(np.float32)  # coarse: many ties
    fetched = passage_depth(depth, max_passages)
    assert fetched <= depth * max_passages
    assert _top_documents(scores, doc_of_row, fetched, depth) == _top_documents(scores, doc_of_row, len(scores), depth)


def test_without_a_limit_the_margin_stays():
    assert passage_depth(10) == 60 and passage_depth(100) == 400
    assert passage_depth(10, 1) == 10 and passage_depth(10, 100) == 60
