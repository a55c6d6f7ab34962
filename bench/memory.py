"""Peak RSS of `layerwise index` on 100,000 passages (vectors stream to disk batch by batch).

    python bench/memory.py --passages 100000

Builds a synthetic corpus of short documents from STS-B sentences (one passage each),
runs `layerwise index` in a child process and reads its peak RSS (getrusage).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def corpus(path: Path, n: int) -> None:
    sentences = []
    with open(DATA / "stsbenchmark" / "sts-train.csv", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            sentences.extend(s.strip() for s in row[5:7])
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"_id": f"d{i}", "title": "", "text": f"{sentences[i % len(sentences)]} (note {i})"}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--extra", nargs="*", default=[], help="extra arguments for layerwise index, e.g. --dtype bf16")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.jsonl"
        corpus(path, args.passages)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "layerwise", "index", str(path), "-c", "mem", "--home", tmp, "--json", *args.extra],
                       check=True, stdout=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    result = {"passages": args.passages, "peak_rss_mb": round(peak_mb, 1), "seconds": round(seconds, 1), "bytes_on_disk": size, "extra": args.extra}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
