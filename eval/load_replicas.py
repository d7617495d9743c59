"""Two rag serve replicas on one chroma run server and one PostgreSQL, loaded together (the logic:
rag/evaluation/load_replicas.py).

    python eval/load_replicas.py --help
"""

import sys

from rag.evaluation.load_replicas import main

if __name__ == "__main__":
    sys.exit(main())
