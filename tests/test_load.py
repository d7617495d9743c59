"""The load script runs against a live service with zero errors (a short run; the real one is longer)."""


import pytest


from rag.evaluation.load_service import main as load_main

pytestmark = pytest.mark.server


def test_load_script_short_run(live_server, capsys):
    url, _ = live_server
    assert load_main(["--url", url, "--clients", "4", "--seconds", "3"]) == 0
    out = capsys.readouterr().out
    assert "0 errors" in out and "p95" in out


def test_load_script_refuses_non_loopback_targets():
    with pytest.raises(SystemExit, match="loopback"):
        load_main(["--url", "http://10.0.0.1:8000", "--seconds", "1"])
