"""The public API: the README's example runs as written, and the API agrees with the CLI's search."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import layerwise
from layerwise.cli import app
from layerwise.errors import LayerRangeError, UsageError
from tests.results import by_view

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    section = ROOT.joinpath("README.md").read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    code = readme_example()
    assert len(code.strip().splitlines()) <= 8
    monkeypatch.setenv("LAYERWISE_HOME", str(tmp_path))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.split("\n")
    assert out[0].split()[:2] == ["1", "logs"]
    again = layerwise.open("notes", home=tmp_path)  # get-or-create: a rerun opens what is there
    assert again.info()["documents"] == 2


def test_examples_api_script(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAYERWISE_HOME", str(tmp_path))
    runpy.run_path(str(ROOT / "examples" / "api.py"))
    assert "1 logs" in capsys.readouterr().out


def test_api_search_equals_cli_search_for_every_kind_of_view(sample_home):
    kb = layerwise.Library(home=sample_home, device="cpu").open("sample")
    runner = CliRunner()
    for view in ("-1", "bm25", "rrf(bm25 | -1)", "mean(-4:)", "fuse(bm25:0.3 | -1:0.7)"):
        hits = kb.search("how do I rotate the logs", view=view, k=5)
        out = runner.invoke(app, ["search", "sample", "how do I rotate the logs", "--view", view, "-k", "5", "--home", str(sample_home), "--json"])
        assert out.exit_code == 0, out.output
        (cli_hits,) = by_view(json.loads(out.stdout)).values()
        assert [h.doc_id for h in hits] == [h["doc_id"] for h in cli_hits]


def test_saved_fusion_and_default_view(sample_home):
    kb = layerwise.Library(home=sample_home, device="cpu").open("sample")
    kb.save_view("hybrid", "rrf(bm25 | -1)")
    assert kb.search("cron schedule", view="hybrid", k=3) == kb.search("cron schedule", view="rrf(bm25 | -1)", k=3)
    kb.set_default_view("hybrid")
    try:
        assert kb.info()["default_view"] == "hybrid"
        assert kb.search("cron schedule", k=3) == kb.search("cron schedule", view="hybrid", k=3)
    finally:
        kb.set_default_view(None)
    with pytest.raises(UsageError, match="names 7 views"):
        kb.search("cron", view="all")


def test_encoder_takes_negative_layers_and_names_the_range(encoder):
    out = encoder.encode(["a text"], [3, -1])
    assert out.layers == (3, 6)
    np.testing.assert_allclose(out.layer(-1), encoder.encode(["a text"], [6]).vectors[:, 0], atol=1e-6)
    with pytest.raises(LayerRangeError, match="0..6"):
        encoder.encode(["a text"], [9])


def test_export_writes_stored_vectors_with_ids_and_spans(sample_home, tmp_path):
    kb = layerwise.Library(home=sample_home, device="cpu").open("sample")
    written = kb.export(tmp_path / "v.npz", "-2:")
    data = np.load(written)
    rows = kb.collection.live_rows()
    assert data["embeddings"].shape == (len(rows), 2, 384) and data["layers"].tolist() == [5, 6]
    np.testing.assert_array_equal(data["embeddings"][:, 1], kb.collection.layer_vectors(6)[rows])
    assert data["char_span"].shape == (len(rows), 2) and len(data["ids"]) == len(rows)
    for suffix in ("parquet", "safetensors", "npy"):
        assert kb.export(tmp_path / f"v.{suffix}", "-1").stat().st_size > 0
    with pytest.raises(UsageError, match="no known format"):
        kb.export(tmp_path / "v.txt")


@pytest.mark.parametrize("view", ["rrf(bm25 | -1)", "-1", "mean(-4:)"])
def test_search_top10_equals_the_evaluation_run(sample_home, tmp_path, view):
    """What `search` shows for a query is what `evaluate` scores for it (same view, same depth)."""
    from layerwise.evaluation import datasets

    kb = layerwise.Library(home=sample_home, device="cpu").open("sample")
    queries = datasets.read_queries(ROOT / "examples" / "sample" / "queries.jsonl")
    qrels = datasets.read_qrels(ROOT / "examples" / "sample" / "qrels.tsv")
    result = kb.evaluate(queries, qrels, [view], metrics=("ndcg@10", "recall@100"), trials=10, save=False)
    name = str(layerwise.parse_view(view)) if view != "-1" else "layer6"
    for qid in list(result.runs[name])[:20]:
        run = sorted(result.runs[name][qid].items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        hits = kb.search(queries[qid], view=view, k=10)
        assert [h.doc_id for h in hits] == [d for d, _ in run]
