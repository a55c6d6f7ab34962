"""A bounded load test on loopback: 8 clients x 200 searches over the 7 layer views while `index --sync` adds documents.

Every response must be well formed and error-free, and the new documents must be
found within a second of the writer's commit (seen in the database by a watcher).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from layerwise.api import Library
from layerwise.server import create_app
from layerwise.storage.collection import Store
from tests.integration.conftest import SAMPLE
from tests.integration.serving import home_copy, serving

CLIENTS = 8
SEARCHES = 200
NEW = {
    "new/kayak.md": "# Kayak rolls\n\nAn Eskimo roll rights a capsized kayak: a hip snap, then the paddle sweeps and the head comes up last.",
    "new/bees.md": "# Beekeeping\n\nA hive needs a queen, workers and drones; beekeepers check the brood frames and harvest honey in late summer.",
    "new/chess.md": "# Chess openings\n\nThe Sicilian Defence answers 1.e4 with c5 and fights for the centre asymmetrically.",
}
PROBE = ("righting a capsized kayak with a hip snap", "new/kayak.md")


def _well_formed(body: dict, view: str, k: int) -> None:
    assert body["schema_version"] == 1 and body["collection"] == "sample" and body["k"] == k
    [result] = body["results"]
    assert result["view"] == view and 0 < len(result["hits"]) <= k
    assert [h["rank"] for h in result["hits"]] == list(range(1, len(result["hits"]) + 1))
    scores = [h["score"] for h in result["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert all(set(h) == {"rank", "score", "doc_id", "title", "text", "char_start", "char_end", "row"} for h in result["hits"])


class Watcher(threading.Thread):
    """Records when the writer's commit of new rows becomes visible in the database."""

    def __init__(self, home: Path) -> None:
        super().__init__(daemon=True)
        self.collection = Store(home=home).open("sample")
        self.rows = self.collection.state()[1]
        self.committed: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.committed is None:
            if self.collection.state()[1] > self.rows:
                self.committed = time.monotonic()
            time.sleep(0.005)


class Prober(threading.Thread):
    """Searches for a new document until the server returns it; records when."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.found: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set() and self.found is None:
                body = client.get("/api/collections/sample/search", params={"q": PROBE[0], "view": "-1", "k": 3}).json()
                if PROBE[1] in [h["doc_id"] for h in body["results"][0]["hits"]]:
                    self.found = time.monotonic()
                time.sleep(0.02)


def test_searches_keep_working_while_a_writer_indexes(sample_home: Path, tmp_path: Path):
    home = home_copy(sample_home, tmp_path / "home")
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE / "docs", docs)
    for name, text in NEW.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text)
    queries = [json.loads(line)["text"] for line in (SAMPLE / "queries.jsonl").read_text().splitlines() if line.strip()]
    errors: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def client(number: int, url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for i in range(SEARCHES):
                state = (number * SEARCHES + i) % 7
                started = time.perf_counter()
                response = http.get("/api/collections/sample/search", params={"q": queries[i % len(queries)], "view": str(state), "k": 10})
                elapsed = time.perf_counter() - started
                try:
                    assert response.status_code == 200, response.text
                    _well_formed(response.json(), f"layer{state}", 10)
                except AssertionError as exc:
                    with lock:
                        errors.append(str(exc)[:300])
                with lock:
                    latencies.append(elapsed)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with serving(create_app(Library(home, device="cpu", query_encoder="full"))) as url:
        httpx.get(f"{url}/api/collections/sample/search", params={"q": "warm up", "view": "all"}, timeout=60)
        watcher, prober = Watcher(home), Prober(url)
        watcher.start()
        prober.start()
        writer = subprocess.Popen([sys.executable, "-m", "layerwise", "index", str(docs), "--collection", "sample", "--sync",
                                   "--home", str(home), "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(n, url)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        clients_done = time.monotonic()
        out, err = writer.communicate(timeout=300)
        watcher.join(timeout=30)
        prober.join(timeout=30)
        watcher.stop.set()
        prober.stop.set()

    assert writer.returncode == 0, err
    assert json.loads(out)["added"] == len(NEW)
    assert errors == [], errors[:3]
    assert len(latencies) == CLIENTS * SEARCHES
    assert watcher.committed is not None and prober.found is not None
    assert watcher.committed < clients_done, "the writer committed after the clients finished: no overlap was tested"
    delay = prober.found - watcher.committed
    latencies.sort()
    print(f"\nload: {CLIENTS}x{SEARCHES} searches in {clients_done - started:.1f}s, p50 {1000 * latencies[len(latencies) // 2]:.1f} ms, "
          f"p99 {1000 * latencies[int(len(latencies) * 0.99)]:.1f} ms; new document served {delay:.3f}s after its commit")
    assert delay <= 1.0
