"""Two `rag serve` replicas on one `chroma run` server and one real PostgreSQL: no acknowledged feedback lost under
concurrent writes through both, one replica killed midway; both follow a `rag ingest --rebuild` (a short run of
eval/load_replicas.py; the figures in docs/service.md come from a longer one)."""

import re

import pytest

from rag.evaluation.load_replicas import main

pytestmark = [pytest.mark.server, pytest.mark.postgres]


def test_two_replicas_lose_no_acknowledged_write_and_both_follow_a_rebuild(dataset, capsys):
    assert main(["--data", str(dataset), "--clients", "3", "--seconds", "4"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    found = re.search(r"found: (\d+) of (\d+) acknowledged writes in PostgreSQL, (\d+) lost", out)
    assert found and int(found[1]) == int(found[2]) > 0 and found[3] == "0", out
    assert "replica B killed (SIGKILL)" in out and "password" not in out and ":***@" in out
    rebuild = re.search(r"rebuild: generation (\d+) -> (\d+); .*, 0 failed", out)
    assert rebuild and int(rebuild[2]) == int(rebuild[1]) + 1, out
