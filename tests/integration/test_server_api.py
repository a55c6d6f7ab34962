"""The HTTP API through FastAPI's TestClient: the CLI's JSON, its errors and status codes, the limits, the token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from layerwise import cores
from layerwise.api import Library
from layerwise.server import Limits, create_app
from layerwise.server.security import check_binding, is_loopback
from layerwise.errors import UsageError
from tests.integration.serving import home_copy

QUERY = "how do I rotate the logs"


@pytest.fixture(scope="module")
def home(sample_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return home_copy(sample_home, tmp_path_factory.mktemp("server") / "home")


@pytest.fixture(scope="module")
def library(home: Path) -> Library:
    return Library(home, device="cpu", query_encoder="full")


@pytest.fixture(scope="module")
def client(library: Library) -> TestClient:
    return TestClient(create_app(library))


def _error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["schema_version"] == 1 and set(body) == {"schema_version", "error"}
    assert "Traceback" not in response.text
    return body["error"]["message"]


def test_health_and_collections(client: TestClient):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["collections"] >= 1
    assert "sample" in client.get("/api/collections").json()["collections"]


def test_search_answers_what_the_api_answers(client: TestClient, library: Library):
    got = client.get("/api/collections/sample/search", params={"q": QUERY, "view": ["-1", "bm25", "rrf(bm25 | -1)"], "k": 5})
    assert got.status_code == 200
    expected = library.open("sample").search_views(QUERY, ["-1", "bm25", "rrf(bm25 | -1)"], 5).to_dict()
    assert got.json() == expected
    assert [r["view"] for r in expected["results"]] == ["layer6", "bm25", "rrf(bm25 | -1)"]
    assert expected["results"][0]["hits"][0]["doc_id"] == "ops/log-rotation.md"
    hit = expected["results"][0]["hits"][0]
    assert set(hit) == {"rank", "score", "doc_id", "title", "text", "char_start", "char_end", "row"}


def test_a_request_counts_once_as_work_and_its_search_gets_the_share(client: TestClient, monkeypatch: pytest.MonkeyPatch):
    """The middleware counts the request in the event loop; its search, run in a worker thread, is not counted again."""
    counted: list[str] = []

    class Recorded(cores.Requests):
        @contextmanager
        def working(self) -> Iterator[None]:
            if not cores._counted.get():
                counted.append(threading.current_thread().name)
            with super().working():
                yield

    monkeypatch.setattr(cores, "REQUESTS", Recorded())
    seen: list[int] = []
    monkeypatch.setattr(cores, "share", lambda available, others, requests: seen.append(requests) or 1)
    assert client.get("/api/collections/sample/search", params={"q": QUERY, "view": "-1"}).status_code == 200
    assert seen == [1] and len(counted) == 1 and "worker" not in counted[0].lower()  # counted before the endpoint's thread
    assert cores.REQUESTS.count == 0


def test_post_search_equals_get(client: TestClient):
    body = {"query": QUERY, "views": ["all"], "k": 3}
    posted = client.post("/api/collections/sample/search", json=body).json()
    got = client.get("/api/collections/sample/search", params={"q": QUERY, "view": "all", "k": 3}).json()
    assert posted == got and len(got["results"]) == 7


def test_default_view_is_used_without_a_view(client: TestClient, library: Library):
    got = client.get("/api/collections/sample/search", params={"q": QUERY}).json()
    assert [r["view"] for r in got["results"]] == ["layer6"] and got["k"] == 10


def test_compare_carries_the_jaccard_matrix(client: TestClient, library: Library):
    got = client.get("/api/collections/sample/compare", params={"q": QUERY, "k": 5}).json()
    expected = library.open("sample").compare(QUERY, "all", 5).to_dict()
    assert got == expected
    assert got["jaccard"]["views"] == [f"layer{i}" for i in range(7)] and len(got["jaccard"]["matrix"]) == 7


def test_info_views_and_runs(client: TestClient):
    info = client.get("/api/collections/sample").json()
    assert info["name"] == "sample" and info["model"]["num_states"] == 7 and "folder" not in info
    views = client.get("/api/collections/sample/views").json()
    assert views["default_view"] == "-1" and [v["name"] for v in views["views"]][:7] == [f"layer{i}" for i in range(7)]
    assert client.get("/api/collections/sample/runs").json() == {"schema_version": 1, "collection": "sample", "runs": []}


def test_errors_carry_the_cli_message_and_a_status(client: TestClient):
    message = _error(client.get("/api/collections/nope/search", params={"q": "x"}), 404)
    assert message.startswith("no collection 'nope'")
    assert "out of range" in _error(client.get("/api/collections/sample/search", params={"q": "x", "view": "9"}), 400)
    assert "empty" in _error(client.get("/api/collections/sample/search", params={"q": "   "}), 400)
    assert "k" in _error(client.get("/api/collections/sample/search", params={"q": "x", "k": 10**9}), 400)
    assert "k" in _error(client.get("/api/collections/sample/search", params={"q": "x", "k": "many"}), 400)
    assert "id" in _error(client.post("/api/collections/sample/documents", json={"documents": [{"text": "no id"}]}), 400)
    assert "q" in _error(client.get("/api/collections/sample/search"), 400)
    assert "no such endpoint" in _error(client.get("/api/nothing"), 404)


def test_collection_names_are_validated(client: TestClient):
    assert "invalid" in _error(client.get("/api/collections/%2E%2E", params={"q": "x"}), 400)
    assert "invalid" in _error(client.get("/api/collections/.hidden/search", params={"q": "x"}), 400)
    # an encoded ../ never reaches a handler: the path no longer matches a route
    _error(client.get("/api/collections/..%2F..%2Fetc/search", params={"q": "x"}), 404)
    assert "invalid" in _error(client.post("/api/collections/..%5Cx/documents", json={"documents": [], "create": True}), 400)


def test_limits(library: Library):
    client = TestClient(create_app(library, limits=Limits(max_query_chars=50, max_views=2, max_body_bytes=2_000, max_documents=3)))
    assert "at most 50" in _error(client.get("/api/collections/sample/search", params={"q": "x" * 51}), 400)
    assert "at most 2" in _error(client.get("/api/collections/sample/search", params={"q": "x", "view": ["0", "1", "2"]}), 400)
    big = {"documents": [{"id": "big", "text": "y" * 3_000}]}
    assert "larger than" in _error(client.post("/api/collections/sample/documents", json=big), 413)
    chunks = (b"x" * 1_000 for _ in range(5))  # no Content-Length: counted as it streams
    assert "larger than" in _error(client.post("/api/collections/sample/documents", content=chunks), 413)
    many = {"documents": [{"id": str(i), "text": "a"} for i in range(4)]}
    assert "at most 3" in _error(client.post("/api/collections/sample/documents", json=many), 400)


def test_token_guards_every_api_request(library: Library):
    client = TestClient(create_app(library, token="s3cret-token"))
    assert "needs a token" in _error(client.get("/api/health"), 401)
    assert "wrong" in _error(client.get("/api/collections", headers={"Authorization": "Bearer nope"}), 401)
    assert "wrong" in _error(client.get("/api/collections", headers={"Authorization": "Basic s3cret-token"}), 401)
    ok = client.get("/api/collections", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200 and "sample" in ok.json()["collections"]
    assert client.get("/").status_code == 200  # the page holds no data; it asks for the token


def test_binding_policy():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", "a-token")
    with pytest.raises(UsageError, match="refusing to serve on 0.0.0.0 without a token"):
        check_binding("0.0.0.0", None)


def test_add_then_delete_documents(client: TestClient):
    doc = {"id": "notes/kayak.md", "title": "Kayak rolls", "text": "An Eskimo roll rights a capsized kayak with a hip snap."}
    added = client.post("/api/collections/sample/documents", json={"documents": [doc]})
    assert added.status_code == 200 and added.json()["added"] == 1
    hits = client.get("/api/collections/sample/search", params={"q": "righting a capsized kayak", "k": 3}).json()
    assert hits["results"][0]["hits"][0]["doc_id"] == "notes/kayak.md"
    gone = client.request("DELETE", "/api/collections/sample/documents", json={"ids": ["notes/kayak.md"]})
    assert gone.json() == {"schema_version": 1, "collection": "sample", "deleted": 1}
    hits = client.get("/api/collections/sample/search", params={"q": "righting a capsized kayak", "k": 3}).json()
    assert "notes/kayak.md" not in [h["doc_id"] for h in hits["results"][0]["hits"]]


def test_a_busy_writer_is_a_conflict(client: TestClient, home: Path):
    from layerwise.storage.collection import Store

    collection = Store(home=home).open("sample")
    with collection.writing():
        message = _error(client.post("/api/collections/sample/documents", json={"documents": [{"id": "x", "text": "x"}]}), 409)
    assert "writ" in message


def test_an_internal_failure_is_json_without_a_traceback(library: Library, monkeypatch: pytest.MonkeyPatch):
    client = TestClient(create_app(library), raise_server_exceptions=False)

    def broken(*_args, **_kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(Library, "names", broken)
    message = _error(client.get("/api/collections"), 500)
    assert "secret" not in message and "RuntimeError" in message


def test_openapi_lists_the_endpoints(client: TestClient):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/health", "/api/collections", "/api/collections/{name}/search", "/api/collections/{name}/compare",
            "/api/collections/{name}/runs", "/api/collections/{name}/documents"} <= set(paths)


def test_create_a_collection_by_adding_to_it(client: TestClient):
    body = {"documents": [{"id": "a", "text": "Tide tables predict high and low water."}], "create": True}
    assert "no collection 'tides'" in _error(client.post("/api/collections/tides/documents", json={**body, "create": False}), 404)
    assert client.post("/api/collections/tides/documents", json=body).json()["added"] == 1
    assert "tides" in client.get("/api/collections").json()["collections"]
    hits = client.get("/api/collections/tides/search", params={"q": "when is high water", "k": 1}).json()
    assert hits["results"][0]["hits"][0]["doc_id"] == "a"
