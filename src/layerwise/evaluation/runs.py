"""Keeping evaluation runs: the summary in the database, TREC run files on request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from layerwise.evaluation.datasets import write_trec_run
from layerwise.evaluation.evaluation import Evaluation
from layerwise.storage.collection import Collection
from layerwise.storage.schema import EvalRunRow


def save_run(collection: Collection, evaluation: Evaluation) -> int:
    """Store config, versions and per-view metrics; return the run id."""
    with collection.store.sessions.begin() as s:
        row = EvalRunRow(collection_id=collection.id, config=evaluation.config, results=evaluation.to_dict())
        s.add(row)
        s.flush()
        return int(row.id)


def write_runs(evaluation: Evaluation, folder: Path) -> None:
    """Per-view TREC run files are written from the per-query rankings kept on the evaluation."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, run in evaluation.runs.items():
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        write_trec_run(folder / f"{safe}.run", run, safe)


def list_runs(collection: Collection) -> list[dict[str, Any]]:
    """Every stored evaluation run of a collection, newest first, as stored."""
    with collection.store.sessions() as s:
        rows = s.scalars(select(EvalRunRow).where(EvalRunRow.collection_id == collection.id).order_by(EvalRunRow.id.desc()))
        return [{"run_id": r.id, "created_at": r.created_at.isoformat(), **r.results} for r in rows]
