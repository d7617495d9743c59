"""Embeddings and the Chroma store: embedders, the on-disk caches, store generations and health, ingest."""
