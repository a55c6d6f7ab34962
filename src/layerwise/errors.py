"""The exception tree of layerwise.

Every error a user can cause derives from :class:`LayerwiseError` and carries a
message that names the problem and the fix. Each class carries the CLI's exit code
and the HTTP server's status, so each front end translates errors at one place:

    LayerwiseError                 exit 1, HTTP 500  (a failure that is not the caller's fault)
    ├── UsageError                 exit 2, HTTP 400  (the caller asked for something invalid)
    │   ├── LayerSpecError             a layer selection, mix or view name that does not parse
    │   ├── LayerRangeError            a layer outside the model's hidden states
    │   ├── CollectionNotFound         no collection of that name             (HTTP 404)
    │   ├── CollectionExists           create over an existing collection     (HTTP 409)
    │   ├── ViewNotFound               no view of that name                   (HTTP 404)
    │   ├── ModelNotFound              a model path or id that cannot be loaded
    │   ├── ModelMismatch              a collection indexed with another model (HTTP 409)
    │   ├── EmptyQuery                 a blank query
    │   └── InputError                 an unreadable or malformed input file
    └── StorageError               exit 1, HTTP 503  (the store on disk is damaged or busy)
        ├── CorruptIndex               a FAISS index file that cannot be read
        └── CollectionLocked           another writer holds the collection    (HTTP 409)
"""

from __future__ import annotations


class LayerwiseError(Exception):
    """Base of every error layerwise raises on purpose."""

    exit_code: int = 1
    http_status: int = 500


class UsageError(LayerwiseError):
    """The caller asked for something invalid; exit code 2."""

    exit_code = 2
    http_status = 400


class LayerSpecError(UsageError):
    """A layer selection or mix expression that does not parse."""


class LayerRangeError(UsageError):
    """A layer index outside the model's hidden states."""


class CollectionNotFound(UsageError):
    """No collection of that name exists in the database."""

    http_status = 404


class CollectionExists(UsageError):
    """A collection of that name already exists."""

    http_status = 409


class ViewNotFound(UsageError):
    """No view of that name exists in the collection."""

    http_status = 404


class ModelNotFound(UsageError):
    """A model directory or hub id that cannot be loaded."""


class ModelMismatch(UsageError):
    """The collection was indexed with another model or pooling."""

    http_status = 409


class EmptyQuery(UsageError):
    """The query is blank."""


class InputError(UsageError):
    """An input file that cannot be read or has the wrong shape."""


class StorageError(LayerwiseError):
    """The collection on disk is damaged, busy or cannot be written."""

    http_status = 503


class CorruptIndex(StorageError):
    """A FAISS index file that cannot be read; `layerwise check --repair` rebuilds it."""


class CollectionLocked(StorageError):
    """Another process is writing to the collection."""

    http_status = 409
