"""Time and peak RSS of `layerwise index` on one huge single-line document (run by hand).

    python bench/huge_doc.py --mb 100 --out bench/results/huge_doc.json
    python bench/huge_doc.py --mb 100 --runs tiny first capped baseline --capped-passages 4000

Writes a single-line .txt of ``--mb`` megabytes (pseudo-random English words,
numbers and punctuation, fixed seed) in a temporary folder, then runs
`layerwise index` on it in a fresh child process per run and reads that child's
peak RSS and CPU time (user + system, wait4 rusage: what other jobs on a shared
machine do not inflate) and wall time:

- tiny: a 1 kB document, the same command: start-up (imports, model load) and
  the fixed cost of a run, to subtract from the others;
- first: ``--max-passages 1`` (what a truncating encoder embeds);
- capped: ``--max-passages N`` (streams the first N passages: a rate on this CPU
  without encoding the whole document);
- full: every passage of the document;
- baseline: Encoder.encode_ids alone on the capped run's passages, in a fresh
  process (model load not timed): what this CPU encodes right now, so the
  capped run's rate can be read as a ratio when other work loads the machine;
- nomodel: every passage of the document, the encoder's output replaced by
  random vectors: peak RSS and time of reading, splitting, storing and index
  building alone (a diagnostic where a full run takes too long).

Encoded tokens are counted exactly with the same splitter the index uses
(model input ids per passage, special tokens included), so the rate is
seconds per million tokens the encoder ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "the of and to in is was for on that with as by at from this be are which it an or were have has not but "
    "model layer vector passage search index document token encoder retrieval query score rank dense sparse "
    "protein cell gene expression patients treatment study results analysis increased reduced significantly "
    "temperature pressure velocity boundary flow shock wing surface theory experiment measured calculated "
    "history river mountain village market music guitar recipe garlic onion bread travel train airport"
).split()


def write_document(path: Path, megabytes: float, seed: int = 13) -> int:
    """A single-line text of about ``megabytes`` MB; returns its size in bytes."""
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            words = [rng.choice(WORDS) for _ in range(5000)]
            for k in range(0, len(words), 17):
                words[k] = f"{words[k]}{rng.choice(['.', ',', ';', ' ' + str(rng.randint(1, 9999))])}"
            chunk = " ".join(words) + " "
            f.write(chunk)
            written += len(chunk.encode())
    return written


def encoded_tokens(path: Path, max_passages: int | None) -> tuple[int, int]:
    """(passages, model input tokens) the index run encodes, counted with its own splitter."""
    from transformers import AutoTokenizer

    from layerwise.indexer.model import resolve_model_path
    from layerwise.indexer.passages import Splitter

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(None)[1])
    splitter = Splitter(tokenizer, 256, 32, max_passages)
    passages = tokens = 0
    for _, passage in splitter.stream([""], [path.read_text(encoding="utf-8")]):
        passages += 1
        tokens += len(passage.token_ids) or len(tokenizer(passage.text, truncation=True, max_length=256)["input_ids"])
    return passages, tokens


def run_index(path: Path, home: Path, extra: list[str]) -> dict:
    """Wall time, peak RSS and the --json summary of one `layerwise index` child process."""
    command = [sys.executable, "-m", "layerwise", "index", str(path), "-c", "huge", "--home", str(home), "--json", *extra]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
    out = child.stdout.read() if child.stdout else b""
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed with status {status}")
    summary = json.loads(out)
    return {"args": extra, "wall_s": round(seconds, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "index_s": round(summary["seconds"], 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "passages": summary["passages"], "loadavg_after": [round(x, 2) for x in os.getloadavg()]}


BASELINE = """
import json, sys, time
from layerwise.indexer.encoder import Encoder
from layerwise.indexer.passages import Splitter
encoder = Encoder()
text = open(sys.argv[1], encoding="utf-8").read()
splitter = Splitter(encoder.tokenizer, encoder.max_tokens, 32, int(sys.argv[2]))
ids = [p.token_ids for _, p in splitter.stream([""], [text])]
started = time.perf_counter()
encoder.encode_ids(ids)
print(json.dumps({"encode_s": time.perf_counter() - started, "passages": len(ids)}))
"""


NO_MODEL = """
import json, resource, sys, time
import numpy as np
from pathlib import Path
from layerwise.api import Library
from layerwise.indexer.encoder import Encoder
from layerwise.types import LayerEmbeddings

def random_vectors(self, items, layers=None, progress=False):
    return LayerEmbeddings(np.random.rand(len(items), self.num_states, self.identity.dim).astype(np.float32),
                           tuple(range(self.num_states)), self.identity)

Encoder.encode = Encoder.encode_ids = random_vectors
started = time.perf_counter()
report = Library(home=sys.argv[2]).open("huge", create=True).index([sys.argv[1]])
print(json.dumps({"index_s": time.perf_counter() - started, "passages": report.summary.passages,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_no_model(path: Path, home: Path) -> dict:
    """The whole document indexed with the encoder's output replaced by random vectors: the RSS and time of
    reading, splitting, storing and index building alone (the model is loaded, never run)."""
    done = subprocess.run([sys.executable, "-c", NO_MODEL, str(path), str(home)], capture_output=True, text=True,
                          check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_baseline(path: Path, passages: int) -> dict:
    """The encoder alone on the same first passages, in a fresh process: the rate this CPU gives right now."""
    done = subprocess.run([sys.executable, "-c", BASELINE, str(path), str(passages)], capture_output=True, text=True,
                          check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "nproc": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=100.0, help="document size in MB")
    parser.add_argument("--runs", nargs="+", choices=["tiny", "first", "capped", "full", "baseline", "nomodel"], default=["first", "full"],
                        help="baseline: Encoder.encode_ids alone on the capped run's passages (same CPU, same moment)")
    parser.add_argument("--capped-passages", type=int, default=4000)
    parser.add_argument("--extra", nargs="*", default=[], help="extra arguments for layerwise index, e.g. --device cuda")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result: dict = {"machine": machine(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "huge.txt"
        result["document_bytes"] = write_document(path, args.mb)
        tiny = Path(tmp) / "tiny.txt"
        write_document(tiny, 0.001)
        for run in args.runs:
            if run == "nomodel":
                measured = run_no_model(path, Path(tmp) / "home-nomodel") | {"run": run}
                result["runs"].append(measured)
                print(json.dumps(measured), flush=True)
                continue
            if run == "baseline":
                measured = run_baseline(path, args.capped_passages)
                tokens = encoded_tokens(path, args.capped_passages)[1]
                measured |= {"run": run, "encoded_tokens": tokens, "s_per_million_tokens": round(measured["encode_s"] / tokens * 1e6, 1)}
                result["runs"].append(measured)
                print(json.dumps(measured), flush=True)
                continue
            limit = {"tiny": 1, "first": 1, "capped": args.capped_passages, "full": None}[run]
            flags = ["--max-passages", str(limit)] if limit else []
            source = tiny if run == "tiny" else path
            measured = run_index(source, Path(tmp) / f"home-{run}", [*flags, *args.extra])
            passages, tokens = encoded_tokens(source, limit)
            assert passages == measured["passages"], (passages, measured)
            measured |= {"run": run, "encoded_tokens": tokens,
                         "s_per_million_tokens": round(measured["index_s"] / tokens * 1e6, 1)}
            result["runs"].append(measured)
            print(json.dumps(measured), flush=True)
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
