import numpy as np
import pytest

from layerwise.layers import Fusion, Lexical, Mix, Selection, parse_view
from layerwise.search.fusion import rrf, score_fusion
from layerwise.search.ranking import Ranking


def _r(docs, scores):
    return Ranking(np.array(docs, np.int64), np.array(scores, np.float32), np.array(docs, np.int64) * 10)


def test_rrf_matches_formula():
    fused = rrf([_r([1, 2, 3], [0.9, 0.8, 0.7]), _r([3, 1], [5.0, 4.0])], k=60)
    expected = {1: 1 / 61 + 1 / 62, 2: 1 / 62, 3: 1 / 63 + 1 / 61}
    assert fused.docs.tolist() == sorted(expected, key=lambda d: -expected[d])
    np.testing.assert_allclose(fused.scores, sorted(expected.values(), reverse=True), rtol=1e-6)
    assert fused.rows.tolist() == [d * 10 for d in fused.docs.tolist()]


def test_score_fusion_normalises_each_ranking():
    fused = score_fusion([_r([1, 2], [10.0, 0.0]), _r([2, 1], [1.0, 0.5])], weights=[0.5, 0.5])
    assert fused.docs.tolist() == [1, 2]
    np.testing.assert_allclose(fused.scores, [0.5, 0.5 * 0 + 0.5 * 1], rtol=1e-6)


def test_parse_fusion():
    assert isinstance(parse_view("-1"), Selection)
    assert parse_view("rrf(bm25 | -1)") == Fusion("rrf", (Lexical(), parse_view("-1")), None)
    assert parse_view("fuse(bm25:0.3 | -1:0.7)") == Fusion("fuse", (Lexical(), parse_view("-1")), (0.3, 0.7))
    members = parse_view("rrf(-4: | mean(-4:))").members
    assert str(members[0]) == "-4:" and isinstance(members[1], Mix)
    assert str(parse_view("rrf(bm25 | rrf(-1 | 0))")) == "rrf(bm25 | rrf(-1 | 0))"


def test_empty_fusion_is_an_error():
    with pytest.raises(Exception, match="fuses nothing"):
        parse_view("rrf()")


def test_rows_that_are_no_longer_live_are_dropped():
    from layerwise.search.ranking import RowMap

    row_map = RowMap(np.array([2, 5, 9]), np.array([0, 1, 1]))
    ranking = Ranking.from_passages(np.array([7, 5, -1, 9, 2]), np.array([0.9, 0.8, 0.7, 0.6, 0.5], np.float32), row_map)
    assert ranking.docs.tolist() == [1, 0] and ranking.rows.tolist() == [5, 2]
