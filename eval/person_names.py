"""False names on the corpus and recall on the labelled tables (the logic: rag/evaluation/name_detection.py).

    python eval/person_names.py [--show]
"""

import sys

from rag.evaluation.name_detection import main

if __name__ == "__main__":
    sys.exit(main())
