"""Scale: 100k real passages and 1 M passages x 7 hidden states through the real storage and index code.

    nice python bench/scale.py --data /work/scale-data --out bench/results/scale.json

Stages (each measured step runs in its own child process, so its peak RSS is its own):

- corpus: 100,000 distinct real passages: the sentences of SciFact's abstracts and
  titles, STS-B and (to fill up) consecutive SciFact sentence pairs.
- index100k: `layerwise index` of that corpus (the encoder, every layer stored,
  the default index type), timed, peak RSS.
- build100k, build1m: 100,000 and 1,000,000 passages written through
  `Collection.commit_batch` (the same append path, no encoder): the real vectors
  of index100k, then perturbed copies of them (v + 0.7 |v| g / sqrt(d),
  g ~ N(0, I) per layer, rescaled to |v|: cosine ~0.82 to the original) up to
  the size, timed, peak RSS.
- index100kp, index1m: every view's index built from the stored vectors (IVF-PQ
  at these sizes) in a process of its own, each view timed, peak RSS: the
  indexing memory target.
- measure: a long-running searcher over each collection (the torch query encoder, as a server
  uses): warm p50/p99 of one view (and its phases: encoding, index search, rescoring, SQL)
  and of all 7 (query encoding included, and alone), its RSS; ANN recall@10 of every layer
  against exact search over the same rows (100 SciFact queries);
  cold CLI `search` of one view and of all (a new process each, median of 3).
- sweep1m: recall@10 and time of each IVF-PQ view's search over a grid of probe budgets,
  list caps and candidate counts (what storage/ann.py's defaults were chosen from).
- peerq: LanceDB's query times on the tables peer and peer48 built, again (no rebuild), to
  compare them with layerwise's at the same load.
- churn (1 M): delete 1% of the documents and add them back with the same
  vectors; time against a full build; exact results must equal those before.
- peer, peer48 (1 M, layer 6): LanceDB (IVF-PQ with d/4- or d/8-byte codes, refine) on the same
  unit vectors: add time, index time, query p50, recall@10, disk bytes.

Disk bytes per passage are read from the files. `uptime` load and the CPU are
recorded with every figure: on a shared 2-core machine, contention moves them.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")
SIGMA = 0.7
QUERIES = 100


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return {"cpu": cpu, "nproc": os.cpu_count(), "load": os.getloadavg(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}


# -- corpus ----------------------------------------------------------------------------------------
def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 5]


def corpus(path: Path, n: int = 100_000) -> None:
    """n distinct real passages, one document each."""
    seen: dict[str, None] = {}
    pairs: list[str] = []
    with open(DATA / "scifact" / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            parts = sentences(doc["text"])
            seen.update(dict.fromkeys([doc["title"].strip(), *parts]))
            pairs += [f"{a} {b}" for a, b in zip(parts, parts[1:])]
    for name in ("sts-train.csv", "sts-dev.csv", "sts-test.csv"):
        with open(DATA / "stsbenchmark" / name, encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                seen.update(dict.fromkeys(s.strip() for s in row[5:7] if s.strip()))
    texts = [t for t in seen if t][:n]
    texts += [p for p in pairs if p not in seen][: n - len(texts)]
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"_id": f"p{i}", "title": "", "text": t}) + "\n")


def queries(n: int = QUERIES) -> list[str]:
    with open(DATA / "scifact" / "queries.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f][:n]


# -- running steps in child processes -----------------------------------------------------------------
LATENCY_STEPS = ("measure", "sweep", "peer_queries")  # run with OpenMP's default wait policy, as a server runs


def child(args: list[str], env: dict[str, str] | None = None, passive: bool = True) -> tuple[float, float, str]:
    """Run a command; return (seconds, its own peak RSS in MB, stdout).

    ``passive``: OpenMP threads sleep between parallel regions (OMP_WAIT_POLICY=PASSIVE), which keeps builds from
    spinning on a shared machine; latency steps run without it: a sleeping thread pool doubled the torch query
    pass on two threads (11-12 ms against 5 ms for SciFact queries, bench/results/scale_fastscan.json)."""
    started = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **({"OMP_WAIT_POLICY": "PASSIVE"} if passive else {}), **(env or {})}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{args} failed with {proc.returncode}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, out


def step(name: str, *extra: str) -> tuple[float, float, dict[str, Any]]:
    seconds, rss, out = child([sys.executable, __file__, "--step", name, *extra], passive=name not in LATENCY_STEPS)
    return seconds, rss, json.loads(out.strip().splitlines()[-1]) if out.strip() else {}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "layerwise", *args]


# -- steps (run inside the child) -------------------------------------------------------------------
def status() -> dict[str, float]:
    """This process's memory now: resident (anonymous and file-backed) and peak, MB."""
    fields = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def build(home: str, source_home: str, name: str, total: str) -> dict[str, Any]:
    """Write the real vectors and perturbed copies of them (total rows) through commit_batch, timed (no index yet)."""
    from layerwise.storage.collection import Store
    from layerwise.types import Document, Passage

    source = Store(home=source_home).open("s100k")
    texts = source.passage_spans()
    rows = texts[0]
    layers = [source.layer_vectors(i) for i in range(source.num_states)]
    target_store = Store(home=home)
    target = target_store.create(name, source.identity)
    target.set_index_type("auto")  # a new collection's default is flat; auto is IVF-PQ from 50k passages
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    wanted, written, commit = int(total), 0, 0.0
    with target.writing():
        target.prepare_write()
        for copy in range(-(-wanted // len(rows))):
            for start in range(0, len(rows), 10_000):
                part = rows[start : start + min(10_000, wanted - written)]
                if not len(part):
                    break
                written += len(part)
                details = source.passages(part.tolist())
                raw = np.stack([np.asarray(m[part], dtype=np.float32) for m in layers], axis=1)  # (n, 7, d)
                vectors = raw if copy == 0 else perturb(raw, rng)
                docs = [Document(f"r{int(r)}-{copy}", "", details[int(r)].text) for r in part]
                passages = [[Passage(0, d.text, 0, len(d.text))] for d in docs]
                t0 = time.perf_counter()
                target.commit_batch(docs, passages, vectors)
                commit += time.perf_counter() - t0
    appended = time.perf_counter() - started
    return {"append_seconds": appended, "commit_batch_seconds": commit, "rows_per_second": written / appended,
            "rss": status(), "passages": written, "real_passages": len(rows), "sigma": SIGMA}


def build_indices(home: str, name: str, kind: str, resume: str = "") -> dict[str, Any]:
    """Build every view's index of an existing collection from its stored vectors, each timed (resume: only missing ones)."""
    from layerwise.storage import ann
    from layerwise.storage.collection import Store
    from layerwise.storage.rowmap import RowState
    from layerwise.storage.views import all_views

    collection = Store(home=home).open(name)
    builds = {}
    with collection.writing():
        collection.set_index_type(kind)
        state = RowState(collection, collection.vector_rows())
        for view in all_views(collection):
            t0 = time.perf_counter()
            done = ann.update(collection, view, state, rebuild=not resume)
            builds[view.name] = time.perf_counter() - t0 if done == "built" else None
        collection.mark_indexed()
    return {"kind": kind, "build_seconds": builds, "rss": status()}


def perturb(raw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each vector moved by SIGMA |v| g / sqrt(d) and rescaled to its own norm."""
    norms = np.linalg.norm(raw, axis=2, keepdims=True)  # (n, 7, 1)
    noisy = raw + SIGMA * norms * rng.standard_normal(raw.shape).astype(np.float32) / np.sqrt(raw.shape[2])
    return (noisy * norms / np.maximum(np.linalg.norm(noisy, axis=2, keepdims=True), 1e-12)).astype(np.float32)


def measure(home: str, name: str) -> dict[str, Any]:
    """A long-running searcher: warm latencies, RSS, and ANN recall@10 against exact per layer."""
    from layerwise.api import Library
    from layerwise.storage.exact import ExactIndex

    kb = Library(home, device="cpu", query_encoder="full").open(name)  # a long-running searcher: the torch query pass
    searcher = kb.searcher()
    texts = queries()
    for q in texts[:10]:
        kb.search_views(q, ["all"], 10)
    one, every, one_cpu, every_cpu = [], [], [], []
    phases: dict[str, list[float]] = {}
    for q in texts:
        t0, c0 = time.perf_counter(), time.process_time()
        with timing(phases):
            kb.search_views(q, ["-1"], 10)
        t1, c1 = time.perf_counter(), time.process_time()
        kb.search_views(q, ["all"], 10)
        every.append(time.perf_counter() - t1)
        every_cpu.append(time.process_time() - c1)
        one.append(t1 - t0)
        one_cpu.append(c1 - c0)
    rss_after_search = status()
    encoder = kb.library.encoder_for(kb.collection.identity) if hasattr(kb, "library") else None
    encode = []
    if encoder is not None:
        for q in texts:
            t0 = time.perf_counter()
            encoder.encode([q], list(range(kb.collection.num_states)))
            encode.append(time.perf_counter() - t0)
    plan = searcher.plan(["all"])
    views = list(plan.dense.values())
    embeddings = searcher.encode(texts, views)
    recall, search_ms, search_cpu_ms, kinds = {}, {}, {}, {}
    for view in views:
        index = searcher.index(view)
        vectors = view.of_query(embeddings)
        t0, c0 = time.perf_counter(), time.process_time()
        for row in vectors:
            index.search(row[None, :], 40)  # the passage depth a top-10 search asks for
        search_ms[view.name] = 1000 * (time.perf_counter() - t0) / len(vectors)
        search_cpu_ms[view.name] = 1000 * (time.process_time() - c0) / len(vectors)
        kinds[view.name] = index.kind
        _, found = index.search(vectors, 10)
        _, truth = ExactIndex(kb.collection, view, searcher.row_map).search(vectors, 10)
        recall[view.name] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found.tolist(), truth.tolist())]))
        if view.name == "layer6":
            np.save(Path(home) / "truth6.npy", truth)
            np.save(Path(home) / "queries6.npy", vectors)
    return {
        "warm_one_view_ms": percentiles(one), "warm_all_views_ms": percentiles(every),
        "warm_one_view_phases_ms": {k: percentiles(v) for k, v in phases.items()},
        "query_encoding_ms": percentiles(encode) if encode else None, "query_encoder": type(encoder).__name__,
        "warm_one_view_cpu_ms": percentiles(one_cpu), "warm_all_views_cpu_ms": percentiles(every_cpu),
        "index_search_ms_per_query": search_ms, "index_search_cpu_ms_per_query": search_cpu_ms, "kinds": kinds, "recall_at_10": recall,
        "rss_after_searches": rss_after_search, "rss_end": status(), "queries": len(texts),
    }


@contextlib.contextmanager
def timing(phases: dict[str, list[float]]) -> Iterator[None]:
    """Wall time of a one-view search's phases, appended to ``phases``: query encoding, the index search (IVF scan and
    exact rescoring), collapsing passages to documents, the top k's passage details (SQL), and what else the search
    spends (the collection's state check, the plan, hits)."""
    from layerwise.search.ranking import Ranking
    from layerwise.search.searcher import Searcher
    from layerwise.storage import ann, exact

    wrapped = [(Searcher, "encode", "encode"), (ann.AnnIndex, "search", "index_search"), (exact.ExactIndex, "search", "index_search"),
               (exact.ExactIndex, "rescore", "rescore"),
               (Searcher, "details", "details_sql")]
    spent: dict[str, float] = {}
    originals = []

    def wrap(owner: Any, attr: str, label: str) -> None:
        original = owner.__dict__[attr]
        originals.append((owner, attr, original))

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - t

        setattr(owner, attr, timed)

    for owner, attr, label in wrapped:
        wrap(owner, attr, label)
    collapse = Ranking.__dict__["from_passages"]
    originals.append((Ranking, "from_passages", collapse))

    def from_passages(cls: Any, *args: Any) -> Any:
        t = time.perf_counter()
        try:
            return collapse.__func__(cls, *args)
        finally:
            spent["collapse"] = spent.get("collapse", 0.0) + time.perf_counter() - t

    Ranking.from_passages = classmethod(from_passages)
    started = time.perf_counter()
    try:
        yield
    finally:
        total = time.perf_counter() - started
        for owner, attr, original in originals:
            setattr(owner, attr, original)
        spent["other"] = total - sum(v for k, v in spent.items() if k != "rescore")  # rescore is inside index_search
        for label, seconds in spent.items():
            phases.setdefault(label, []).append(seconds)


def sweep(home: str, name: str, budgets: str = "0.2,0.3,0.4", probes: str = "12,6", candidates: str = "512,1024,2048,4096") -> dict[str, Any]:
    """Recall@10 and time of every IVF-PQ view's search under other probe budgets, list caps (K / each) and
    candidate counts than the defaults (storage/ann.py): what the defaults were chosen from."""
    import itertools

    from layerwise.api import Library
    from layerwise.storage import ann
    from layerwise.storage.exact import ExactIndex

    kb = Library(home, device="cpu", query_encoder="full").open(name)
    searcher = kb.searcher()
    texts = queries()
    views = list(searcher.plan(["all"]).dense.values())
    embeddings = searcher.encode(texts, views)
    defaults = ann.PROBE_BUDGET, ann.MIN_CANDIDATES
    out: dict[str, Any] = {"defaults": {"budget": ann.PROBE_BUDGET, "candidates": ann.MIN_CANDIDATES}, "views": {}}
    try:
        for view in views:
            index = searcher.index(view)
            if getattr(index, "kind", "") != "ivfpq":
                continue
            vectors = view.of_query(embeddings)
            _, truth = ExactIndex(kb.collection, view, searcher.row_map).search(vectors, 10)
            default_probe, rows = index.max_probe, []
            for budget, divisor, wanted in itertools.product(*(map(float, budgets.split(",")), map(int, probes.split(",")),
                                                               map(int, candidates.split(",")))):
                ann.PROBE_BUDGET, ann.MIN_CANDIDATES, index.max_probe = budget, wanted, max(1, index.ivf.nlist // divisor)
                for row in vectors:  # warm: the rows this setting rescores are paged in
                    index.search(row[None, :], 10)
                times, found = [], []
                for row in vectors:
                    t0 = time.perf_counter()
                    found.append(index.search(row[None, :], 10)[1][0])
                    times.append(time.perf_counter() - t0)
                recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(np.asarray(found).tolist(), truth.tolist())]))
                rows.append({"budget": budget, "max_probe": index.max_probe, "candidates": wanted, "recall_at_10": recall,
                             "ms": percentiles(times)["p50"]})
            index.max_probe = default_probe
            out["views"][view.name] = rows
    finally:
        ann.PROBE_BUDGET, ann.MIN_CANDIDATES = defaults
    return out


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean())}


