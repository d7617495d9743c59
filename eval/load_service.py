"""Load the HTTP service from N concurrent clients (the logic: rag/evaluation/load_service.py).

    python eval/load_service.py --help
"""

import sys

from rag.evaluation.load_service import main

if __name__ == "__main__":
    sys.exit(main())
