"""Searching views, fusion, BM25, evaluation and metrics."""
