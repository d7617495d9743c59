"""The corpus an evaluation grades: the cases of the store it evaluates, never a different one.

The store keeps what a draft needs of each case, not the whole dialogue that the references, the
template finder and the independent leak check read; those come from parsing the dataset files.
Case ids are content hashes of the source file and the case, so the parsed corpus is the ingested
one exactly when the two id sets are equal; otherwise the run is refused before drafting, saying
what differs, instead of grading tickets the retriever never indexed (or missing ones it did).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from rag.errors import ConfigError
from rag.parse import parse_paths
from rag.records import Case


class CorpusMismatchError(ConfigError):
    """The dataset files and the store hold different cases."""


def graded_cases(data_dir: Path, stored_ids: Iterable[str]) -> list[Case]:
    """The cases under ``data_dir``, checked to be exactly the ``stored_ids`` (in corpus order)."""
    cases, _ = parse_paths([data_dir])
    stored = set(stored_ids)
    parsed = {c.id for c in cases}
    if stored != parsed:
        only_stored, only_parsed = len(stored - parsed), len(parsed - stored)
        raise CorpusMismatchError(
            f"the store holds {len(stored)} cases and {data_dir} (RAG_DATA_DIR) {len(parsed)}: {only_stored} only in "
            f"the store, {only_parsed} only in the files. Evaluation grades the corpus it retrieves from: run "
            "`rag ingest --prune` on that folder, or point RAG_DATA_DIR at the folder the store was built from")
    return cases
