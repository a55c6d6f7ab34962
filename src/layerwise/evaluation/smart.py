"""The classic SMART test-collection format (Cranfield, CISI, MED, CACM) converted to BEIR.

Records start with ``.I <id>``; fields with a line holding only a dot and one capital
letter (``.T`` title, ``.A`` authors, ``.B`` source, ``.W`` text, others kept as metadata).
Options cover the family's differences without special cases:

- ``query_ids``: ``position`` numbers queries 1..n in file order (Cranfield's
  qrels do this), ``field`` keeps the ``.I`` number.
- ``grades``: ``as-is`` keeps the qrels' relevance values (CISI, MED, CACM give
  none, so every listed pair counts 1); ``cleverdon`` reads Cleverdon's scale
  where 1 is best and 5 (or -1) is of no interest, mapped to 4..1 and 0.
- qrels lines are ``query doc [grade ...]`` or TREC's ``query 0 doc grade``
  (recognised by a constant zero second column).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerwise.errors import InputError, UsageError
from layerwise.evaluation.datasets import write_beir

# A record starts with ".I <id>" (one token); a field starts with a line holding only a dot and a
# capital letter. A text line such as ".NET and Java are both used." is text, not a field.
_FIELD_RE = re.compile(r"^\.(?:(I)\s+(\S+)|([A-Z]))\s*$")
QUERY_IDS = ("position", "field")
GRADES = ("as-is", "cleverdon")


@dataclass
class Record:
    """One .I record: its id and its fields' text."""

    id: str
    fields: dict[str, str] = field(default_factory=dict)


def records(path: Path) -> Iterator[Record]:
    """Every record of a SMART file, fields joined with single spaces."""
    if not path.is_file():
        raise InputError(f"SMART file {path} does not exist")
    current: Record | None = None
    name = ""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _FIELD_RE.match(line.rstrip())
        if match and match.group(1) == "I":
            if current is not None:
                yield _tidy(current)
            current, name = Record(match.group(2).strip()), ""
        elif match and current is not None:
            name = match.group(3)
            current.fields.setdefault(name, "")
        elif current is not None and name:
            current.fields[name] += " " + line.strip()
    if current is not None:
        yield _tidy(current)


def _tidy(record: Record) -> Record:
    record.fields = {k: " ".join(v.split()) for k, v in record.fields.items()}
    return record


def read_documents(path: Path) -> list[dict]:
    docs = []
    for r in records(path):
        meta = {k: v for k, v in r.fields.items() if k not in ("T", "W")}
        docs.append({"_id": r.id, "title": r.fields.get("T", ""), "text": r.fields.get("W", ""), **{f"field_{k}": v for k, v in meta.items()}})
    if not docs:
        raise InputError(f"{path} holds no .I records: is it a SMART documents file?")
    return docs


def read_queries(path: Path, query_ids: str = "position") -> dict[str, str]:
    if query_ids not in QUERY_IDS:
        raise UsageError(f"unknown --query-ids '{query_ids}': use position or field")
    found = list(records(path))
    if not found:
        raise InputError(f"{path} holds no .I records: is it a SMART queries file?")
    return {(str(i) if query_ids == "position" else r.id): r.fields.get("W", "") for i, r in enumerate(found, 1)}


def read_qrels(path: Path, grades: str = "as-is") -> dict[str, dict[str, int]]:
    if grades not in GRADES:
        raise UsageError(f"unknown --grades '{grades}': use as-is or cleverdon")
    if not path.is_file():
        raise InputError(f"qrels file {path} does not exist")
    rows = [line.split() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    trec = all(len(r) == 4 and r[1] == "0" for r in rows)
    qrels: dict[str, dict[str, int]] = {}
    for number, parts in enumerate(rows, 1):
        if len(parts) < 2:
            raise InputError(f"{path}:{number}: a qrels line needs at least 'query doc'")
        query, doc, grade = (parts[0], parts[2], parts[3]) if trec else (parts[0], parts[1], parts[2] if len(parts) > 2 else "1")
        qrels.setdefault(str(int(query)) if query.isdigit() else query, {})[doc] = _grade(grade, grades, trec or len(parts) == 3)
    return qrels


def _grade(text: str, scale: str, graded: bool) -> int:
    try:
        value = int(float(text))
    except ValueError:
        return 1
    if scale == "cleverdon":
        return 5 - value if 1 <= value <= 4 else 0
    return value if graded else 1


def convert(documents: Path, queries: Path, qrels: Path, output: Path, query_ids: str = "position",
            grades: str = "as-is") -> dict[str, Any]:
    """Read a SMART collection and write it as a BEIR folder; return counts and warnings."""
    docs = read_documents(documents)
    found_queries = read_queries(queries, query_ids)
    judged = read_qrels(qrels, grades)
    unknown = sorted(set(judged) - set(found_queries), key=lambda q: (len(q), q))
    warnings = [f"qrels name {len(unknown)} queries not in {queries} (first: {unknown[:5]}); check --query-ids"] if unknown else []
    write_beir(output, docs, found_queries, judged)
    return {"output": str(output), "documents": len(docs), "queries": len(found_queries),
            "judgements": sum(len(v) for v in judged.values()), "judged_queries": len(judged), "warnings": warnings}
