"""Reading the documented JSON of search and compare (docs/json.md) in tests."""

from __future__ import annotations

from typing import Any


def by_view(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Hits per view name of a search or compare result."""
    assert data["schema_version"] == 1
    return {r["view"]: r["hits"] for r in data["results"]}