def churn(home: str, name: str, fraction: float = 0.01) -> dict[str, Any]:
    """Delete a fraction of the documents, add them back with the same vectors; exact results must not change."""
    from layerwise.api import Library
    from layerwise.storage.exact import ExactIndex
    from layerwise.storage.views import update_all
    from layerwise.types import Document, Passage

    kb = Library(home, device="cpu").open(name)
    collection = kb.collection
    searcher = kb.searcher()
    texts = queries(20)
    views = [v for v in searcher.plan(["0", "-1"]).dense.values()]
    embeddings = searcher.encode(texts, views)
    before = exact_results(kb, views, embeddings, ExactIndex)
    rows, doc_ids, _, _ = collection.passage_spans()
    picks = np.sort(np.random.default_rng(1).choice(len(rows), size=int(len(rows) * fraction), replace=False))
    chosen_rows = rows[picks]
    details = collection.passages(chosen_rows.tolist())
    vectors = np.stack([np.asarray(collection.layer_vectors(i)[chosen_rows], dtype=np.float32) for i in range(collection.num_states)], axis=1)
    docs = [Document(doc_ids[p], "", details[int(r)].text) for p, r in zip(picks.tolist(), chosen_rows.tolist())]
    t0 = time.perf_counter()
    kb.delete([d.doc_id for d in docs])
    deleted = time.perf_counter() - t0
    t1 = time.perf_counter()
    with collection.writing():
        collection.prepare_write()
        for start in range(0, len(docs), 2_000):
            part = docs[start : start + 2_000]
            collection.commit_batch(part, [[Passage(0, d.text, 0, len(d.text))] for d in part], vectors[start : start + 2_000])
        update_all(collection)
    readded = time.perf_counter() - t1
    after = exact_results(Library(home, device="cpu").open(name), views, embeddings, ExactIndex)
    same = before == after
    return {"documents": len(docs), "delete_seconds": deleted, "readd_seconds": readded, "exact_results_identical": same,
            "rss": status()}


