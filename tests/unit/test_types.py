"""Value types: a document's content hash is sha256 of json.dumps([title, text]) however it is computed."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerwise import types
from layerwise.types import Document

# Characters that json.dumps escapes, some it does not, multi-byte ones (with 'u' and '\\', escape-looking text).
_CHARS = st.sampled_from(['a', ' ', '\\', '"', '\n', '\r', '\t', '\b', '\f', '\x00', '\x1f', '\x7f', 'é', '€', '😀',
                          '\u2028', 'u', '/']) | st.characters(exclude_categories=("Cs",))


def _reference(title: str, text: str) -> str:
    return hashlib.sha256(json.dumps([title, text], ensure_ascii=False).encode()).hexdigest()


@settings(max_examples=400, deadline=None)
@given(st.text(_CHARS, max_size=8), st.text(_CHARS, max_size=60), st.integers(1, 9))
def test_content_hash_is_the_hash_of_the_json(title: str, text: str, chunk: int):
    original = types._HASH_CHARS
    types._HASH_CHARS = chunk  # chunk borders everywhere, escapes on both sides of them
    try:
        assert Document("d", title, text).content_hash == _reference(title, text)
    finally:
        types._HASH_CHARS = original


def test_content_hash_of_a_long_text_with_escapes_in_some_chunks():
    text = ("plain words " * 500_000) + 'a "quoted"\nline\\ ' + ("more " * 900_000)
    assert len(text) > 2 * types._HASH_CHARS
    assert Document("d", "T", text).content_hash == _reference("T", text)


def test_a_lone_surrogate_fails_as_json_dumps_did():
    with pytest.raises(UnicodeEncodeError):
        _reference("", "a\ud800")
    with pytest.raises(UnicodeEncodeError):
        _ = Document("d", "", "a\ud800").content_hash
