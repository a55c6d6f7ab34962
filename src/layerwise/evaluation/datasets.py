"""Labelled-query formats: BEIR queries and qrels, TREC qrels, TREC run files out."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from pathlib import Path

from layerwise.errors import InputError
from layerwise.evaluation.metrics import ranked


def read_queries(path: Path) -> dict[str, str]:
    """BEIR queries.jsonl (``_id``, ``text``) or a TSV of ``id<TAB>text``."""
    if not path.is_file():
        raise InputError(f"queries file {path} does not exist: pass a BEIR queries.jsonl or an id<TAB>text file")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    out: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                row = json.loads(line)
                out[str(row.get("_id", row.get("id")))] = str(row["text"])
            except (json.JSONDecodeError, KeyError, AttributeError):
                raise InputError(f"{path}:{number} is not a BEIR query line with _id and text") from None
        else:
            qid, _, text = line.partition("\t")
            out[qid.strip()] = text.strip()
    return out


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV (header ``query-id corpus-id score``) or TREC qrels (``qid iter docid rel``).

    A line with a tab is split on tabs only, so ids with spaces survive
    (``q1<TAB>my notes.md<TAB>1``). A line without tabs is TREC's: the query is the
    first field, the iteration the second, the relevance the last, and the document
    id everything between them (spaces included); ``query doc rel`` with no tab and
    exactly three fields is read as BEIR.
    """
    if not path.is_file():
        raise InputError(f"qrels file {path} does not exist: pass a BEIR qrels .tsv or a TREC qrels file")
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = _qrels_fields(line)
        if not parts or (number == 1 and not _is_int(parts[-1])):
            continue  # blank line or header
        if len(parts) == 3:
            query, doc, rel = parts
        elif len(parts) == 4:
            query, _, doc, rel = parts
        else:
            raise InputError(f"{path}:{number} has {len(parts)} columns: qrels lines are 'query<TAB>doc<TAB>rel' or 'query 0 doc rel'")
        if not _is_int(rel):
            raise InputError(f"{path}:{number}: relevance '{rel}' is not an integer")
        qrels.setdefault(query, {})[doc] = int(rel)
    if not qrels:
        raise InputError(f"{path} holds no judgements")
    return qrels


def _qrels_fields(line: str) -> list[str]:
    """The fields of one qrels line: tab-separated where it has a tab, else TREC's columns (the doc id may hold spaces)."""
    if "\t" in line:
        return [field.strip() for field in line.rstrip("\r\n").split("\t")]
    tokens = line.split()
    if len(tokens) <= 3:
        return tokens
    head = line.strip().split(maxsplit=2)  # query, iteration, "doc ... rel"
    doc, _, rel = head[2].rpartition(" ")
    return [head[0], head[1], doc.strip(), rel]


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def write_trec_run(path: Path, run: Mapping[str, Mapping[str, float]], tag: str) -> int:
    """A TREC run file: ``qid Q0 docid rank score tag``, best first; returns how many ids were percent-encoded.

    TREC files are whitespace-separated, so an id with whitespace cannot be written
    as is. When any id of the run has some, every id of the file is percent-encoded
    (``%`` -> ``%25``, space -> ``%20``, tab -> ``%09``, ...), reversibly, and the
    count is returned so the caller can say so.
    """
    ids = set(run) | {d for scores in run.values() for d in scores}
    encode = trec_id if any(_WHITESPACE.search(i) for i in ids) else str
    with open(path, "w", encoding="utf-8") as f:
        for query, scores in run.items():
            for rank, doc in enumerate(ranked(scores), 1):
                f.write(f"{encode(query)} Q0 {encode(doc)} {rank} {scores[doc]:.6f} {tag}\n")
    return sum(1 for i in ids if _WHITESPACE.search(i)) if encode is trec_id else 0


_WHITESPACE = re.compile(r"\s")


def trec_id(value: str) -> str:
    """An id made safe for a whitespace-separated file: '%' and every whitespace character percent-encoded."""
    return re.sub(r"[%\s]", lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), value)


def write_beir(folder: Path, corpus: list[dict], queries: dict[str, str], qrels: Mapping[str, Mapping[str, int]], split: str = "test") -> None:
    """A BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for doc in corpus:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with open(folder / "qrels" / f"{split}.tsv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["query-id", "corpus-id", "score"])
        for qid, judged in qrels.items():
            for doc, rel in judged.items():
                writer.writerow([qid, doc, rel])
