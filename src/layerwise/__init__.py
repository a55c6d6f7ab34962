"""layerwise: semantic search that keeps every hidden state of a BERT-family encoder."""

__version__ = "0.1.0"
