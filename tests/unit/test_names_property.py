"""Property tests (hypothesis) of the layer/view grammar and of collection and view names: any text either
parses or raises a layerwise error, and no accepted name turns into a path outside the home."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerwise import layers
from layerwise.errors import LayerwiseError
from layerwise.storage import filenames
from layerwise.storage.collection import Store
from layerwise.storage.views import save_fusion
from layerwise.types import ModelIdentity

IDENTITY = ModelIdentity("fake", "abc", "tok", "mean", 16, 5, 4)
ALPHABET = "abcdefglmnorsuwxyzAL0123456789-+:;,.|()/\\ _\n\t\x00\x1b'\"~*eE"
# texts made of the grammar's own words and punctuation reach far more of the parser than random unicode
TOKENS = st.sampled_from(["mean(", "wsum(", "concat(", "firstlast(", "rrf(", "fuse(", "bm25", "all", "layer", ")", "(",
                          "|", ";", ",", ":", "-", "raw", "unit", "nan", "inf", "1e999", "..", "/", "./", "../", "-1", "6",
                          "99999999999999999999", " ", "\n", "\x1b[31m", "stored", "default", "m"])
SPECS = st.one_of(st.text(alphabet=ALPHABET, max_size=40), st.lists(TOKENS, max_size=14).map("".join), st.text(max_size=20))


@given(SPECS, st.integers(min_value=1, max_value=40))
@settings(max_examples=600, deadline=None)
def test_any_text_parses_or_raises_a_layerwise_error(text, num_states):
    for parse in (layers.parse, layers.parse_view, layers.validate_view_name):
        try:
            spec = parse(text)
        except LayerwiseError:
            continue
        if isinstance(spec, (layers.Selection, layers.Mix)):
            try:
                spec.resolve(num_states)
            except LayerwiseError:
                pass


@given(SPECS)
@settings(max_examples=400, deadline=None)
def test_a_parsed_view_never_names_a_path(text):
    """Whatever parse_view reads as a stored view name is a valid name: letters, digits, '_', '-', '.', no '/'."""
    try:
        spec = layers.parse_view(text)
    except LayerwiseError:
        return
    for named in _named(spec):
        assert "/" not in named.name and "\\" not in named.name and not named.name.startswith(".")


def _named(spec: object) -> list[layers.Named]:
    if isinstance(spec, layers.Named):
        return [spec]
    if isinstance(spec, layers.Fusion):
        return [n for member in spec.members for n in _named(member)]
    return []


@pytest.fixture(scope="module")
def store() -> Store:
    return Store(home=Path(tempfile.mkdtemp(prefix="layerwise-names-")) / "home")


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


@given(name=SPECS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_collection_name_reaches_outside_the_home(store, name):
    try:
        collection = store.create(name, IDENTITY)
    except LayerwiseError:
        return
    assert _inside(collection.dir, store.home / "collections") and collection.dir.is_dir()
    assert collection.dir.parent == store.home / "collections"
    store.drop(name)


@given(name=SPECS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_view_name_reaches_outside_its_collection(store, name):
    if "views" not in store.names():
        store.create("views", IDENTITY)
    collection = store.open("views")
    try:
        save_fusion(collection, name, "rrf(bm25 | -1)")
    except LayerwiseError:
        pass
    try:
        path = collection.index_path(name)
    except LayerwiseError:
        return
    assert _inside(path, collection.dir / filenames.INDICES) and path.suffix == ".faiss"
    legacy = filenames.legacy_relpath(name)
    assert legacy is None or _inside(collection.dir / legacy, collection.dir / filenames.INDICES)
