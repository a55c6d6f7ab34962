"""The CLI end to end with typer's CliRunner: happy paths and every bad input's message and exit code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from layerwise.cli import app
from tests.results import by_view

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample"

runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("cli-home")
    result = runner.invoke(app, ["index", str(SAMPLE / "docs"), "--collection", "notes", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 38
    return home


def run(home, *args):
    return runner.invoke(app, [*args, "--home", str(home)])


def test_search_json(home):
    result = run(home, "search", "notes", "how do I rotate the logs", "--layer", "-1", "-k", "5", "--json")
    assert result.exit_code == 0, result.output
    hits = by_view(json.loads(result.stdout))["layer6"]
    assert len(hits) == 5 and hits[0]["doc_id"] == "ops/log-rotation.md" and hits[0]["title"]


def test_search_all_layers_table(home):
    result = run(home, "search", "notes", "how do I rotate the logs", "--layer", "all", "-k", "2")
    assert result.exit_code == 0 and "layer0" in result.stdout and "layer6" in result.stdout


def test_search_bm25(home):
    result = run(home, "search", "notes", "logrotate compress", "--layer", "bm25", "--json")
    assert by_view(json.loads(result.stdout))["bm25"][0]["doc_id"] == "ops/log-rotation.md"


def test_info(home):
    data = json.loads(run(home, "info", "notes", "--json").stdout)
    assert data["documents"] == 38 and data["model"]["num_states"] == 7 and data["vector_bytes"] == 7 * 38 * 384 * 4


def test_compare_and_mix(home):
    result = run(home, "compare", "notes", "photosynthesis", "-k", "3", "--json")
    data = json.loads(result.stdout)
    assert len(data["jaccard"]["matrix"]) == 7 and data["jaccard"]["matrix"][0][0] == 1.0
    assert run(home, "mix", "notes", "last4", "wsum(-4:; 0.1,0.2,0.3,0.4)").exit_code == 0
    assert "last4" in run(home, "views", "notes").stdout


def test_evaluate_end_to_end(home, tmp_path):
    plot, md = tmp_path / "p.png", tmp_path / "t.md"
    result = run(home, "evaluate", "notes", "--queries", str(SAMPLE / "queries.jsonl"), "--qrels", str(SAMPLE / "qrels.tsv"),
                 "--trials", "500", "--plot", str(plot), "--markdown", str(md), "--runs", str(tmp_path / "runs"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    names = [v["name"] for v in data["views"]]
    assert names[:7] == [f"layer{i}" for i in range(7)] and "bm25" in names and "rrf(bm25 | -1)" in names
    assert data["queries"] == 33 and data["run_id"] >= 1
    assert plot.stat().st_size > 10_000 and md.read_text().startswith("| view |")
    assert (tmp_path / "runs" / "layer6.run").read_text().count(" Q0 ") > 33


def test_embed(tmp_path):
    out = tmp_path / "v.npz"
    result = runner.invoke(app, ["embed", str(SAMPLE / "texts.txt"), "--layers", "all", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = np.load(out)
    assert data["embeddings"].shape == (3, 7, 384) and data["layers"].tolist() == list(range(7))
    assert json.loads(str(data["model"]))["name"].endswith("all-MiniLM-L6-v2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "nope", "q"], "no collection 'nope'"),
        (["search", "notes", "q", "--layer", "9"], "layer 9 is out of range: this model has hidden states 0..6"),
        (["search", "notes", "q", "--layer", "mean(-9:)"], "out of range"),
        (["search", "notes", "   "], "the query is empty"),
        (["search", "notes", "q", "--layer", "foo"], "no view 'foo' in collection 'notes'"),
        (["search", "notes", "q", "--view", "mean(-4:"], "cannot read layer"),
        (["index", "/no/such/dir", "-c", "x"], "does not exist"),
        (["index", str(SAMPLE / "docs"), "-c", "x2", "--model", "/no/such/model"], "model path /no/such/model does not exist"),
        (["evaluate", "notes", "--queries", "/no/q.jsonl", "--qrels", "/no/q.tsv"], "does not exist"),
        (["index", str(SAMPLE / "docs"), "-c", "notes", "--pooling", "cls"], "was indexed with"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(home, args, message):
    result = run(home, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_unreadable_input_is_skipped_with_a_summary(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ok.txt").write_text("a fine document")
    (folder / "bad.txt").write_bytes(b"\x00\x01\x02")
    (folder / "latin1.txt").write_bytes(b"caf\xe9 au lait")
    result = runner.invoke(app, ["index", str(folder), "-c", "mixed", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    assert "2 added" in result.stdout and "bad.txt: binary file" in result.stdout
    assert "latin1.txt: not valid UTF-8" in result.stderr


def test_embed_layer_out_of_range(tmp_path):
    result = runner.invoke(app, ["embed", str(SAMPLE / "texts.txt"), "-o", str(tmp_path / "x.npz"), "--layers", "7"])
    assert result.exit_code == 2 and "layer 7 is out of range: this model has hidden states 0..6" in result.stderr


@pytest.mark.parametrize("suffix", ["parquet", "safetensors", "npy", "npz"])
def test_embed_writes_the_format_its_suffix_names(tmp_path, suffix):
    """`embed -o v.parquet` once wrote v.parquet.npz and printed v.parquet: the file written is the one named."""
    out = tmp_path / f"v.{suffix}"
    result = runner.invoke(app, ["embed", str(SAMPLE / "texts.txt"), "--layers", "-1", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == str(out) and out.is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("v.") and p.suffix != ".json"] == [out.name]
    if suffix == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(out)
        assert table.num_rows == 3 and len(table.column("layer6")[0]) == 384
    elif suffix == "safetensors":
        from safetensors.numpy import load_file

        assert load_file(str(out))["embeddings"].shape == (3, 1, 384)
