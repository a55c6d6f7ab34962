import json

import pytest

from layerwise.errors import InputError
from layerwise.indexer.inputs import InputReport, TableColumns, read_documents, read_texts


def test_folder_reads_text_and_markdown_and_reports_problems(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# Heading\n\nBody text.")
    (tmp_path / "sub" / "b.txt").write_text("plain text")
    (tmp_path / "c.bin").write_bytes(b"\x00\x01")
    (tmp_path / "d.txt").write_bytes(b"\x00binary with txt suffix")
    (tmp_path / "e.txt").write_bytes(b"caf\xe9")
    (tmp_path / "f.txt").write_text("   ")
    report = InputReport()
    docs = {d.doc_id: d for d in read_documents([tmp_path], report)}
    assert set(docs) == {"a.md", "sub/b.txt", "e.txt"}
    assert docs["a.md"].title == "Heading" and docs["a.md"].text == "Body text."
    assert docs["e.txt"].text == "caf\ufffd"
    assert any("e.txt" in w and "UTF-8" in w for w in report.warnings)
    skipped = "\n".join(report.skipped)
    assert "c.bin" in skipped and "d.txt: binary" in skipped and "f.txt: empty" in skipped


def test_beir_jsonl_keeps_extra_keys_and_skips_bad_lines(tmp_path):
    path = tmp_path / "corpus.jsonl"
    rows = [{"_id": "1", "title": "T", "text": "x", "year": 2020}, {"_id": "2", "title": "", "text": ""}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    report = InputReport()
    (doc,) = read_documents([path], report)
    assert (doc.doc_id, doc.title, doc.text, doc.metadata) == ("1", "T", "x", {"year": 2020})
    assert len(report.skipped) == 2


def test_csv_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("key,body,head\nk1,hello,H\n")
    (doc,) = read_documents([path], InputReport(), TableColumns(text="body", id="key", title="head"))
    assert (doc.doc_id, doc.title, doc.text) == ("k1", "H", "hello")
    with pytest.raises(InputError, match="no column 'text'"):
        list(read_documents([path], InputReport()))


def test_missing_input(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list(read_documents([tmp_path / "nope"], InputReport()))


def test_read_texts_one_per_line(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("one\n\ntwo\n")
    assert read_texts(path) == (["0", "1"], ["one", "two"])


def test_fifo_is_skipped_not_read(tmp_path):
    import os

    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    (tmp_path / "ok.txt").write_text("fine")
    for given in ([fifo], [tmp_path]):
        report = InputReport()
        docs = list(read_documents(given, report))  # would block forever on open() of the FIFO
        assert [d.text for d in docs] == ([] if given == [fifo] else ["fine"])
        assert any(str(fifo) in s and "not a regular file" in s for s in report.skipped), report.skipped


def test_document_without_text_is_indexed_from_its_title_with_a_warning(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"_id": "9", "title": "Only a title"}) + "\n" + json.dumps({"_id": "8", "title": "T", "text": "body"}) + "\n")
    report = InputReport()
    docs = list(read_documents([path], report))
    assert [(d.doc_id, d.title, d.text) for d in docs] == [("9", "Only a title", ""), ("8", "T", "body")]
    assert len(report.warnings) == 1 and "'9'" in report.warnings[0] and "title" in report.warnings[0]
    md = tmp_path / "h.md"
    md.write_text("# Just a heading\n")
    report = InputReport()
    assert [d.title for d in read_documents([md], report)] == ["Just a heading"]
    assert any("h.md" in w and "title" in w for w in report.warnings)
