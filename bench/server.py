"""Latency of the server's /search against the CLI's cold search, in one run (by hand).

    layerwise index scifact ../shared/data/scifact/corpus.jsonl --max-passages 1
    python bench/server.py --collection scifact --queries ../shared/data/scifact/queries.jsonl --out bench/results/server.json

Starts ``layerwise serve`` on a free 127.0.0.1 port (a separate process, as a user
would run it), waits for it to warm up, then times GET /api/collections/C/search
from 1 and from 8 concurrent clients (keep-alive connections, queries rotated, 20
warm-up requests first) for whole-document BM25 (bm25), one view (-1), all 7 layer views (all) and
rrf(bm25 | -1); p50 and p99 over --requests requests per setting. In the same run it
times the CLI's cold ``layerwise search C QUERY --view all --json`` (a fresh process
each time) with the light query encoder (the default) and with the full one, and the
same one-shot command while the server runs, which it answers (server/running.py). The
CPU model, core count and load average are recorded: on a shared machine the load
average says how much of the CPU the benchmark had, and the server's own CPU time
per request (from /proc) is what a request costs whatever else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from coldstart import cold_searches, cpu_model, emit, run_once, summary  # noqa: E402

from layerwise.server import running  # noqa: E402
from layerwise.storage.location import database_url, home_dir  # noqa: E402

SETTINGS = {"bm25": ["bm25"], "one view (-1)": ["-1"], "all 7 layer views": ["all"], "rrf(bm25 | -1)": ["rrf(bm25 | -1)"]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "layerwise", "serve", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read() if server.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not answer within 180 s")


def timed_requests(url: str, collection: str, views: list[str], queries: list[str], clients: int, requests: int) -> list[float]:
    """Latencies (s) of ``requests`` searches spread over ``clients`` threads."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = max(1, requests // clients)

    def client(number: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            mine = []
            for i in range(per_client):
                query = queries[(number * per_client + i) % len(queries)]
                start = time.perf_counter()
                response = http.get(f"/api/collections/{collection}/search", params={"q": query, "view": views, "k": 10})
                mine.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise SystemExit(f"search failed: {response.status_code} {response.text[:300]}")
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def forwarded_searches(command: list[str], env: dict[str, str], runs: int) -> dict[str, Any]:
    """Wall and CPU time of a one-shot CLI search that the running server answers (it announced itself in the home)."""
    run_once(command, env)
    return summary([run_once(command, env) for _ in range(max(runs, 3))])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--home", type=Path, help="default: $LAYERWISE_HOME")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per setting and client count")
    parser.add_argument("--cold-runs", type=int, default=3, help="0 skips the CLI's cold and forwarded searches")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8], help="concurrent clients of each setting")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if args.home:
        env["LAYERWISE_HOME"] = str(args.home)
    queries = [json.loads(line)["text"] for line in args.queries.read_text().splitlines() if line.strip()]
    result: dict = {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average_before": os.getloadavg(), "collection": args.collection,
                    "requests": args.requests, "server": {}}
    command = [sys.executable, "-m", "layerwise", "search", args.collection, queries[0], "--view", "all", "--json", "--local"]
    port = free_port()
    server = start_server(env, port)
    url = f"http://127.0.0.1:{port}"
    try:
        timed_requests(url, args.collection, ["all", "bm25"], queries, 1, 20)  # warm-up: encoder, indices, caches
        for name, views in SETTINGS.items():
            for clients in args.clients:
                spent = cpu_seconds(server.pid)
                latencies = timed_requests(url, args.collection, views, queries, clients, args.requests)
                spent = cpu_seconds(server.pid) - spent
                result["server"][f"{name} @ {clients}"] = {"p50_ms": round(1000 * percentile(latencies, 50), 2),
                                                           "p99_ms": round(1000 * percentile(latencies, 99), 2), "n": len(latencies),
                                                           "server_cpu_ms_per_request": round(1000 * spent / len(latencies), 2)}
                print(name, clients, result["server"][f"{name} @ {clients}"], file=sys.stderr)
        if not args.cold_runs:
            emit(result, args.out)
            return
        home = home_dir(args.home)
        if running.find(home, database_url(None, home)) is None:
            raise SystemExit("the server did not announce itself in its home (server.json)")
        result["cli_forwarded"] = forwarded_searches(command[:-1], env, args.cold_runs)  # the same search, answered by this server
    finally:
        server.terminate()
        server.wait(timeout=30)
    result["cli_cold"] = cold_searches(command, env, args.cold_runs)
    result["load_average_after"] = os.getloadavg()
    emit(result, args.out)


if __name__ == "__main__":
    main()
