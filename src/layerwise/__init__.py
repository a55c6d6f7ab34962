"""layerwise: local-first semantic search that keeps every layer of a BERT-family encoder.

The public API::

    import layerwise
    kb = layerwise.open("notes")                       # get or create, in $LAYERWISE_HOME
    kb.add(["Rotate logs with logrotate.", "Bake bread at 230 C."], ids=["logs", "bread"])
    hits = kb.search("rotate the logs", view="rrf(bm25 | -1)", k=5)
    table = kb.compare("rotate the logs", views="all", k=10)
    vectors = layerwise.embed(["a text"], layers="all")  # (texts, hidden states, dim)

Names are imported lazily, so ``import layerwise`` stays cheap for the CLI.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("layerwise")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0+unknown"

_EXPORTS = {
    "open": "layerwise.api", "embed": "layerwise.api", "Library": "layerwise.api", "KnowledgeBase": "layerwise.api",
    "IndexReport": "layerwise.api", "SearchResult": "layerwise.search.searcher", "Comparison": "layerwise.search.searcher",
    "EncoderSettings": "layerwise.settings", "Hit": "layerwise.types", "LayerEmbeddings": "layerwise.types",
    "ModelIdentity": "layerwise.types", "Document": "layerwise.types", "parse_view": "layerwise.layers",
    "LayerwiseError": "layerwise.errors", "UsageError": "layerwise.errors", "StorageError": "layerwise.errors",
}
__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from layerwise.api import IndexReport, KnowledgeBase, Library, embed, open  # noqa: A004
    from layerwise.errors import LayerwiseError, StorageError, UsageError
    from layerwise.layers import parse_view
    from layerwise.search.searcher import Comparison, SearchResult
    from layerwise.settings import EncoderSettings
    from layerwise.types import Document, Hit, LayerEmbeddings, ModelIdentity


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'layerwise' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
