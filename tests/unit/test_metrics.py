"""Metrics against pytrec_eval (trec_eval) on random runs with ties and graded, negative and zero judgements."""

import numpy as np
import pytest
import pytrec_eval

from layerwise.errors import UsageError
from layerwise.evaluation import metrics as M

PAIRS = {"ndcg@10": "ndcg_cut_10", "ndcg@5": "ndcg_cut_5", "recall@10": "recall_10", "recall@100": "recall_100",
         "map@100": "map_cut_100", "map@10": "map_cut_10", "p@10": "P_10", "p@5": "P_5"}


def _random_case(seed):
    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(25):
        judged = rng.choice(docs, size=rng.integers(1, 15), replace=False)
        qrels[f"q{q}"] = {d: int(rng.choice([-1, 0, 1, 2, 3])) for d in judged}
        retrieved = rng.choice(docs, size=rng.integers(0, 40), replace=False)
        run[f"q{q}"] = {d: float(rng.integers(0, 8)) / 4 for d in retrieved}  # many ties
    return qrels, run


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_trec_eval(seed):
    qrels, run = _random_case(seed)
    reference = pytrec_eval.RelevanceEvaluator(qrels, set(PAIRS.values()) | {"recip_rank"}).evaluate(run)
    for ours, theirs in PAIRS.items():
        values = M.per_query(run, qrels, ours)
        for q, value in values.items():
            assert value == pytest.approx(reference[q][theirs], abs=1e-6), (ours, q)


@pytest.mark.parametrize("seed", range(3))
def test_mrr_matches_recip_rank_on_a_cut_run(seed):
    qrels, run = _random_case(seed)
    cut = {q: {d: s for d, s in scores.items() if d in M.ranked(scores)[:10]} for q, scores in run.items()}
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
    for q, value in M.per_query(run, qrels, "mrr@10").items():
        assert value == pytest.approx(reference[q]["recip_rank"], abs=1e-6)


def test_queries_without_relevant_documents_are_not_averaged():
    qrels = {"a": {"x": 1}, "b": {"y": 0, "z": -1}}
    assert set(M.per_query({"a": {"x": 1.0}}, qrels, "ndcg@10")) == {"a"}


def test_missing_run_scores_zero():
    assert M.per_query({}, {"a": {"x": 2}}, "recall@10") == {"a": 0.0}


def test_ties_break_by_document_id_descending():
    assert M.ranked({"a": 1.0, "c": 1.0, "b": 2.0}) == ["b", "c", "a"]


def test_bad_metric_name():
    with pytest.raises(UsageError, match="unknown metric"):
        M.parse_metric("ndcg")
