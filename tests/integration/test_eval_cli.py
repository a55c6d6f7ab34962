"""Evaluation through the CLI: corrected statistics, per-query JSON, stored runs, warnings, figures, diagnostics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layerwise.cli import app

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample"
QUERIES, QRELS = str(SAMPLE / "queries.jsonl"), str(SAMPLE / "qrels.tsv")
runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("eval-home")
    result = runner.invoke(app, ["index", str(SAMPLE / "docs"), "--collection", "notes", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    return home


def run(home, *args):
    return runner.invoke(app, [*args, "--home", str(home)])


def evaluate(home, *args):
    return run(home, "evaluate", "notes", "--queries", QUERIES, "--qrels", QRELS, "--trials", "300", "--bootstrap", "300", *args)


@pytest.fixture(scope="module")
def two_runs(home):
    first = evaluate(home, "-v", "all", "-v", "bm25", "--json")
    assert first.exit_code == 0, first.output
    second = evaluate(home, "-v", "-1", "-v", "0", "-v", "bm25", "--baseline", "bm25", "--correction", "bh", "--json")
    assert second.exit_code == 0, second.output
    return json.loads(first.stdout), json.loads(second.stdout)


def test_json_has_raw_and_adjusted_p_cis_and_per_query_metrics(two_runs):
    data, _ = two_runs
    assert data["correction"] == "holm" and data["baseline"] == "layer6"
    views = {v["name"]: v for v in data["views"]}
    for name, view in views.items():
        assert len(view["per_query"]["ndcg@10"]) == 33 and set(view["ci"]) == set(data["metrics"])
        low, high = view["ci"]["ndcg@10"]
        assert low <= view["means"]["ndcg@10"] <= high
        if name != "layer6":
            assert view["p_adjusted"] >= view["p_value"]
    assert data["best"] is None or views[data["best"]]["significant"]
    assert data["verdict"].startswith(("best", "no view beats layer6 significantly"))
    assert "no document was split" in data["corpus"]["note"]


def test_progress_lines_go_to_stderr_even_with_json(two_runs, home):
    result = evaluate(home, "-v", "-1", "--json")
    assert result.exit_code == 0
    assert "evaluating 33 queries" in result.stderr and json.loads(result.stdout)["queries"] == 33


def test_baseline_and_correction_options(two_runs):
    _, data = two_runs
    assert data["baseline"] == "bm25" and data["correction"] == "bh"
    assert [v["name"] for v in data["views"]] == ["layer6", "layer0", "bm25"]


def test_runs_list_show_diff_and_export(two_runs, home, tmp_path):
    first, second = two_runs
    a, b = first["run_id"], second["run_id"]
    listed = run(home, "runs", "list", "--json")
    assert listed.exit_code == 0, listed.output
    ids = [r["run_id"] for r in json.loads(listed.stdout)["runs"]]
    assert ids == sorted(ids, reverse=True) and {a, b} <= set(ids)
    table = run(home, "runs", "list", "notes")
    assert table.exit_code == 0 and f"{a}" in table.stdout and "notes" in table.stdout
    shown = run(home, "runs", "show", str(a), "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["run_id"] == a and data["views"][0]["per_query"]["ndcg@10"] == first["views"][0]["per_query"]["ndcg@10"]
    figures = run(home, "runs", "show", str(a), "--figures", str(tmp_path / "figs"), "--scatter", "bm25")
    assert figures.exit_code == 0, figures.output
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["heatmap.png", "layers.png", "scatter-bm25.png"]
    diff = run(home, "runs", "diff", str(a), str(b), "--trials", "200", "--json")
    assert diff.exit_code == 0, diff.output
    found = json.loads(diff.stdout)
    assert [v["view"] for v in found["views"]] == ["layer0", "layer6", "bm25"] and found["common_queries"] == 33
    assert all(v["delta"] == 0 and v["p_value"] == 1.0 for v in found["views"])  # same views, same queries: no change
    assert "layer1" in found["only_in_a"]
    assert "B - A" in run(home, "runs", "diff", str(a), str(b), "--trials", "200").stdout
    exported = run(home, "runs", "export", str(b), "-o", str(tmp_path / "run.md"))
    assert exported.exit_code == 0 and (tmp_path / "run.md").read_text().startswith("| view |")
    bad = run(home, "runs", "export", str(b), "-o", str(tmp_path / "run.parquet"))
    assert bad.exit_code == 2 and ".json, .csv or .md" in bad.output
    missing = run(home, "runs", "show", "9999")
    assert missing.exit_code == 2 and "no evaluation run 9999" in missing.output


def test_qrels_naming_missing_documents_warn_and_strict_fails(home, tmp_path):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(Path(QRELS).read_text() + "q-unknown\tx.md\t1\n" + "q1\tnot/in/the/collection.md\t1\n")
    result = run(home, "evaluate", "notes", "--queries", QUERIES, "--qrels", str(qrels), "-v", "-1", "--trials", "10")
    assert result.exit_code == 0, result.output
    assert "not in collection 'notes'" in result.stderr and "not/in/the/collection.md" in result.stderr
    assert "not in the queries file" in result.stderr
    strict = run(home, "evaluate", "notes", "--queries", QUERIES, "--qrels", str(qrels), "-v", "-1", "--strict")
    assert strict.exit_code == 2 and "--strict" in strict.output


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--trials", "0"], "--trials 0 must be at least 1"), (["--plot", "."], "must be a file name ending in .png"),
     (["--plot", "layers"], "must be a file name ending in .png"), (["--correction", "bonferroni"], "unknown correction"),
     (["--baseline", "all"], "give one view")],
)
def test_bad_evaluation_options_are_usage_errors_before_any_work(home, tmp_path, args, message):
    result = evaluate(home, *args)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "layers").exists()


def test_compare_plot_writes_the_jaccard_heatmap(home, tmp_path):
    out = tmp_path / "jaccard.png"
    result = run(home, "compare", "notes", "photosynthesis", "-k", "5", "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 10_000


def test_layers_reports_every_state_from_stored_vectors(home, tmp_path):
    out = tmp_path / "layers.png"
    result = run(home, "layers", "notes", "--json", "--plot", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [s["layer"] for s in data["layers"]] == list(range(7)) and data["passages"] == 38
    matrix = data["cka"]["matrix"]
    assert all(abs(matrix[i][i] - 1) < 1e-6 and 0 <= min(row) and max(row) <= 1 + 1e-6 for i, row in enumerate(matrix))
    assert all(-1 <= s["anisotropy"] <= 1 and s["norm_min"] <= s["norm_mean"] <= s["norm_max"] for s in data["layers"])
    assert out.stat().st_size > 10_000
    assert "anisotropy" in run(home, "layers", "notes").stdout
