"""Scoring: how good a retrieval ranking or a draft is against what the real agents answered."""
