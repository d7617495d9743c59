"""``python -m rag.cli``: the same command as the ``rag`` console script."""

from rag.cli import main

main()
