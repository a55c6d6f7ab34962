"""Reading documents from folders and files: .txt/.md, BEIR .jsonl, .csv.

Problems with one file (binary content, undecodable bytes, an empty document,
a malformed line) never stop a run: the file or line is skipped or decoded
with replacement characters, and the :class:`InputReport` says what happened.
"""

from __future__ import annotations

import csv
import json
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerwise.errors import InputError
from layerwise.types import Document

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
TABLE_SUFFIXES = (".jsonl", ".csv", ".tsv")


@dataclass
class InputReport:
    """What reading inputs skipped or repaired, each with the file and the reason."""

    read: int = 0
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def skip(self, where: str, why: str) -> None:
        self.skipped.append(f"{where}: {why}")

    def warn(self, where: str, why: str) -> None:
        self.warnings.append(f"{where}: {why}")


@dataclass(frozen=True)
class TableColumns:
    """Which columns of a .csv/.tsv hold the id, title and text."""

    text: str = "text"
    id: str | None = None
    title: str | None = None


def read_documents(
    paths: Sequence[Path], report: InputReport, columns: TableColumns = TableColumns()
) -> Iterator[Document]:
    """Every document under the given files and folders, in a stable order."""
    for path in paths:
        if not path.exists():
            raise InputError(f"input {path} does not exist: pass a file or folder of .txt/.md/.jsonl/.csv")
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if not p.is_dir() and not _hidden(p, path)):
                yield from _read_file(file, file.relative_to(path).as_posix(), report, columns)
        else:
            yield from _read_file(path, path.name, report, columns)


def _regular(path: Path, report: InputReport) -> bool:
    """Whether path is a regular file; a FIFO, socket or device is skipped (reading a FIFO would block)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        report.skip(str(path), f"cannot read ({exc.strerror})")
        return False
    if not stat.S_ISREG(mode):
        report.skip(str(path), "not a regular file (a FIFO, socket or device): pass files or folders of documents")
        return False
    return True


def _hidden(file: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in file.relative_to(root).parts)


def _read_file(path: Path, doc_id: str, report: InputReport, columns: TableColumns) -> Iterator[Document]:
    suffix = path.suffix.lower()
    if not _regular(path, report):
        return
    if suffix not in TEXT_SUFFIXES + TABLE_SUFFIXES:
        report.skip(str(path), f"unsupported file type '{suffix or path.name}' (read: .txt .md .jsonl .csv .tsv)")
        return
    text = _decode(path, report)
    if text is None:
        return
    if suffix == ".jsonl":
        yield from _counted(read_jsonl_text(text, str(path), report), report)
    elif suffix in (".csv", ".tsv"):
        yield from _counted(_read_table(text, str(path), "\t" if suffix == ".tsv" else ",", columns, report), report)
    else:
        yield from _counted(_text_document(doc_id, text, suffix, str(path), report), report)


def _counted(docs: Iterator[Document], report: InputReport) -> Iterator[Document]:
    for doc in docs:
        report.read += 1
        yield doc


def _decode(path: Path, report: InputReport) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        report.skip(str(path), f"cannot read ({exc.strerror})")
        return None
    if b"\x00" in raw[:8192]:
        report.skip(str(path), "binary file")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        report.warn(str(path), f"not valid UTF-8 at byte {exc.start}; undecodable bytes replaced")
        return raw.decode("utf-8", errors="replace")


def _text_document(doc_id: str, text: str, suffix: str, where: str, report: InputReport) -> Iterator[Document]:
    title = ""
    if suffix in (".md", ".markdown"):
        first, _, rest = text.lstrip().partition("\n")
        if first.startswith("# "):
            title, text = first[2:].strip(), rest
    body = text.strip()  # once: a copy of the whole text
    if not body and not title:
        report.skip(where, "empty document")
        return
    if not body:
        report.warn(where, "no text below its heading: indexed from its title alone")
    yield Document(doc_id, title, body)


def read_jsonl_text(text: str, where: str, report: InputReport) -> Iterator[Document]:
    """Documents of a BEIR corpus.jsonl (``_id``, ``title``, ``text``; other keys kept as metadata)."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            report.skip(f"{where}:{number}", f"not JSON ({exc.msg})")
            continue
        doc = _row_document(row, f"{where}:{number}", report, TableColumns(text="text", id="_id", title="title"))
        if doc is not None:
            yield doc


def _read_table(text: str, where: str, delimiter: str, columns: TableColumns, report: InputReport) -> Iterator[Document]:
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    if columns.text not in (reader.fieldnames or []):
        raise InputError(
            f"{where} has no column '{columns.text}' (columns: {', '.join(reader.fieldnames or [])}): "
            "choose one with --text-column"
        )
    for number, row in enumerate(reader, 2):
        doc = _row_document(row, f"{where}:{number}", report, columns, default_id=str(number - 2))
        if doc is not None:
            yield doc


def _row_document(
    row: Any, where: str, report: InputReport, columns: TableColumns, default_id: str | None = None
) -> Document | None:
    if not isinstance(row, dict):
        report.skip(where, "line is not a JSON object")
        return None
    doc_id = row.get(columns.id) if columns.id else default_id
    if doc_id is None and columns.id == "_id":
        doc_id = row.get("id")
    text, title = str(row.get(columns.text) or ""), str(row.get(columns.title or "") or "") if columns.title else ""
    if doc_id is None or str(doc_id) == "":
        report.skip(where, f"no '{columns.id}' id")
        return None
    if not text.strip() and not title.strip():
        report.skip(where, "empty document")
        return None
    if not text.strip():
        report.warn(where, f"document '{doc_id}' has no '{columns.text}': indexed from its title alone")
    used = {columns.id, columns.text, columns.title}
    return Document(str(doc_id), title.strip(), text.strip(), {k: v for k, v in row.items() if k not in used})


def read_texts(path: Path, text_column: str = "text") -> tuple[list[str], list[str]]:
    """(ids, texts) to embed: a .txt file gives one text per non-empty line, other inputs one per document."""
    if not path.exists():
        raise InputError(f"input {path} does not exist: pass a .txt (one text per line), .jsonl or .csv file")
    if path.is_file() and path.suffix.lower() == ".txt":
        report = InputReport()
        content = _decode(path, report)
        if content is None:
            raise InputError(f"cannot read {path}: {'; '.join(report.skipped)}")
        lines = [line.strip() for line in content.splitlines() if line.strip()]
        ids, texts = [str(i) for i in range(len(lines))], lines
    else:
        docs = list(read_documents([path], InputReport(), TableColumns(text=text_column)))
        ids, texts = [d.doc_id for d in docs], [f"{d.title} {d.text}".strip() for d in docs]
    if not texts:
        raise InputError(f"{path} holds no text to embed")
    return ids, texts
