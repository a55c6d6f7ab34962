"""Query latency: one query searched on every layer view (7 for the default model), encoding included.

    layerwise index ../shared/data/scifact/corpus.jsonl --collection scifact --max-passages 1
    python bench/latency.py --collection scifact --queries ../shared/data/scifact/queries.jsonl

Reports p50/p99 over the queries (after warm-up), the thread count and the CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--home")
    parser.add_argument("--db")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--layer", default="all")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from layerwise.evaluation import datasets
    from layerwise.api import Library

    kb = Library(args.home, args.db, device="cpu").open(args.collection)
    collection, searcher = kb.collection, kb.searcher()
    views = list(searcher.plan([args.layer]).dense.values())
    specs = [args.layer]
    queries = list(datasets.read_queries(args.queries).values())[: args.n]
    for q in queries[:20]:
        searcher.search(q, specs, args.k)
    times, encode_times = [], []
    for q in queries:
        t0 = time.perf_counter()
        searcher.encode([q], views)
        encode_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        searcher.search(q, specs, args.k)
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1000
    result = {
        "collection": args.collection, "passages": int(len(collection.live_rows())), "views": [v.name for v in views],
        "queries": len(queries), "threads": torch.get_num_threads(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()),
        "encode_p50_ms": 1000 * statistics.median(encode_times),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
