"""The suite runs on xdist workers, and tests sharing an expensive session fixture are grouped onto one
worker (tests/conftest.py). xdist groups by a suffix it writes into each node id; pytest 9.2 moved node ids to a
field pytest-xdist 3.8 does not write, and every group was then silently ignored: both workers ingested the
corpus and each started its own local model server. This test makes that loud."""

import pytest


@pytest.mark.xdist_group("corpus")
def test_xdist_keeps_a_group_on_one_worker(request):
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run by an xdist worker with --dist loadgroup (e.g. -n 0)")
    assert request.node.nodeid.endswith("@corpus"), (
        "pytest-xdist ignored xdist_group: this pytest and pytest-xdist do not work together; see the pytest pin "
        "in pyproject.toml")
