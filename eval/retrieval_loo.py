"""Leave-one-out retrieval evaluation over the corpus (the logic: rag/evaluation/retrieval_loo.py).

    python eval/retrieval_loo.py --help
"""

import sys

from rag.evaluation.retrieval_loo import main

if __name__ == "__main__":
    sys.exit(main())
