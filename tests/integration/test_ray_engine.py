"""The Ray Data engine against the local engine, on a local Ray instance the test starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from layerwise.indexer.inputs import InputReport, read_documents
from layerwise.indexer.pipeline import index_documents
from layerwise.storage.collection import Store

ray = pytest.importorskip("ray")
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _vectors(home: Path) -> dict[tuple[str, int], np.ndarray]:
    collection = Store(home=home).open("c")
    rows, _, _ = collection.passage_table
    info = collection.passages(rows.tolist())
    stack = np.stack([np.asarray(collection.layer_vectors(i)) for i in range(collection.num_states)], 1)  # (rows, states, d)
    return {(info[r].doc_id, info[r].char_start): stack[r] for r in rows.tolist()}


def test_ray_engine_stores_the_same_vectors_as_the_local_engine(local_ray, encoder, tmp_path):
    from layerwise.indexer.ray_engine import RayEncoder

    docs = list(read_documents([SAMPLE / "docs"], InputReport()))
    for name, engine in (("local", encoder), ("ray", RayEncoder(encoder, actors=2, batch_size=8))):
        collection = Store(home=tmp_path / name).create("c", encoder.identity)
        summary = index_documents(collection, engine, docs, InputReport(), batch_docs=16)
        assert summary.added == len(docs)
    local, remote = _vectors(tmp_path / "local"), _vectors(tmp_path / "ray")
    assert local.keys() == remote.keys()
    assert max(float(np.abs(local[k] - remote[k]).max()) for k in local) <= 1e-5


@pytest.mark.parametrize("quantize", ["int8"])
def test_ray_engine_keeps_quantize_and_identity(local_ray, tmp_path, quantize):
    """The Ray actors get the very EncoderSettings of the local encoder: --quantize reaches them too."""
    from layerwise.api import Library
    from layerwise.settings import EncoderSettings

    docs = sorted((SAMPLE / "docs").rglob("*.md"))[:6]
    settings = EncoderSettings(device="cpu", quantize=quantize)
    homes = {}
    for engine in ("local", "ray"):
        library = Library(home=tmp_path / engine, device="cpu")
        kb = library.open("c", create=True, settings=settings)
        kb.index(docs, engine=engine, ray_actors=1)
        homes[engine] = kb
    local, remote = (homes[e].collection for e in ("local", "ray"))
    assert local.identity == remote.identity and local.identity.quantize == quantize
    a, b = _vectors(tmp_path / "local"), _vectors(tmp_path / "ray")
    assert a.keys() == b.keys()
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-5
