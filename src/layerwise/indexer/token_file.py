"""Writing token-level exports to .npz or .safetensors while the vectors stream in.

Rows (tokens, or words with ``--words``) of all texts are laid end to end; text i
owns rows ``text_start[i]:text_start[i + 1]``. Arrays:

    vectors       float32 (rows, states, dim)   the selected hidden states of each row
    layers        int64   (states,)             which hidden states, in order
    text_start    int64   (texts + 1,)          where each text's rows begin
    word_index    int64   (rows,)               word of each token within its text (-1: special token)
    char_offsets  int64   (rows, 2)             character [start, end) in the text ([0, 0] for specials)
    token_ids     int64   (rows,)               vocabulary id of each token (token rows only)
    tokens, ids, model                          token/word strings, text ids, model identity (JSON)

In .npz the strings are unicode arrays (``tokens``, ``ids``) and ``model`` a 0-d
string. safetensors holds numbers only, so there the strings are JSON in the
header's ``__metadata__`` (keys ``tokens``, ``ids``, ``model``, ``unit``).

The vectors are appended to a temporary file beside the output as they arrive and
copied into the final file at the end, so memory holds one batch of vectors plus
the (small) per-row metadata. The output appears only when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from layerwise.errors import UsageError

FORMATS = (".npz", ".safetensors")
_CHUNK = 1 << 22


def check_path(path: Path) -> None:
    """Refuse an output whose suffix names no supported format."""
    if path.suffix.lower() not in FORMATS:
        raise UsageError(f"token export writes .npz or .safetensors: '{path}' names neither (add one of those suffixes)")
    if path.is_dir():
        raise UsageError(f"'{path}' is a folder: give a file name ending in .npz or .safetensors")


class TokenFileWriter:
    """Collects rows text by text; vectors go to a temporary file until close()."""

    def __init__(self, path: Path, layers: tuple[int, ...], dim: int, model: dict[str, Any], unit: str) -> None:
        check_path(path)
        self.path = path
        self.layers = layers
        self.dim = dim
        self.model = model
        self.unit = unit
        self.rows = 0
        self.text_start: list[int] = []
        self.ids: list[str] = []
        self.strings: list[str] = []
        self.token_ids: list[np.ndarray] = []
        self.word_index: list[np.ndarray] = []
        self.offsets: list[np.ndarray] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = path.with_name(f".{path.name}.vectors.partial")
        self._vectors = open(self._tmp, "wb")

    def begin_text(self, text_id: str) -> None:
        self.text_start.append(self.rows)
        self.ids.append(text_id)

    def add_vectors(self, vectors: np.ndarray) -> None:
        """Append rows (m, states, dim) of the current text."""
        assert vectors.ndim == 3 and vectors.shape[1:] == (len(self.layers), self.dim), vectors.shape
        self._vectors.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        self.rows += len(vectors)

    def add_rows(self, strings: list[str], word_index: np.ndarray, offsets: np.ndarray, token_ids: np.ndarray | None) -> None:
        """The metadata of the current text's rows (all of them at once)."""
        self.strings.extend(strings)
        self.word_index.append(np.asarray(word_index, dtype=np.int64))
        self.offsets.append(np.asarray(offsets, dtype=np.int64).reshape(-1, 2))
        if token_ids is not None:
            self.token_ids.append(np.asarray(token_ids, dtype=np.int64))

    def close(self) -> None:
        """Write the output file (atomically) and drop the temporary one."""
        self._vectors.close()
        if len(self.strings) != self.rows:
            raise AssertionError(f"{self.rows} vector rows but {len(self.strings)} row labels")
        arrays = self._arrays()
        partial = self.path.with_name(f".{self.path.name}.partial")
        try:
            if self.path.suffix.lower() == ".npz":
                self._write_npz(partial, arrays)
            else:
                self._write_safetensors(partial, arrays)
            os.replace(partial, self.path)
        finally:
            for leftover in (partial, self._tmp):
                leftover.unlink(missing_ok=True)

    def abort(self) -> None:
        self._vectors.close()
        self._tmp.unlink(missing_ok=True)

    def _arrays(self) -> dict[str, np.ndarray]:
        """The small arrays (everything but vectors)."""
        arrays = {
            "layers": np.asarray(self.layers, dtype=np.int64),
            "text_start": np.asarray([*self.text_start, self.rows], dtype=np.int64),
            "word_index": np.concatenate(self.word_index) if self.word_index else np.zeros(0, np.int64),
            "char_offsets": np.concatenate(self.offsets) if self.offsets else np.zeros((0, 2), np.int64),
        }
        if self.unit == "token":
            arrays["token_ids"] = np.concatenate(self.token_ids) if self.token_ids else np.zeros(0, np.int64)
        return arrays

    def _vector_header(self) -> tuple[tuple[int, ...], int]:
        shape = (self.rows, len(self.layers), self.dim)
        return shape, self.rows * len(self.layers) * self.dim * 4

    def _copy_vectors(self, out: Any) -> None:
        with open(self._tmp, "rb") as src:
            shutil.copyfileobj(src, out, length=_CHUNK)

    def _write_npz(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        shape, _ = self._vector_header()
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            with archive.open("vectors.npy", "w", force_zip64=True) as out:
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_1_0(out, header)
                self._copy_vectors(out)
            strings = {"tokens": np.asarray(self.strings, dtype=str), "ids": np.asarray(self.ids, dtype=str),
                       "model": np.asarray(json.dumps(self.model)), "unit": np.asarray(self.unit)}
            for name, array in {**arrays, **strings}.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, array, allow_pickle=False)

    def _write_safetensors(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        shape, size = self._vector_header()
        header: dict[str, Any] = {"vectors": {"dtype": "F32", "shape": list(shape), "data_offsets": [0, size]}}
        offset = size
        for name, array in arrays.items():
            header[name] = {"dtype": "I64", "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
            offset += array.nbytes
        header["__metadata__"] = {"tokens": json.dumps(self.strings, ensure_ascii=False), "ids": json.dumps(self.ids, ensure_ascii=False),
                                  "model": json.dumps(self.model), "unit": self.unit, "format": "layerwise-tokens-1"}
        blob = json.dumps(header, ensure_ascii=False).encode("utf-8")
        blob += b" " * (-len(blob) % 8)
        with open(path, "wb") as out:
            out.write(len(blob).to_bytes(8, "little"))
            out.write(blob)
            self._copy_vectors(out)
            for array in arrays.values():
                out.write(np.ascontiguousarray(array, dtype="<i8").tobytes())
