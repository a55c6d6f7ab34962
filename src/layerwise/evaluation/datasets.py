"""Labelled-query formats: BEIR queries and qrels, TREC qrels, TREC run files out."""

from __future__ import annotations

import csv
import json
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
    """BEIR qrels TSV (header ``query-id corpus-id score``) or TREC qrels (``qid iter docid rel``)."""
    if not path.is_file():
        raise InputError(f"qrels file {path} does not exist: pass a BEIR qrels .tsv or a TREC qrels file")
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts or (number == 1 and not _is_int(parts[-1])):
            continue  # blank line or header
        if len(parts) == 3:
            query, doc, rel = parts
        elif len(parts) == 4:
            query, _, doc, rel = parts
        else:
            raise InputError(f"{path}:{number} has {len(parts)} columns: qrels lines are 'query doc rel' or 'query 0 doc rel'")
        if not _is_int(rel):
            raise InputError(f"{path}:{number}: relevance '{rel}' is not an integer")
        qrels.setdefault(query, {})[doc] = int(rel)
    if not qrels:
        raise InputError(f"{path} holds no judgements")
    return qrels


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def write_trec_run(path: Path, run: Mapping[str, Mapping[str, float]], tag: str) -> None:
    """A TREC run file: ``qid Q0 docid rank score tag``, best first."""
    with open(path, "w", encoding="utf-8") as f:
        for query, scores in run.items():
            for rank, doc in enumerate(ranked(scores), 1):
                f.write(f"{query} Q0 {doc} {rank} {scores[doc]:.6f} {tag}\n")


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
