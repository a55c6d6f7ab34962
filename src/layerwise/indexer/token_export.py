"""Token-level export: the vector of every token of every text in every selected hidden state.

A text is tokenized once, whole (no truncation): ``lead + content + trail``, where
``lead`` and ``trail`` are the special tokens the tokenizer adds ([CLS] ... [SEP]).
When the content does not fit the model, it is cut into windows of ``size``
content tokens that share ``stride`` tokens with their neighbour (the last window
ends on the last token); each window is encoded as ``lead + chunk + trail``, and
each content token takes its vector from the window where it is most central
(farthest from that window's nearer edge; the earlier window on a tie). The
leading special tokens come from the first window, the trailing ones from the
last. A text that fits is one window, exactly what a direct encoding gives.

``words=True`` mean-pools the sub-word tokens of each word (the tokenizer's
pre-tokenized words, ``word_ids()``) and drops the special tokens.

Vectors stream to disk window by window (see :mod:`layerwise.indexer.token_file`),
so memory stays bounded by a batch of windows whatever the input's length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from layerwise import layers as grammar
from layerwise.errors import UsageError
from layerwise.indexer import model as model_io
from layerwise.indexer.device import resolve_device, resolve_dtype
from layerwise.indexer.token_file import TokenFileWriter, check_path


@dataclass(frozen=True)
class Window:
    """Content tokens [start, end) are encoded together; [own_start, own_end) take their vectors from here."""

    start: int
    end: int
    own_start: int
    own_end: int


def plan_windows(n: int, size: int, stride: int) -> list[Window]:
    """Windows of ``size`` content tokens overlapping by ``stride``; each token owned by its most central window."""
    if size < 1:
        raise UsageError(f"window of {size} content tokens: the model's maximum length leaves no room for text")
    if not 0 <= stride < size:
        raise UsageError(f"--stride {stride} must be between 0 and {size - 1} (the window holds {size} content tokens)")
    if n <= size:
        return [Window(0, n, 0, n)]
    step = size - stride
    starts = list(range(0, n - size, step)) + [n - size]
    owner = np.zeros(n, dtype=np.int64)  # (n,) window index per token
    best = np.full(n, -1, dtype=np.int64)  # (n,) distance to the owning window's nearer edge
    for index, start in enumerate(starts):
        positions = np.arange(start, start + size)  # (size,)
        centrality = np.minimum(positions - start, start + size - 1 - positions)  # (size,)
        better = centrality > best[positions]
        owner[positions[better]] = index
        best[positions[better]] = centrality[better]
    windows = []
    for index, start in enumerate(starts):
        owned = np.flatnonzero(owner == index)
        if len(owned):
            windows.append(Window(start, start + size, int(owned[0]), int(owned[-1]) + 1))
    return windows


@dataclass
class TokenizedText:
    """One text tokenized whole: ids, token strings, word index and character offsets of every token."""

    ids: np.ndarray  # (T,)
    tokens: list[str]
    word_index: np.ndarray  # (T,) -1 for special tokens
    offsets: np.ndarray  # (T, 2) character [start, end)
    lead: int  # special tokens before the content
    trail: int  # special tokens after the content

    @property
    def content(self) -> np.ndarray:
        return self.ids[self.lead : len(self.ids) - self.trail]  # (n,)


def tokenize_whole(tokenizer: Any, text: str) -> TokenizedText:
    """The full token sequence of a text with special tokens, offsets and word ids (fast tokenizers)."""
    encoding = tokenizer(text, add_special_tokens=True, truncation=False, return_offsets_mapping=True,
                         return_special_tokens_mask=True, verbose=False)
    ids = np.asarray(encoding["input_ids"], dtype=np.int64)  # (T,)
    special = np.asarray(encoding["special_tokens_mask"], dtype=bool)  # (T,)
    content = np.flatnonzero(~special)
    lead = int(content[0]) if len(content) else int(special.sum())
    trail = len(ids) - int(content[-1]) - 1 if len(content) else 0
    if len(content) and not np.all(np.diff(content) == 1):
        raise UsageError("the tokenizer puts special tokens inside a single text: token export supports [CLS] text [SEP] models")
    words = np.asarray([-1 if w is None or s else w for w, s in zip(encoding.word_ids(), special)], dtype=np.int64)  # (T,)
    offsets = np.asarray(encoding["offset_mapping"], dtype=np.int64).reshape(-1, 2)  # (T, 2)
    offsets[special] = 0
    return TokenizedText(ids, tokenizer.convert_ids_to_tokens(ids.tolist()), words, offsets, lead, trail)


@dataclass
class Piece:
    """Rows [start, end) of a text's full token sequence, with their vectors (end - start, k, d)."""

    text: int
    start: int
    end: int
    vectors: np.ndarray


