"""Agent feedback: the store (a SQLite file, or PostgreSQL with ``RAG_FEEDBACK_URL``), review, and export of approved items as dataset cases."""
