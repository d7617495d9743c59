"""The suite runs with outbound network blocked: a hidden download fails here, loudly."""

import socket

import httpx
import pytest
from pytest_socket import SocketBlockedError, SocketConnectBlockedError


def test_outbound_connections_are_blocked():
    with pytest.raises((SocketBlockedError, SocketConnectBlockedError)):
        httpx.get("http://93.184.216.34/model.onnx", timeout=2)  # an IP literal: fails at connect, not DNS
    with pytest.raises((SocketBlockedError, SocketConnectBlockedError)):
        socket.create_connection(("93.184.216.34", 80), timeout=2)


def test_loopback_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    with socket.create_connection(server.getsockname(), timeout=2):
        pass
    server.close()
