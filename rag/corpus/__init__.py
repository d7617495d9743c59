"""The dataset: its Markdown format, parsing into cases, de-identification, chunks and the case repository."""