def exact_results(kb: Any, views: list[Any], embeddings: Any, exact_index: Any) -> dict[str, list[list[tuple[str, float]]]]:
    """Exact top-10 documents (id, score rounded to 1e-6) of every query under every view."""
    searcher = kb.searcher()
    names = searcher.doc_ids
    out = {}
    for view in views:
        from layerwise.search.ranking import Ranking

        scores, rows = exact_index(kb.collection, view, searcher.row_map).search(view.of_query(embeddings), 60)
        rankings = [Ranking.from_passages(r, s, searcher.row_map).top(10) for r, s in zip(rows, scores)]
        out[view.name] = [[(names[d], round(float(s), 6)) for d, s in zip(r.docs.tolist(), r.scores.tolist())] for r in rankings]
    return out


def peer(home: str, name: str, lance_dir: str, divisor: str = "4") -> dict[str, Any]:
    """LanceDB on the same unit vectors of layer 6: add, IVF-PQ index, query p50, recall@10 against exact, disk."""
    import lancedb
    import pyarrow as pa

    from layerwise.storage.collection import Store
    from layerwise.storage.rowmap import RowState

    collection = Store(home=home).open(name)
    state = RowState(collection, collection.vector_rows())
    mapped = collection.layer_vectors(6)
    db = lancedb.connect(lance_dir)
    d = mapped.shape[1]
    t0 = time.perf_counter()
    table = None
    for start in range(0, len(state.live), 100_000):
        rows = state.live[start : start + 100_000]
        unit = np.asarray(mapped[rows], dtype=np.float32)
        unit /= np.linalg.norm(unit, axis=1, keepdims=True)
        batch = pa.table({"id": pa.array(rows), "vector": pa.FixedSizeListArray.from_arrays(pa.array(unit.ravel()), d)})
        table = db.create_table("layer6", batch) if table is None else table
        if start:
            table.add(batch)
    added = time.perf_counter() - t0
    t1 = time.perf_counter()
    table.create_index(metric="dot", vector_column_name="vector", num_partitions=int(np.sqrt(len(state.live))), num_sub_vectors=d // int(divisor))  # d/4 or d/8 bytes
    indexed = time.perf_counter() - t1
    queries_ = np.load(Path(home) / "queries6.npy")
    truth = np.load(Path(home) / "truth6.npy")
    unitq = queries_ / np.linalg.norm(queries_, axis=1, keepdims=True)
    out = {"add_seconds": added, "index_seconds": indexed, "pq_bytes": d // int(divisor), "settings": {}}
    for nprobes, refine in ((int(np.sqrt(len(state.live))) // 16, 4), (int(np.sqrt(len(state.live))) // 8, 10)):
        times, cpu, found = [], [], []
        for q in unitq:
            t, c = time.perf_counter(), time.process_time()
            hits = table.search(q).metric("dot").nprobes(nprobes).refine_factor(refine).limit(10).select(["id", "_distance"]).to_arrow()
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            found.append(hits.column("id").to_pylist())
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth.tolist())]))
        out["settings"][f"nprobes={nprobes},refine={refine}"] = {"query_ms": percentiles(times), "query_cpu_ms": percentiles(cpu),
                                                                 "recall_at_10": recall}
    out["disk_bytes"] = sum(p.stat().st_size for p in Path(lance_dir).rglob("*") if p.is_file())
    out["vectors"] = len(state.live)
    out["rss"] = status()
    return out


