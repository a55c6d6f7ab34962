"""Regression tests for evaluation interop bugs: ids with spaces in qrels and TREC runs, SMART text lines, qrels mismatches."""

from __future__ import annotations

import re
from urllib.parse import unquote

from layerwise.evaluation import datasets, smart
from layerwise.evaluation.evaluation import mismatches


def test_beir_qrels_split_on_tabs_keep_ids_with_spaces(tmp_path):
    path = tmp_path / "qrels.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\tmy notes.md\t1\nq 2\tb\t2\n")
    assert datasets.read_qrels(path) == {"q1": {"my notes.md": 1}, "q 2": {"b": 2}}


def test_trec_qrels_keep_a_document_id_with_spaces_between_the_fixed_columns(tmp_path):
    path = tmp_path / "qrels.trec"
    path.write_text("q1 0 my notes.md 1\nq1 0 d2 0\nq2 Q0 a  b   2\n")
    assert datasets.read_qrels(path) == {"q1": {"my notes.md": 1, "d2": 0}, "q2": {"a  b": 2}}


def test_a_trec_run_never_writes_whitespace_in_an_id_unescaped(tmp_path):
    run = {"q 1": {"my notes.md": 2.0, "plain": 1.0, "100%\tdone": 0.5}}
    path = tmp_path / "v.run"
    assert datasets.write_trec_run(path, run, "v") == 3  # the query and two documents were encoded
    lines = path.read_text().splitlines()
    fields = [line.split() for line in lines]
    assert all(len(f) == 6 for f in fields)  # whitespace-separated columns stay intact
    assert {unquote(f[2]) for f in fields} == set(run["q 1"]) and {unquote(f[0]) for f in fields} == {"q 1"}
    assert not any(re.search(r"\s", f[2]) for f in fields)
    clean = tmp_path / "c.run"
    assert datasets.write_trec_run(clean, {"q1": {"d%1": 1.0}}, "c") == 0
    assert clean.read_text().split()[2] == "d%1"  # runs without whitespace are written as they are


def test_smart_keeps_text_lines_that_begin_with_a_dot_and_a_capital(tmp_path):
    path = tmp_path / "docs"
    path.write_text(".I 1\n.T\nLanguages\n.W\n.NET and Java are both used.\n.I think this line is text too.\n.I 2\n.W\nsecond\n")
    docs = smart.read_documents(path)
    assert [d["_id"] for d in docs] == ["1", "2"]
    assert docs[0]["text"] == ".NET and Java are both used. .I think this line is text too."
    assert not any(k.startswith("field_") for k in docs[0])


def test_qrels_naming_missing_documents_or_queries_are_reported():
    qrels = {"q1": {"d1": 1, "gone": 2, "irrelevant": 0}, "q9": {"d1": 1}}
    found = mismatches(qrels, {"q1": "text"}, {"d1", "d2"}, "notes")
    assert len(found) == 2
    assert "1 of 2 queries" in found[0] and "q9" in found[0]
    assert "1 of 2 relevant documents" in found[1] and "gone" in found[1] and "'notes'" in found[1]
    assert mismatches({"q1": {"d1": 1}}, {"q1": "t"}, {"d1"}, "notes") == []
