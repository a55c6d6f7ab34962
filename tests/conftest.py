"""Shared fixtures: tests run offline and keep their data in temporary folders."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("LAYERWISE_CACHE", tempfile.mkdtemp(prefix="layerwise-cache-"))  # remembered model facts
