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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from layerwise.errors import LayerRangeError, LayerSpecError

MIX_KINDS = ("mean", "wsum", "concat", "firstlast")
_MIX_RE = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$", re.S)
_INT_RE = re.compile(r"^[+-]?\d+$")


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
