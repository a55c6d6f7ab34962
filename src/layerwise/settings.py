"""EncoderSettings: the one object that says how to build an encoder.

It is built once — from CLI options, API arguments or a collection's stored
model identity — and handed to the local encoder, the Ray actors and the
searcher, so no front end writes the same arguments out again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from layerwise.errors import UsageError
from layerwise.types import ModelIdentity

POOLINGS = ("mean", "cls", "max")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "fp32", "bf16", "fp16")
QUANTIZATIONS = ("int8",)


@dataclass(frozen=True)
class EncoderSettings:
    """Model, placement, precision, pooling and batching of an encoder."""

    model: str | None = None  # None: the packaged default model
    device: str = "auto"
    dtype: str = "auto"
    pooling: str | None = None  # None: the collection's, else mean
    max_tokens: int | None = None  # None: the model's maximum
    quantize: str | None = None
    token_budget: int | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.pooling is not None:
            _one_of("pooling", self.pooling, POOLINGS)
        _one_of("dtype", "fp32" if self.dtype == "float32" else self.dtype, DTYPES)
        if self.quantize is not None:
            _one_of("quantize", self.quantize, QUANTIZATIONS)
        if not (self.device in DEVICES or self.device.startswith("cuda:")):
            raise UsageError(f"unknown device '{self.device}': use auto, cpu or cuda")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise UsageError(f"--max-tokens {self.max_tokens} is out of range: give 1 up to the model's limit "
                             "(256 for the default model), or leave it out for the limit")
        for name in ("token_budget", "workers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"{name} {value} must be at least 1")

    @classmethod
    def from_identity(cls, identity: ModelIdentity, device: str = "auto", dtype: str = "auto") -> "EncoderSettings":
        """Settings that reproduce a collection's encoder, placed on ``device``."""
        return cls(model=identity.name, device=device, dtype=dtype, pooling=identity.pooling,
                   max_tokens=identity.max_tokens, quantize=identity.quantize)

    def filled_from(self, identity: ModelIdentity) -> "EncoderSettings":
        """These settings with every unset field taken from a collection's identity (what was set stays, so a
        different model or pooling asked for is refused by the identity check rather than silently replaced)."""
        return replace(self, model=self.model or identity.name, pooling=self.pooling or identity.pooling,
                       max_tokens=self.max_tokens or identity.max_tokens, quantize=self.quantize or identity.quantize)

    def with_(self, **changes: Any) -> "EncoderSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _one_of(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"unknown {what} '{value}': use one of {', '.join(allowed)}")
