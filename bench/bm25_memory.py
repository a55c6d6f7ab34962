"""Whole-document BM25 in-process: FTS5 against the in-memory index, side by side in one run.

    python bench/bm25_memory.py --db /work/homes/scifact-v3/layerwise.db --collection-id 1 \
        --queries ../shared/data/scifact/queries.jsonl --qrels ../shared/data/scifact/qrels/test.tsv \
        --out bench/results/bm25_memory.json

For each query (the qrels' test queries) and each k, times ``bm25.search_documents``
(FTS5) and the searcher's in-memory path (``searcher._bm25_documents`` with the built
index) alternately, each in its own session as a searcher opens one per call, and
checks that both return the same keys, float32 scores and first rows. Reports the p50
and p90 of each, the build time and the index's memory (its arrays, and what
tracemalloc saw a second build retain, the term dictionary included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from layerwise.search.searcher import _bm25_documents
from layerwise.storage import bm25, bm25_memory


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--collection-id", type=int, default=1)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--qrels", required=True)
    parser.add_argument("--k", type=int, nargs="+", default=[100, 10])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    wanted = {line.split("\t")[0] for line in Path(args.qrels).read_text().splitlines()[1:]}
    queries = [q["text"] for line in Path(args.queries).read_text().splitlines() if (q := json.loads(line))["_id"] in wanted]
    sessions = sessionmaker(create_engine(f"sqlite:///{args.db}"))
    cid = args.collection_id

    start = time.perf_counter()
    with sessions() as session:
        index = bm25_memory.build(session, cid)
    build_s = time.perf_counter() - start
    tracemalloc.start()  # a second build, traced (tracemalloc slows it: not timed)
    before = tracemalloc.get_traced_memory()[0]
    with sessions() as session:
        index = bm25_memory.build(session, cid)
    retained = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert index is not None
    bm25_memory.query_phrases(" ".join(queries))  # the word cache warm, as a server's is after a while
    with sessions() as session:  # warm both
        for q in queries[:20]:
            bm25.search_documents(session, cid, q, 10)
            _bm25_documents(index, session, cid, q, 10)

    report = {"load_average_before": os.getloadavg(), "queries": len(queries), "documents": len(index.keys), "postings": len(index.docs), "terms": len(index.terms),
              "build_s": round(build_s, 3), "index_arrays_mb": round(index.nbytes / 1e6, 2),
              "retained_mb": round(retained / 1e6, 2), "fallbacks": sum(bm25_memory.query_phrases(q) is None for q in queries)}
    for k in args.k:
        fts, memory, differ = [], [], 0
        for q in queries:
            t0 = time.perf_counter()
            with sessions() as session:
                a = bm25.search_documents(session, cid, q, k)
            t1 = time.perf_counter()
            with sessions() as session:
                b = _bm25_documents(index, session, cid, q, k)
            t2 = time.perf_counter()
            fts.append((t1 - t0) * 1e3)
            memory.append((t2 - t1) * 1e3)
            differ += not all(np.array_equal(x, y) for x, y in zip(a, b))
        report[f"k={k}"] = {"fts5_p50_ms": round(statistics.median(fts), 3), "fts5_p90_ms": round(percentile(fts, 90), 3),
                            "memory_p50_ms": round(statistics.median(memory), 3),
                            "memory_p90_ms": round(percentile(memory, 90), 3),
                            "speedup_p50": round(statistics.median(fts) / statistics.median(memory), 1),
                            "queries_differing": differ}
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
