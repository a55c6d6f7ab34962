"""Searching views: planning view specs, the searcher, ranking, fusion and overlap."""