@dataclass
class _Job:
    text: int
    tokenized: TokenizedText
    window: Window
    first: bool
    last: bool
    input_ids: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        t = self.tokenized
        chunk = t.content[self.window.start : self.window.end]
        self.input_ids = np.concatenate([t.ids[: t.lead], chunk, t.ids[len(t.ids) - t.trail :]])  # (w,)

    def rows(self) -> tuple[int, int, int, int]:
        """(first row in the full sequence, last row + 1, first window position, last position + 1) this job supplies."""
        t, w = self.tokenized, self.window
        row_start = t.lead + w.own_start if not self.first else 0
        row_end = t.lead + w.own_end if not self.last else len(t.ids)
        pos_start = t.lead + (w.own_start - w.start) if not self.first else 0
        return row_start, row_end, pos_start, pos_start + (row_end - row_start)


class TokenEncoder:
    """Runs windows through a loaded model and yields the owned token vectors of the selected states."""

    def __init__(self, model: Any, tokenizer: Any, max_tokens: int, layers: Sequence[int], stride: int | None = None,
                 token_budget: int = 4096) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.layers = tuple(layers)
        self.size = max_tokens - tokenizer.num_special_tokens_to_add(pair=False)
        self.stride = self.size // 2 if stride is None else stride
        plan_windows(self.size + 1, self.size, self.stride)  # validate once, before any text
        self.token_budget = token_budget

    def pieces(self, texts: Sequence[TokenizedText]) -> Iterator[Piece]:
        """Vectors of every row of every text, in order, a window at a time."""
        batch: list[_Job] = []
        for job in self._jobs(texts):
            if batch and (len(batch) + 1) * max(len(job.input_ids), *(len(b.input_ids) for b in batch)) > self.token_budget:
                yield from self._run(batch)
                batch = []
            batch.append(job)
        if batch:
            yield from self._run(batch)

    def _jobs(self, texts: Sequence[TokenizedText]) -> Iterator[_Job]:
        for index, tokenized in enumerate(texts):
            windows = plan_windows(len(tokenized.content), self.size, self.stride)
            for number, window in enumerate(windows):
                yield _Job(index, tokenized, window, number == 0, number == len(windows) - 1)

    def _run(self, batch: list[_Job]) -> Iterator[Piece]:
        import torch

        width = max(len(job.input_ids) for job in batch)
        ids = np.full((len(batch), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)  # (B, T)
        mask = np.zeros((len(batch), width), dtype=np.int64)  # (B, T)
        for row, job in enumerate(batch):
            ids[row, : len(job.input_ids)] = job.input_ids
            mask[row, : len(job.input_ids)] = 1
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            states = self.model(input_ids=torch.from_numpy(ids).to(device), attention_mask=torch.from_numpy(mask).to(device),
                                output_hidden_states=True).hidden_states
            chosen = torch.stack([states[i] for i in self.layers], dim=2).float().cpu().numpy()  # (B, T, k, d)
        for row, job in enumerate(batch):
            row_start, row_end, pos_start, pos_end = job.rows()
            yield Piece(job.text, row_start, row_end, chosen[row, pos_start:pos_end])


class WordPooler:
    """Turns a text's token pieces into word pieces: the mean of each word's sub-word tokens, specials dropped."""

    def __init__(self, tokenized: TokenizedText) -> None:
        self.words = tokenized.word_index
        self.pending: list[np.ndarray] = []  # vectors of the word being read, (k, d) each
        self.current = -1

    def feed(self, piece: Piece) -> list[tuple[int, np.ndarray]]:
        """(word index, mean vector (k, d)) of every word this piece completes."""
        done: list[tuple[int, np.ndarray]] = []
        for row, vector in zip(range(piece.start, piece.end), piece.vectors):
            word = int(self.words[row])
            if word != self.current and self.pending:
                done.append((self.current, np.mean(self.pending, axis=0)))
                self.pending = []
            self.current = word
            if word >= 0:
                self.pending.append(vector)
        return done

    def finish(self) -> list[tuple[int, np.ndarray]]:
        done = [(self.current, np.mean(self.pending, axis=0))] if self.pending else []
        self.pending = []
        return done


def word_spans(tokenized: TokenizedText, text: str) -> tuple[list[str], np.ndarray]:
    """Each word's string and character [start, end), from its first and last token."""
    rows = np.flatnonzero(tokenized.word_index >= 0)  # (m,) non-special rows
    words = tokenized.word_index[rows]  # (m,)
    firsts = rows[np.r_[True, words[1:] != words[:-1]]] if len(rows) else rows
    lasts = rows[np.r_[words[1:] != words[:-1], True]] if len(rows) else rows
    spans = np.stack([tokenized.offsets[firsts, 0], tokenized.offsets[lasts, 1]], axis=1).reshape(-1, 2)  # (W, 2)
    return [text[a:b] for a, b in spans.tolist()], spans


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    path: str
    texts: int
    rows: int
    unit: str
    layers: tuple[int, ...]
    model: str
    stride: int
    window: int


def export(
    model: Any,
    tokenizer: Any,
    identity: dict[str, Any],
    ids: Sequence[str],
    texts: Sequence[str],
    layers: Sequence[int],
    path: Any,
    *,
    max_tokens: int,
    words: bool = False,
    stride: int | None = None,
    progress: bool = False,
) -> ExportSummary:
    """Encode every text whole (in windows where needed) and stream its token or word vectors to ``path``."""
    from tqdm.auto import tqdm

    encoder = TokenEncoder(model, tokenizer, max_tokens, layers, stride)
    tokenized = [tokenize_whole(tokenizer, text) for text in texts]
    unit = "word" if words else "token"
    writer = TokenFileWriter(path, encoder.layers, int(model.config.hidden_size), identity, unit)
    bar = tqdm(total=sum(len(t.ids) for t in tokenized), unit="tok", desc="token export", disable=not progress, leave=False)
    try:
        current, pooler = -1, None
        for piece in encoder.pieces(tokenized):
            if piece.text != current:
                _finish(writer, pooler, tokenized, texts, current, words)
                current = piece.text
                writer.begin_text(ids[current])
                pooler = WordPooler(tokenized[current]) if words else None
            _add(writer, pooler, piece)
            bar.update(piece.end - piece.start)
        _finish(writer, pooler, tokenized, texts, current, words)
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    writer.close()
    return ExportSummary(str(path), len(texts), writer.rows, unit, encoder.layers, identity.get("name", ""), encoder.stride, encoder.size)


def _add(writer: Any, pooler: WordPooler | None, piece: Piece) -> None:
    if pooler is None:
        writer.add_vectors(piece.vectors)
        return
    done = pooler.feed(piece)
    if done:
        writer.add_vectors(np.stack([v for _, v in done]))  # (w, k, d)


def _finish(writer: Any, pooler: WordPooler | None, tokenized: Sequence[TokenizedText], texts: Sequence[str], index: int, words: bool) -> None:
    """Flush the last word of text ``index`` and record its rows' labels."""
    if index < 0:
        return
    t = tokenized[index]
    if pooler is not None:
        done = pooler.finish()
        if done:
            writer.add_vectors(np.stack([v for _, v in done]))  # (w, k, d)
    if words:
        strings, spans = word_spans(t, texts[index])
        writer.add_rows(strings, np.arange(len(strings)), spans, None)
    else:
        writer.add_rows(t.tokens, t.word_index, t.offsets, t.ids)


def export_with_model(
    model_name: str | None,
    ids: Sequence[str],
    texts: Sequence[str],
    layer_spec: str,
    path: Any,
    *,
    words: bool = False,
    stride: int | None = None,
    max_tokens: int | None = None,
    device: str = "auto",
    dtype: str = "auto",
    progress: bool = False,
) -> ExportSummary:
    """Load the model (indexer.model), resolve the layer selection and export (see :func:`export`)."""
    check_path(path)
    spec = grammar.parse(layer_spec)
    if spec.is_mix:
        raise UsageError(f"--tokens exports hidden states, not mixes: give a selection such as all or -4: (got '{layer_spec}')")
    name, model, tokenizer, model_path = model_io.load(model_name)
    torch_device = resolve_device(device)
    model.to(torch_device, resolve_dtype(torch_device, dtype)).eval()
    limit = model_io.max_tokens_of(model_path, model.config, tokenizer)
    identity = {"name": name, "config_hash": model_io.config_hash(model.config), "tokenizer": model_io.tokenizer_fingerprint(tokenizer),
                "max_tokens": min(max_tokens or limit, limit), "num_states": int(model.config.num_hidden_layers) + 1,
                "dim": int(model.config.hidden_size)}
    chosen = spec.resolve(identity["num_states"])
    return export(model, tokenizer, identity, ids, texts, chosen, path, max_tokens=identity["max_tokens"], words=words,
                  stride=stride, progress=progress)
