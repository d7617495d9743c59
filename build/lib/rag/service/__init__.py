"""The HTTP service: suggested replies, cases and feedback over a FastAPI app, plus the agents' web page."""

from rag.service.app import create_app

__all__ = ["create_app"]
