"""Encoding benchmark: layerwise (every layer) vs the naive loop vs sentence-transformers.

Each run is a fresh process, so start-up counts; variants are interleaved
(a, b, c, a, b, c, ...) and medians are reported. The fp32 matmul peak is
measured in the same run with the same thread count.

    python bench/encoding.py --reps 3 --threads 2 --out bench/results/encoding.json

(a) layerwise's Encoder.encode as `index` uses it: the pooled vector of all hidden states.
(b) the naive loop: batches of 32 in input order, output_hidden_states=True,
    torch.stack of all layers, masked mean, results to numpy.
(c) sentence-transformers encode (last layer only, its own length sorting).
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
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VARIANTS = {"a": "layerwise (all 7 states)", "b": "naive loop (all 7 states)", "c": "sentence-transformers (last only)"}


def short_texts(n: int) -> list[str]:
    seen: dict[str, None] = {}
    with open(DATA / "stsbenchmark" / "sts-train.csv", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            for text in row[5:7]:
                seen.setdefault(text.strip(), None)
            if len(seen) >= n:
                break
    return list(seen)[:n]


def long_texts(n: int) -> list[str]:
    from transformers import AutoTokenizer

    from layerwise.indexer.model import resolve_model_path
    from layerwise.indexer.passages import Splitter

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(None)[1])
    docs = [json.loads(line) for line in open(DATA / "scifact" / "corpus.jsonl", encoding="utf-8")]
    out: list[str] = []
    splitter = Splitter(tokenizer, 256)
    for start in range(0, len(docs), 256):
        chunk = docs[start : start + 256]
        for passages in splitter.split_many([d["title"] for d in chunk], [d["text"] for d in chunk]):
            out.extend(p.text for p in passages)
        if len(out) >= n:
            break
    return out[:n]


def worker(variant: str, texts_file: str, threads: int) -> dict:
    """Runs in a fresh process; returns timings measured inside it."""
    import torch

    torch.set_num_threads(threads)
    texts = json.load(open(texts_file))
    t_load = time.perf_counter()
    if variant == "a":
        from layerwise.indexer.encoder import Encoder
        from layerwise.settings import EncoderSettings

        encoder = Encoder(EncoderSettings(device="cpu"))
        encode = lambda: encoder.encode(texts).vectors  # noqa: E731
    elif variant == "b":
        encode = naive_loop(texts)
    elif variant == "c":
        from sentence_transformers import SentenceTransformer

        from layerwise.indexer.model import resolve_model_path

        model = SentenceTransformer(resolve_model_path(None)[1], device="cpu")
        encode = lambda: model.encode(texts, batch_size=32)  # noqa: E731
    else:
        return {"gflops": matmul_peak(threads)}
    t_ready = time.time()
    t0 = time.perf_counter()
    result = encode()
    t1 = time.perf_counter()
    return {"load_s": t0 - t_load, "encode_s": t1 - t0, "first_batch_epoch": t_ready, "shape": list(result.shape)}


def naive_loop(texts: list[str]):  # noqa: ANN201
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from layerwise.indexer.model import resolve_model_path

    path = resolve_model_path(None)[1]
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()

    def run() -> np.ndarray:
        out = []
        for start in range(0, len(texts), 32):
            batch = tokenizer(texts[start : start + 32], padding=True, truncation=True, max_length=256, return_tensors="pt")
            with torch.no_grad():
                states = torch.stack(model(**batch, output_hidden_states=True).hidden_states)  # (L+1, B, T, d)
            mask = batch["attention_mask"][None, :, :, None].float()  # (1, B, T, 1)
            out.append(((states * mask).sum(2) / mask.sum(2)).permute(1, 0, 2).numpy())  # (B, L+1, d)
        return np.concatenate(out)

    return run


def matmul_peak(threads: int, n: int = 1024, reps: int = 30) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(5):
        a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def token_stats(texts: list[str]) -> dict:
    from transformers import AutoTokenizer

    from layerwise.indexer.encoder import plan_batches
    from layerwise.indexer.model import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(None)[1])
    lengths = [len(t) for t in tokenizer(texts, truncation=True, max_length=256)["input_ids"]]
    padded_a = sum(len(b) * max(lengths[i] for i in b) for b in plan_batches(lengths, 2048, 64))
    padded_b = sum(len(lengths[s : s + 32]) * max(lengths[s : s + 32]) for s in range(0, len(lengths), 32))
    d, ff, layers = 384, 1536, 6
    useful = sum(layers * (2 * (4 * d * d + 2 * d * ff) * t + 4 * t * t * d) for t in lengths)
    return {"texts": len(texts), "tokens": sum(lengths), "padded_tokens_a": padded_a, "padded_tokens_b": padded_b, "useful_flops": useful}


def spawn(variant: str, texts_file: str, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    started = time.time()
    proc = subprocess.run([sys.executable, __file__, "--worker", variant, "--texts-file", texts_file, "--threads", str(threads)],
                          capture_output=True, text=True, env=env, check=True)
    total = time.time() - started
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    if "first_batch_epoch" in data:
        data["startup_s"] = data.pop("first_batch_epoch") - started
        data["total_s"] = total
    return data


def bench_corpus(name: str, texts: list[str], reps: int, threads: int) -> dict:
    stats = token_stats(texts)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(texts, f)
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    peaks = []
    for rep in range(reps):
        peaks.append(spawn("peak", f.name, threads)["gflops"])
        for variant in VARIANTS:
            runs[variant].append(spawn(variant, f.name, threads))
            r = runs[variant][-1]
            print(f"  {name} rep {rep + 1} {variant}: encode {r['encode_s']:.2f}s total {r['total_s']:.2f}s startup {r['startup_s']:.2f}s", file=sys.stderr)
    os.unlink(f.name)
    med = {v: {k: statistics.median(r[k] for r in rs) for k in ("encode_s", "total_s", "startup_s")} for v, rs in runs.items()}
    peak = statistics.median(peaks)
    return {
        "corpus": name, **stats, "matmul_peak_gflops": peak, "medians": med,
        "tokens_per_s_encode": {v: stats["tokens"] / m["encode_s"] for v, m in med.items()},
        "ratio_a_over_b_encode": med["b"]["encode_s"] / med["a"]["encode_s"],
        "ratio_a_over_c_encode": med["c"]["encode_s"] / med["a"]["encode_s"],
        "ratio_a_over_b_total": med["b"]["total_s"] / med["a"]["total_s"],
        "ratio_a_over_c_total": med["c"]["total_s"] / med["a"]["total_s"],
        "utilisation_a": stats["useful_flops"] / med["a"]["encode_s"] / 1e9 / peak,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker")
    parser.add_argument("--texts-file")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--short", type=int, default=4000, help="STS-B sentences")
    parser.add_argument("--long", type=int, default=800, help="SciFact 256-token passages")
    parser.add_argument("--corpus", choices=["short", "long", "both"], default="both")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.texts_file, args.threads)))
        return
    results = {"cpu": platform.processor() or platform.machine(), "threads": args.threads, "python": platform.python_version(), "corpora": []}
    try:
        results["cpu"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if args.corpus in ("short", "both"):
        results["corpora"].append(bench_corpus("short (STS-B sentences)", short_texts(args.short), args.reps, args.threads))
    if args.corpus in ("long", "both"):
        results["corpora"].append(bench_corpus("long (SciFact 256-token passages)", long_texts(args.long), args.reps, args.threads))
    print_table(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


def print_table(results: dict) -> None:
    print(f"CPU: {results['cpu']}, threads: {results['threads']}")
    for c in results["corpora"]:
        print(f"\n{c['corpus']}: {c['texts']} texts, {c['tokens']} tokens; padded (a) {c['padded_tokens_a']}, (b) {c['padded_tokens_b']}; "
              f"fp32 matmul peak {c['matmul_peak_gflops']:.1f} GFLOP/s")
        print("| variant | encode s | whole process s | start-up s | tokens/s (encode) |")
        print("|---|---|---|---|---|")
        for v, label in VARIANTS.items():
            m = c["medians"][v]
            print(f"| ({v}) {label} | {m['encode_s']:.2f} | {m['total_s']:.2f} | {m['startup_s']:.2f} | {c['tokens_per_s_encode'][v]:.0f} |")
        print(f"(a)/(b): {c['ratio_a_over_b_encode']:.2f}x encode, {c['ratio_a_over_b_total']:.2f}x whole process; "
              f"(a)/(c): {c['ratio_a_over_c_encode']:.2f}x encode, {c['ratio_a_over_c_total']:.2f}x whole process; "
              f"(a) at {100 * c['utilisation_a']:.0f}% of the matmul peak (useful FLOPs)")


if __name__ == "__main__":
    main()