def peer_queries(home: str, lance_dir: str) -> dict[str, Any]:
    """LanceDB's query time on a table the peer stage built (no rebuild): the same settings and queries, timed at
    this run's load beside layerwise's. Recall is not measured: the table holds the rows of its build, which
    later churn runs renumbered."""
    import lancedb

    table = lancedb.connect(lance_dir).open_table("layer6")
    queries_ = np.load(Path(home) / "queries6.npy")
    unitq = queries_ / np.linalg.norm(queries_, axis=1, keepdims=True)
    rows = table.count_rows()
    out: dict[str, Any] = {"vectors": rows, "settings": {}}
    for nprobes, refine in ((int(np.sqrt(rows)) // 16, 4), (int(np.sqrt(rows)) // 8, 10)):
        def search(q: np.ndarray, nprobes: int = nprobes, refine: int = refine) -> Any:
            return table.search(q).metric("dot").nprobes(nprobes).refine_factor(refine).limit(10).select(["id", "_distance"]).to_arrow()

        for q in unitq[:10]:
            search(q)
        times, cpu = [], []
        for q in unitq:
            t, c = time.perf_counter(), time.process_time()
            search(q)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out["settings"][f"nprobes={nprobes},refine={refine}"] = {"query_ms": percentiles(times), "query_cpu_ms": percentiles(cpu)}
    return out


def disk(home: str, name: str) -> dict[str, Any]:
    from layerwise.api import Library

    info = Library(home).open(name).info()
    return {k: info[k] for k in ("passages", "vector_bytes", "row_file_bytes", "index_bytes", "bytes_per_passage")} | {
        "database_bytes": info.get("database_bytes"), "views": {v["name"]: v["index_bytes"] for v in info["views"]}}


def run_step(name: str, args: list[str]) -> None:
    result = {"build": lambda: build(*args), "index": lambda: build_indices(*args), "measure": lambda: measure(*args), "churn": lambda: churn(*args),
              "peer": lambda: peer(*args), "disk": lambda: disk(*args), "sweep": lambda: sweep(*args), "peer_queries": lambda: peer_queries(*args)}[name]()
    print(json.dumps(result))


# -- orchestration -----------------------------------------------------------------------------------
def cold_cli(home: str, name: str, view: str, reps: int = 2) -> dict[str, Any]:
    times = []
    for q in queries(reps):
        seconds, rss, _ = child(cli("search", name, q, "--view", view, "--home", home, "--json"))
        times.append(seconds)
    return {"median_s": statistics.median(times), "runs_s": times, "peak_rss_mb_last": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/work/scale-data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    parser.add_argument("--stages", default="corpus,index100k,build100k,index100kp,measure100k,build1m,index1m,measure1m,churn,peer")
    parser.add_argument("--index-extra", default="", help="extra arguments for `layerwise index` at 100k, e.g. '--dtype bf16'")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.step:
        run_step(args.step, rest)
        return
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    h100, h1m = str(data / "home100k"), str(data / "home1m")  # home100k: the real encodings; home100kp: 100k built from them
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for stage in args.stages.split(","):
        results.setdefault(stage, {})["machine_before"] = machine()
        results[stage].update(run_stage(stage, data, h100, h1m, args.index_extra.split()))
        results[stage]["machine_after"] = machine()
        args.out.write_text(json.dumps(results, indent=2))
        print(stage, json.dumps(results[stage])[:400], flush=True)


def run_stage(stage: str, data: Path, h100: str, h1m: str, index_extra: list[str]) -> dict[str, Any]:
    if stage == "corpus":
        corpus(data / "corpus100k.jsonl")
        return {"passages": sum(1 for _ in open(data / "corpus100k.jsonl"))}
    if stage == "index100k":
        seconds, rss, out = child(cli("index", str(data / "corpus100k.jsonl"), "-c", "s100k", "--home", h100, "--json", *index_extra))
        return {"extra": index_extra, "seconds": seconds, "peak_rss_mb": rss, "summary": json.loads(out), "disk": step("disk", h100, "s100k")[2]}
    if stage in ("measure100k", "measure1m"):
        home, name = (h100 + "p", "p100k") if stage == "measure100k" else (h1m, "s1m")
        seconds, rss, found = step("measure", home, name)
        return {**found, "peak_rss_mb": rss, "cold_cli_one_view": cold_cli(home, name, "-1"), "cold_cli_all": cold_cli(home, name, "all"),
                "disk": step("disk", home, name)[2]}
    if stage in ("build100k", "build1m"):
        home, name, total = (h100 + "p", "p100k", "100000") if stage == "build100k" else (h1m, "s1m", "1000000")
        seconds, rss, found = step("build", home, h100, name, total)
        return {**found, "seconds": seconds, "peak_rss_mb": rss}
    if stage in ("index100kp", "index1m"):
        home, name = (h100 + "p", "p100k") if stage == "index100kp" else (h1m, "s1m")
        seconds, rss, found = step("index", home, name, "auto", *(["resume"] if os.environ.get("SCALE_RESUME") else []))
        return {**found, "seconds": seconds, "peak_rss_mb": rss, "disk": step("disk", home, name)[2]}
    if stage == "sweep1m":
        seconds, rss, found = step("sweep", h1m, "s1m")
        return {**found, "seconds": seconds}
    if stage == "churn":
        seconds, rss, found = step("churn", h1m, "s1m")
        return {**found, "peak_rss_mb": rss}
    if stage == "peerq":  # the query times of both peer tables again, at this run's load (no rebuild)
        return {str(divisor): step("peer_queries", h1m, str(data / folder))[2] for folder, divisor in (("lance", 4), ("lance48", 8))}
    if stage in ("peer", "peer48"):  # peer: LanceDB with 96-byte codes (layerwise's earlier code size); peer48: 48-byte codes
        folder, divisor = (data / "lance", "4") if stage == "peer" else (data / "lance48", "8")
        shutil.rmtree(folder, ignore_errors=True)
        seconds, rss, found = step("peer", h1m, "s1m", str(folder), divisor)
        return {**found, "peak_rss_mb": rss}
    raise SystemExit(f"unknown stage {stage}")


if __name__ == "__main__":
    main()
