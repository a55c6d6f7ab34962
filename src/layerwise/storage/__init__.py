"""The collection on disk: SQLAlchemy metadata, raw per-layer vectors, FAISS index files."""
