"""SciFact with the default model reproduces MTEB's nDCG@10 (slow: minutes of CPU; needs ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerwise.indexer.inputs import InputReport, read_documents
from layerwise.indexer.pipeline import index_documents
from layerwise.evaluation import datasets
from layerwise.evaluation.evaluation import evaluate
from layerwise.search.searcher import Searcher
from layerwise.storage.collection import Store

SCIFACT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scifact"
MTEB_NDCG10 = 64.51

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not SCIFACT.is_dir(), reason="../shared/data/scifact is absent")]


def test_last_layer_reproduces_the_published_mteb_figure(tmp_path, encoder):
    collection = Store(home=tmp_path).create("scifact", encoder.identity, max_passages=1)
    report = InputReport()
    index_documents(collection, encoder, list(read_documents([SCIFACT / "corpus.jsonl"], report)), report)
    result = evaluate(Searcher(collection, encoder), datasets.read_queries(SCIFACT / "queries.jsonl"),
                      datasets.read_qrels(SCIFACT / "qrels" / "test.tsv"), ["-1", "mean(-4:)", "mean(-4:; raw)"], trials=100)
    assert abs(100 * result.view("layer6").means["ndcg@10"] - MTEB_NDCG10) <= 0.5
    assert 100 * result.view("mean(-4:)").means["ndcg@10"] > 100 * result.view("mean(-4:; raw)").means["ndcg@10"] + 10
