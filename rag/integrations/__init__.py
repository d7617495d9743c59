"""Adapters that plug the case retriever into other frameworks (optional extras)."""
