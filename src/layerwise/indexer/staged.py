"""The encoder of an indexing run: numpy for a small job, torch once the job proves large.

``layerwise index`` of one passage spent about 4 s of CPU importing torch and
transformers and running ``from_pretrained``, to encode what the numpy BERT of
``light.py`` encodes in 0.1 s. A :class:`StagedEncoder` answers everything the
indexing pipeline asks of an encoder (identity, tokenizer, lengths) from the
light encoder and the model facts a full load remembered, and encodes with it
while the run's passages add up to at most ``LIGHT_TOKENS`` tokens in at most
``LIGHT_TEXTS`` texts; the first call that would pass either loads the torch
encoder (once, through the library's cache), which encodes everything from then
on. A large run therefore pays nothing extra: its first batch (up to 2,048
passages) already goes to torch. Once torch is loaded the numpy weights are let
go, so a large run holds one copy of the model.

The two encoders give the same vectors within 1e-5 (tests), so a collection whose
first passages came from numpy and later ones from torch is consistent to that
tolerance, as queries encoded by the light encoder already are. The tokenizer is
the Rust tokenizer behind the Hugging Face one (``light.TokenizerCalls``), checked
against the remembered vocabulary fingerprint; where anything does not match,
``load`` returns None and the caller uses the torch encoder from the start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from layerwise.errors import LayerRangeError
from layerwise.indexer import light
from layerwise.indexer import model as model_io
from layerwise.settings import EncoderSettings
from layerwise.types import LayerEmbeddings

if TYPE_CHECKING:
    from layerwise.indexer.encoder import Encoder

# What a run encodes with numpy before it loads torch: at most 8192 tokens (32 full passages of the
# default model) in at most 128 texts. On the 2-core Xeon numpy took ~0.10 s of CPU per 256-token
# passage, torch ~0.06 s after ~3.8 s of imports and loading, so numpy is cheaper up to ~80 such
# passages; numpy runs one text at a time and reads every weight per text (~10 ms for a short one
# under load), so many short texts go to torch, which batches them.
LIGHT_TOKENS = 8192
LIGHT_TEXTS = 128


def load(settings: EncoderSettings, full: Callable[[], Encoder]) -> StagedEncoder | None:
    """A staged encoder for these settings (``full`` loads the torch one when needed), or None where
    the light encoder cannot serve them (then the caller loads the torch encoder now)."""
    found = light.load(settings)
    if found is None:
        return None
    calls = found.calls
    recalled = str(found.facts.get("tokenizer", ""))
    if recalled.partition(":")[2] != model_io.vocab_fingerprint(calls.get_vocab()):
        return None  # the Hugging Face tokenizer adds tokens the Rust one does not know: not the same tokenizer
    return StagedEncoder(found, calls, settings, full)


class StagedEncoder:
    """An index run's encoder: the light encoder for the first LIGHT_TOKENS tokens (LIGHT_TEXTS texts), then torch."""

    def __init__(
        self, light_encoder: light.LightEncoder, calls: light.TokenizerCalls, settings: EncoderSettings,
        full: Callable[[], Encoder],
    ) -> None:
        self.light: light.LightEncoder | None = light_encoder
        self.tokenizer = calls
        self.settings = settings
        self.path = light_encoder.path
        self.device = light_encoder.device
        self.model_limit = light_encoder.model_limit
        # The same refusal as the torch encoder for a --max-tokens out of range.
        self.max_tokens = model_io.checked_max_tokens(settings.max_tokens, self.model_limit, calls)
        self.num_states = light_encoder.num_states
        self.identity = light_encoder.identity
        self._load_full = full
        self._full: Encoder | None = None
        self.light_tokens = 0  # tokens and texts encoded by numpy so far
        self.light_texts = 0

    @property
    def loaded(self) -> Encoder | None:
        """The torch encoder once a call needed it, else None."""
        return self._full

    def full(self) -> Encoder:
        """The torch encoder (loaded on first use); its identity must be the one this run recorded."""
        if self._full is None:
            encoder = self._load_full()
            if encoder.identity != self.identity:
                raise RuntimeError(f"the torch encoder's identity {encoder.identity} differs from the remembered "
                                   f"{self.identity}: clear {model_io.cache_dir() / 'models'} and index again")
            self._full = encoder
            self.light = None  # its weights are not needed any more
        return self._full

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text with special tokens, truncated to max_tokens."""
        return [list(ids) for ids in self.tokenizer(list(texts), truncation=True, max_length=self.max_tokens)["input_ids"]]

    def states(self, layers: Sequence[int] | None) -> tuple[int, ...]:
        """Non-negative hidden-state indices for ``layers`` (default all; negative counts from the end)."""
        if layers is None:
            return tuple(range(self.num_states))
        for layer in layers:
            if not -self.num_states <= int(layer) < self.num_states:
                raise LayerRangeError(
                    f"layer {layer} is out of range: this model has hidden states 0..{self.num_states - 1} "
                    f"(or -{self.num_states}..-1 from the end)"
                )
        return tuple(int(layer) % self.num_states for layer in layers)

    def encode(self, texts: Sequence[str], layers: Sequence[int] | None = None, progress: bool = False) -> LayerEmbeddings:
        """Pooled vectors of the given hidden states (default: all) for each text, in input order."""
        if self._full is not None:
            return self._full.encode(texts, layers, progress)
        return self.encode_ids(self.tokenize(texts), layers, progress)

    def encode_ids(
        self, token_ids: Sequence[Sequence[int]], layers: Sequence[int] | None = None, progress: bool = False
    ) -> LayerEmbeddings:
        """As the torch encoder's ``encode_ids``: numpy while the run stays within LIGHT_TOKENS tokens."""
        wanted = self.states(layers)
        tokens = sum(map(len, token_ids))
        if self.light is not None and self.light_tokens + tokens <= LIGHT_TOKENS and self.light_texts + len(token_ids) <= LIGHT_TEXTS:
            self.light_tokens += tokens
            self.light_texts += len(token_ids)
            return self.light.encode_ids(token_ids, wanted)
        return self.full().encode_ids(token_ids, wanted, progress)
