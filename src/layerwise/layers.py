"""The one grammar for layer selections and layer mixes.

Layer indices follow the Hugging Face ``hidden_states`` convention: 0 is the
embedding output, 1..L the encoder layers, and negative indices count from the
end (-1 is the last layer). A spec is parsed once into a validated object:

    all                   every hidden state, each its own view
    6  |  -1  |  0,3,6    single layers or a list of them
    -4:  |  1:4           Python-style slices (end exclusive)
    mean(-4:)             mean of the selected layers
    wsum(-4:; .1,.2,.3,.4)  weighted sum, one weight per selected layer
    concat(-2:)           concatenation of the selected layers
    firstlast()           mean of the first encoder layer and the last layer

A mix L2-normalises each layer before weighting it (``unit``, the default); add
``; raw`` as the last argument to weight the raw pooled vectors instead. Every
mix is L2-normalised after mixing when it is indexed or searched.

A *view spec* (``parse_view``) is any of the above, or

    bm25                  lexical ranking of whole documents (bm25-passages: of the passages)
    rrf(bm25 | -1)        reciprocal rank fusion of view specs
    fuse(bm25:0.3 | -1:0.7)  weighted fusion of min-max normalised scores
    NAME                  a view stored in the collection (``validate_view_name``)

so the CLI, the API, the server and evaluation read views with one grammar.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from layerwise.errors import LayerRangeError, LayerSpecError

MIX_KINDS = ("mean", "wsum", "concat", "firstlast")
FUSION_METHODS = ("rrf", "fuse")
BM25 = "bm25"  # whole documents, independent of the encoder's passages
BM25_PASSAGES = "bm25-passages"  # the encoder-made passages, a document scored by its best one
LEXICAL = (BM25, BM25_PASSAGES)
RESERVED_NAMES = frozenset({"all", "stored", "default", *LEXICAL, *MIX_KINDS, *FUSION_METHODS})
_VIEW_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_LAYER_NAME_RE = re.compile(r"^layer\d+$", re.I)
_MIX_RE = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$", re.S)
_INT_RE = re.compile(r"^[+-]?\d{1,100}$")  # bounded: int() refuses strings of more than 4300 digits
MAX_NESTING = 32  # fusions nest; deeper specs are refused before recursion could run out of stack


@dataclass(frozen=True)
class LayerItem:
    """One element of a selection: a single index or a slice."""

    start: int | None
    stop: int | None = None
    is_slice: bool = False

    def indices(self, num_states: int) -> list[int]:
        if not self.is_slice:
            return [_check_index(self.start, num_states)]  # type: ignore[arg-type]
        for bound in (self.start, self.stop):
            if bound is not None and not -num_states <= bound <= num_states:
                raise _range_error(bound, num_states)
        return list(range(num_states))[slice(self.start, self.stop)]

    def __str__(self) -> str:
        if not self.is_slice:
            return str(self.start)
        return f"{'' if self.start is None else self.start}:{'' if self.stop is None else self.stop}"


@dataclass(frozen=True)
class LayerSpec:
    """Base of a parsed spec: a plain selection or a mix."""

    def resolve(self, num_states: int) -> tuple[int, ...]:
        """The concrete non-negative hidden-state indices this spec reads."""
        raise NotImplementedError

    @property
    def is_mix(self) -> bool:
        return isinstance(self, Mix)


@dataclass(frozen=True)
class Selection(LayerSpec):
    """A set of hidden states, each searched as its own view."""

    items: tuple[LayerItem, ...]
    everything: bool = False

    def resolve(self, num_states: int) -> tuple[int, ...]:
        if self.everything:
            return tuple(range(num_states))
        chosen: list[int] = []
        for item in self.items:
            chosen.extend(i for i in item.indices(num_states) if i not in chosen)
        if not chosen:
            raise LayerSpecError(f"layer selection '{self}' selects no hidden state (this model has 0..{num_states - 1})")
        return tuple(chosen)

    def __str__(self) -> str:
        return "all" if self.everything else ",".join(str(i) for i in self.items)


@dataclass(frozen=True)
class Mix(LayerSpec):
    """A linear combination (or concatenation) of several hidden states, one view."""

    kind: str
    selection: Selection
    weights: tuple[float, ...] | None = None
    unit_layers: bool = True

    def resolve(self, num_states: int) -> tuple[int, ...]:
        layers = self.selection.resolve(num_states)
        if self.weights is not None and len(self.weights) != len(layers):
            raise LayerSpecError(
                f"'{self}' gives {len(self.weights)} weights for {len(layers)} layers {list(layers)}: give one weight per layer"
            )
        return layers

    def layer_weights(self, num_states: int) -> np.ndarray:
        """Weights per resolved layer (concat uses ones)."""
        layers = self.resolve(num_states)
        if self.weights is not None:
            return np.asarray(self.weights, dtype=np.float32)
        if self.kind == "concat":
            return np.ones(len(layers), dtype=np.float32)
        return np.full(len(layers), 1.0 / len(layers), dtype=np.float32)

    def apply(self, stack: np.ndarray, num_states: int) -> np.ndarray:
        """Mix pooled vectors shaped (n, layers, dim), in resolve() order, into (n, dim')."""
        if self.unit_layers:
            stack = stack / np.maximum(np.linalg.norm(stack, axis=-1, keepdims=True), 1e-12)
        weighted = stack * self.layer_weights(num_states)[None, :, None]  # (n, k, d)
        if self.kind == "concat":
            return weighted.reshape(len(stack), -1)  # (n, k*d)
        return weighted.sum(axis=1)  # (n, d)

    def __str__(self) -> str:
        args = [] if self.kind == "firstlast" else [str(self.selection)]
        if self.weights is not None:
            args.append(",".join(f"{w:g}" for w in self.weights))
        if not self.unit_layers:
            args.append("raw")
        return f"{self.kind}({'; '.join(args)})"


def parse(text: str) -> LayerSpec:
    """Parse a layer selection or mix expression into a validated spec."""
    text = text.strip()
    if not text:
        raise LayerSpecError("empty layer spec: give e.g. -1, all, -4: or mean(-4:)")
    match = _MIX_RE.match(text)
    if match:
        return _parse_mix(match.group(1), match.group(2), text)
    return _parse_selection(text)


def _parse_selection(text: str) -> Selection:
    if text.lower() == "all":
        return Selection(items=(), everything=True)
    return Selection(items=tuple(_parse_item(part.strip(), text) for part in text.split(",")))


def _parse_item(part: str, whole: str) -> LayerItem:
    if _INT_RE.match(part):
        return LayerItem(int(part))
    if part.count(":") == 1:
        lo, hi = (p.strip() for p in part.split(":"))
        if all(p == "" or _INT_RE.match(p) for p in (lo, hi)):
            return LayerItem(int(lo) if lo else None, int(hi) if hi else None, is_slice=True)
    raise LayerSpecError(
        f"cannot read layer '{part}' in '{whole}': use an index (-1, 6), a slice (-4:, 1:4), a list (0,3,6), "
        f"'all', or a mix such as mean(-4:)"
    )


def _parse_mix(kind: str, body: str, whole: str) -> Mix:
    if kind not in MIX_KINDS:
        raise LayerSpecError(f"unknown mix '{kind}' in '{whole}': use one of {', '.join(MIX_KINDS)}")
    parts = [p.strip() for p in body.split(";")] if body.strip() else []
    unit = True
    if parts and parts[-1].lower() in ("raw", "unit"):
        unit = parts.pop().lower() == "unit"
    if kind == "firstlast":
        if parts:
            raise LayerSpecError(f"firstlast() takes no layers (it means mean(1,-1)); got '{whole}'")
        return Mix("firstlast", _parse_selection("1,-1"), None, unit)
    if not parts:
        raise LayerSpecError(f"'{whole}' names no layers: write e.g. {kind}(-4:)")
    weights = _parse_weights(parts[1], whole) if len(parts) > 1 else None
    if kind == "wsum" and weights is None:
        raise LayerSpecError(f"'{whole}' needs weights: wsum(-4:; 0.1,0.2,0.3,0.4)")
    if len(parts) > 2 or (kind != "wsum" and weights is not None):
        raise LayerSpecError(f"too many arguments in '{whole}': {kind}(LAYERS{'; WEIGHTS' if kind == 'wsum' else ''}[; raw])")
    return Mix(kind, _parse_selection(parts[0]), weights, unit)


def _parse_weights(text: str, whole: str) -> tuple[float, ...]:
    try:
        weights = tuple(float(w) for w in text.split(","))
    except ValueError:
        raise LayerSpecError(f"weights '{text}' in '{whole}' are not numbers: write 0.1,0.2,0.3,0.4") from None
    if not all(math.isfinite(w) for w in weights):
        raise LayerSpecError(f"weights in '{whole}' must be finite numbers (no nan or inf)")
    if not any(weights):
        raise LayerSpecError(f"weights in '{whole}' are all zero")
    return weights


def _check_index(index: int, num_states: int) -> int:
    if not -num_states <= index < num_states:
        raise _range_error(index, num_states)
    return index % num_states


def _range_error(index: int, num_states: int) -> LayerRangeError:
    return LayerRangeError(
        f"layer {index} is out of range: this model has hidden states 0..{num_states - 1} "
        f"(or -{num_states}..-1 from the end)"
    )


def layer_name(index: int) -> str:
    """The view name of a single hidden state."""
    return f"layer{index}"


@dataclass(frozen=True)
class Lexical:
    """A lexical ranking: BM25 over whole documents (``bm25``) or over the passages (``bm25-passages``)."""

    name: str = BM25

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Named:
    """A view stored in a collection, by name (``layer3`` names a single layer)."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Fusion:
    """``rrf(a | b | ...)`` or ``fuse(a:0.3 | b:0.7)``: one ranking from several view specs."""

    method: str
    members: tuple["ViewSpec", ...]
    weights: tuple[float, ...] | None = None

    def __str__(self) -> str:
        if self.weights is None:
            return f"{self.method}({' | '.join(str(m) for m in self.members)})"
        return f"{self.method}({' | '.join(f'{m}:{w:g}' for m, w in zip(self.members, self.weights))})"


ViewSpec = Selection | Mix | Lexical | Named | Fusion


def parse_view(text: str) -> ViewSpec:
    """Parse any view spec: a layer selection or mix, bm25, a fusion, or a stored view name."""
    text = text.strip()
    if _nesting(text) > MAX_NESTING:
        raise LayerSpecError(f"view spec nests more than {MAX_NESTING} parentheses deep: write a flatter fusion")
    match = _MIX_RE.match(text)
    if match and match.group(1).lower() in FUSION_METHODS:
        return _parse_fusion(match.group(1).lower(), match.group(2), text)
    if text.lower() in LEXICAL:
        return Lexical(text.lower())
    if _VIEW_NAME_RE.fullmatch(text) and text.lower() != "all":
        return Named(text)
    return parse(text)


def _nesting(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        deepest = max(deepest, depth)
    return deepest


def _parse_fusion(method: str, body: str, whole: str) -> Fusion:
    parts = [p.strip() for p in _split_members(body) if p.strip()]
    if not parts:
        raise LayerSpecError(f"'{whole}' fuses nothing: write e.g. rrf(bm25 | -1) or fuse(bm25:0.3 | -1:0.7)")
    weighted = [p.rpartition(":") for p in parts]
    if all(w[0].strip() and _is_number(w[2]) for w in weighted):
        weights = tuple(float(w[2]) for w in weighted)
        if not all(math.isfinite(w) for w in weights) or not any(weights):
            raise LayerSpecError(f"weights in '{whole}' must be finite numbers, not all zero")
        return Fusion(method, tuple(parse_view(w[0]) for w in weighted), weights)
    return Fusion(method, tuple(parse_view(p) for p in parts), None)


def _split_members(body: str) -> list[str]:
    """Split on '|' outside parentheses, so fusions and mixes nest."""
    parts, depth, current = [], 0, []
    for char in body:
        depth += (char == "(") - (char == ")")
        if char == "|" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def validate_view_name(name: str) -> str:
    """A name a view can be stored under, or LayerSpecError saying why not."""
    if not _VIEW_NAME_RE.fullmatch(name):
        raise LayerSpecError(
            f"view name {name!r} is invalid: start with a letter, then letters, digits, '_', '-' or '.' (at most 64)"
        )
    if name.lower() in RESERVED_NAMES or _LAYER_NAME_RE.match(name):
        raise LayerSpecError(f"view name '{name}' is reserved (layerN, bm25, all, mix and fusion names): choose another name")
    return name
