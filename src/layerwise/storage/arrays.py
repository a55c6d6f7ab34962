"""Writing labelled embedding arrays to the file format a path's suffix names.

``.npz`` (every array, labels and the model identity), ``.npy`` (the vectors
alone, with a ``.json`` sidecar for the rest), ``.parquet`` (one row per text,
one list column per hidden state) and ``.safetensors`` (numeric arrays; ids,
labels and the model identity in its string metadata). Any other suffix is
refused before anything is computed, so a long encoding never ends in a
file that cannot be written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from layerwise.errors import UsageError

FORMATS = (".npz", ".npy", ".parquet", ".safetensors")


@dataclass(frozen=True)
class LabelledVectors:
    """Vectors (n, k, d) of k hidden states with their labels, row ids and the model identity."""

    vectors: np.ndarray  # (n, k, d)
    layers: tuple[int, ...]
    model: dict[str, Any]
    ids: Sequence[str]
    columns: dict[str, np.ndarray]  # further per-row arrays, e.g. passage ids and character spans

    @property
    def labels(self) -> list[str]:
        return [f"hidden_states[{i}]" for i in self.layers]


def check_output(path: Path) -> Path:
    """Refuse an output path whose format is unknown or whose folder does not exist, before any work."""
    if path.is_dir():
        raise UsageError(f"output {path} is a folder: give a file name ending in {', '.join(FORMATS)}")
    if path.suffix.lower() not in FORMATS:
        raise UsageError(f"output {path} has no known format: end its name in {', '.join(FORMATS)}")
    if not path.parent.is_dir():
        raise UsageError(f"the folder {path.parent} of output {path} does not exist: create it first")
    return path


def write(path: Path, data: LabelledVectors) -> Path:
    """Write ``data`` in the format ``path``'s suffix names; return the path written."""
    writer = {".npz": _npz, ".npy": _npy, ".parquet": _parquet, ".safetensors": _safetensors}[check_output(path).suffix.lower()]
    writer(path, data)
    return path


def _meta(data: LabelledVectors) -> dict[str, Any]:
    return {"layers": list(data.layers), "labels": data.labels, "model": data.model, "shape": list(data.vectors.shape)}


def _npz(path: Path, data: LabelledVectors) -> None:
    with open(path, "wb") as f:  # np.savez would append .npz to a name without it
        np.savez(f, embeddings=data.vectors, layers=np.asarray(data.layers, dtype=np.int64), labels=np.asarray(data.labels),
                 model=np.asarray(json.dumps(data.model)), ids=np.asarray(list(data.ids), dtype=str), **data.columns)


def _npy(path: Path, data: LabelledVectors) -> None:
    with open(path, "wb") as f:
        np.save(f, data.vectors)
    columns = {k: v.tolist() for k, v in data.columns.items()}
    sidecar = {**_meta(data), "ids": list(data.ids), **columns}
    path.with_suffix(".json").write_text(json.dumps(sidecar, ensure_ascii=False))


def _parquet(path: Path, data: LabelledVectors) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("writing .parquet needs pyarrow: pip install 'layerwise[parquet]', or write .npz/.safetensors") from None

    table = {"id": pa.array(list(data.ids), pa.string())}
    table.update({k: pa.array(v.tolist()) for k, v in data.columns.items()})
    for j, layer in enumerate(data.layers):
        table[f"layer{layer}"] = pa.array(list(data.vectors[:, j]), pa.list_(pa.float32()))  # n x (d,)
    schema_meta = {"layerwise": json.dumps(_meta(data))}
    pq.write_table(pa.table(table).replace_schema_metadata(schema_meta), path)


def _safetensors(path: Path, data: LabelledVectors) -> None:
    from safetensors.numpy import save_file

    tensors = {"embeddings": np.ascontiguousarray(data.vectors, dtype=np.float32),
               "layers": np.asarray(data.layers, dtype=np.int64), **{k: np.ascontiguousarray(v) for k, v in data.columns.items()}}
    metadata = {"layerwise": json.dumps(_meta(data)), "ids": json.dumps(list(data.ids), ensure_ascii=False)}
    save_file(tensors, str(path), metadata=metadata)
