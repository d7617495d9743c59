"""Slow clients are cut at the connection: uvicorn's HTTP protocol with two deadlines added.

uvicorn bounds an idle keep-alive connection (5 s) but not a client that sends its request headers a byte at
a time, nor one that stops reading a response (issue 24: 300 slow-header and 50 non-reading stream connections
were held for 90 s). Both are cut here, where the socket is, because the ASGI app never sees either: the first
never becomes a request, and the second only makes the app's ``send`` wait.

- **Header deadline** (``RAG_HEADER_TIMEOUT``): from the connection's start, and again from the end of each
  response, a client has this long to complete the next request's headers; otherwise the connection is
  closed. An idle keep-alive connection is closed by uvicorn's own, shorter, keep-alive timeout first.
- **Write stall** (``RAG_SEND_TIMEOUT``): when the socket's send buffer is full the transport pauses writing;
  a client that leaves it paused this long is aborted (``abort`` drops the unsent data; ``close`` would wait
  for it to be read, forever).

The body deadline and the per-client stream limit live in the ASGI middleware (``rag.service.security``),
which sees requests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from rag.configs import ServiceConfig

logger = logging.getLogger("rag.service")


class _Deadlines:
    """Mixed into one of uvicorn's HTTP protocols; ``header_timeout``/``send_timeout`` set by ``protocol``."""

    header_timeout: float = 10.0
    send_timeout: float = 30.0
    # the protocol's own attributes, named for the type checker
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]  # a mixin: uvicorn's protocol follows it in the MRO
        self._write_timer: asyncio.TimerHandle | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_deadline)

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or bool(getattr(self.cycle, "response_complete", False))

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            logger.info("closed a connection whose request headers took over %.0f s (RAG_HEADER_TIMEOUT)", self.header_timeout)
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]  # a mixin: uvicorn's protocol follows it in the MRO
        if not self.transport.is_closing():
            self._arm_header_deadline()  # the next request on this connection gets the same deadline

    def pause_writing(self) -> None:
        super().pause_writing()  # type: ignore[misc]  # a mixin: uvicorn's protocol follows it in the MRO
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.send_timeout, self._write_stalled)

    def resume_writing(self) -> None:
        super().resume_writing()  # type: ignore[misc]  # a mixin: uvicorn's protocol follows it in the MRO
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_stalled(self) -> None:
        self._write_timer = None
        logger.info("aborted a connection that left %.0f s of writes unread (RAG_SEND_TIMEOUT)", self.send_timeout)
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._header_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._write_timer = None
        super().connection_lost(exc)  # type: ignore[misc]  # a mixin: uvicorn's protocol follows it in the MRO


def protocol(config: ServiceConfig) -> type:
    """uvicorn's HTTP protocol (httptools when installed, as uvicorn's "auto" picks, else h11) with the deadlines."""
    base: type
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    except ImportError:
        base = H11Protocol
    return type(f"Deadline{base.__name__}", (_Deadlines, base),
                {"header_timeout": config.header_timeout, "send_timeout": config.send_timeout})


def uvicorn_options(config: ServiceConfig) -> dict[str, Any]:
    """What ``rag serve`` passes to uvicorn for slow clients."""
    return {"http": protocol(config)}
