import pytest

from layerwise.evaluation import datasets, smart

DOCS = ".I 1\r\n.T\r\nexperimental wing\r\n.A\r\nsmith\r\n.B\r\nj. ae. 1958\r\n.W\r\nexperimental wing\r\nin a slipstream .\r\n.I 2\r\n.T\r\nflow\r\n.W\r\nboundary layer flow .\r\n"
QUERIES = ".I 001\n.W\nwhat similarity laws\nmust be obeyed .\n.I 004\n.W\nboundary layers\n"


def test_documents_and_fields(tmp_path):
    path = tmp_path / "docs"
    path.write_bytes(DOCS.encode())
    docs = smart.read_documents(path)
    assert docs[0] == {"_id": "1", "title": "experimental wing", "text": "experimental wing in a slipstream .", "field_A": "smith", "field_B": "j. ae. 1958"}
    assert docs[1]["text"] == "boundary layer flow ."


def test_queries_by_position_or_field(tmp_path):
    path = tmp_path / "q"
    path.write_text(QUERIES)
    assert smart.read_queries(path, "position") == {"1": "what similarity laws must be obeyed .", "2": "boundary layers"}
    assert set(smart.read_queries(path, "field")) == {"001", "004"}


@pytest.mark.parametrize(
    ("content", "grades", "expected"),
    [
        ("1 184 2\n1 29 -1\n2 12 4\n", "cleverdon", {"1": {"184": 3, "29": 0}, "2": {"12": 1}}),  # Cranfield
        ("1 184 2\n", "as-is", {"1": {"184": 2}}),
        ("    1     28 0       0.000000\n    1     35 0       0.000000\n", "as-is", {"1": {"28": 1, "35": 1}}),  # CISI
        ("1 0 13 1\n1 0 14 1\n", "as-is", {"1": {"13": 1, "14": 1}}),  # MED (TREC layout)
        ("01 1410  0 0\n", "as-is", {"1": {"1410": 1}}),  # CACM
    ],
)
def test_qrels_layouts(tmp_path, content, grades, expected):
    path = tmp_path / "rel"
    path.write_text(content)
    assert smart.read_qrels(path, grades) == expected


def test_beir_round_trip(tmp_path):
    docs_path, q_path, rel_path = tmp_path / "d", tmp_path / "q", tmp_path / "r"
    docs_path.write_bytes(DOCS.encode())
    q_path.write_text(QUERIES)
    rel_path.write_text("1 1 1\n2 2 3\n")
    out = tmp_path / "beir"
    datasets.write_beir(out, smart.read_documents(docs_path), smart.read_queries(q_path), smart.read_qrels(rel_path, "cleverdon"))
    assert datasets.read_queries(out / "queries.jsonl") == {"1": "what similarity laws must be obeyed .", "2": "boundary layers"}
    assert datasets.read_qrels(out / "qrels" / "test.tsv") == {"1": {"1": 4}, "2": {"2": 2}}


def test_trec_qrels_and_run(tmp_path):
    path = tmp_path / "qrels.txt"
    path.write_text("q1 0 d1 2\nq1 0 d2 0\n")
    assert datasets.read_qrels(path) == {"q1": {"d1": 2, "d2": 0}}
    run = tmp_path / "run"
    datasets.write_trec_run(run, {"q1": {"d1": 0.5, "d2": 0.9}}, "tag")
    assert run.read_text().splitlines() == ["q1 Q0 d2 1 0.900000 tag", "q1 Q0 d1 2 0.500000 tag"]
