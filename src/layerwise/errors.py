"""The exception tree of layerwise.

Every error a user can cause derives from :class:`LayerwiseError` and carries a
message that names the problem and the fix. The CLI maps the tree to exit codes:

    LayerwiseError                 exit 1  (a failure that is not the caller's fault)
    ├── UsageError                 exit 2  (the caller asked for something invalid)
    │   ├── LayerSpecError             a layer selection or mix that does not parse
    │   ├── LayerRangeError            a layer outside the model's hidden states
    │   ├── CollectionNotFound         no collection of that name
    │   ├── CollectionExists           create over an existing collection
    │   ├── ViewNotFound               no view of that name
    │   ├── ModelNotFound              a model path or id that cannot be loaded
    │   ├── ModelMismatch              a collection indexed with another model
    │   ├── EmptyQuery                 a blank query
    │   └── InputError                 an unreadable or malformed input file
    └── StorageError               exit 1  (the store on disk is damaged or busy)
        ├── CorruptIndex               a FAISS index file that cannot be read
        └── CollectionLocked           another writer holds the collection
"""

from __future__ import annotations


class LayerwiseError(Exception):
    """Base of every error layerwise raises on purpose."""

    exit_code: int = 1


class UsageError(LayerwiseError):
    """The caller asked for something invalid; exit code 2."""

    exit_code = 2


class LayerSpecError(UsageError):
    """A layer selection or mix expression that does not parse."""


class LayerRangeError(UsageError):
    """A layer index outside the model's hidden states."""


class CollectionNotFound(UsageError):
    """No collection of that name exists in the database."""


class CollectionExists(UsageError):
    """A collection of that name already exists."""


class ViewNotFound(UsageError):
    """No view of that name exists in the collection."""


class ModelNotFound(UsageError):
    """A model directory or hub id that cannot be loaded."""


class ModelMismatch(UsageError):
    """The collection was indexed with another model or pooling."""


class EmptyQuery(UsageError):
    """The query is blank."""


class InputError(UsageError):
    """An input file that cannot be read or has the wrong shape."""


class StorageError(LayerwiseError):
    """The collection on disk is damaged, busy or cannot be written."""


class CorruptIndex(StorageError):
    """A FAISS index file that cannot be read; `layerwise check --repair` rebuilds it."""


class CollectionLocked(StorageError):
    """Another process is writing to the collection."""
