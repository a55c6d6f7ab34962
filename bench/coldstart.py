"""Cold start of a one-shot CLI search: a fresh process per run, start-up and model load included.

    python bench/coldstart.py --runs 5 --out bench/results/coldstart.json

Indexes the bundled sample into a temporary home (unless --home/--collection name an
existing one), then runs ``layerwise search COLLECTION QUERY --layer all --json`` in a
fresh Python process, alternating the light query encoder (numpy, the default) and the
full torch encoder (``LAYERWISE_QUERY_ENCODER=full``), --runs times each. Reports the
median wall time and the median CPU time (user + system) of each, the CPU model, the
core count and the load average, which matters on a shared machine: the CPU time is
what the process itself spent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample" / "docs"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    json.loads(done.stdout)  # a well-formed result, not just an exit code
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def cold_searches(command: list[str], env: dict[str, str], runs: int) -> dict[str, dict]:
    """Median wall and CPU time of the command with the light and the full query encoder, runs interleaved."""
    run_once(command, env)  # the first run fills the page cache and the model-facts cache
    samples: dict[str, list[tuple[float, float]]] = {"light": [], "full": []}
    for _ in range(runs):
        for name in samples:
            samples[name].append(run_once(command, {**env, "LAYERWISE_QUERY_ENCODER": name}))
    return {name: summary(s) for name, s in samples.items()}


def summary(samples: list[tuple[float, float]]) -> dict[str, Any]:
    """Medians and every sample of (wall seconds, CPU seconds) runs."""
    return {"median_wall_s": round(statistics.median(w for w, _ in samples), 3),
            "median_cpu_s": round(statistics.median(c for _, c in samples), 3),
            "wall_s": [round(w, 3) for w, _ in samples], "cpu_s": [round(c, 3) for _, c in samples]}


def emit(result: dict, out: Path | None) -> None:
    """Print the result as JSON and write it to ``out`` when given."""
    print(json.dumps(result, indent=2))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--home", type=Path, help="an existing home (default: a temporary one with the sample indexed)")
    parser.add_argument("--collection", default="demo")
    parser.add_argument("--query", default="rotate logs")
    parser.add_argument("--view", dest="layer", default="all")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cli = [sys.executable, "-m", "layerwise"]
    home = args.home or Path(tempfile.mkdtemp(prefix="coldstart-"))
    env["LAYERWISE_HOME"] = str(home)
    if args.home is None:
        subprocess.run([*cli, "index", args.collection, str(SAMPLE), "--json"], env=env, check=True, capture_output=True)
    command = [*cli, "search", args.collection, args.query, "--view", args.layer, "--json", "--local"]  # never a running server
    load_before = os.getloadavg()
    result = {
        "command": " ".join(["layerwise", *command[3:]]),
        "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "load_average_before": load_before, "runs": args.runs, **cold_searches(command, env, args.runs),
        "load_average_after": os.getloadavg(),
    }
    result["speedup_wall"] = round(result["full"]["median_wall_s"] / result["light"]["median_wall_s"], 2)
    emit(result, args.out)


if __name__ == "__main__":
    main()
