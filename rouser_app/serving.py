"""Serving many browsers: notice a tab that went away, free a closed session's memory, keep the log clean.

Bokeh keeps a session for a while after its browser disconnects and destroys it on its next check for
unused sessions; `SESSION_CLEANUP` sets those two intervals so a closed tab's memory is freed within half a
minute. A page's own work stops sooner: its periodic callback asks `browser_gone()` on every tick.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import gc
import logging
import os
import sys

import panel as pn

__all__ = ["SESSION_CLEANUP", "browser_gone", "passive_thread_waits", "quiet_closed_sockets", "release_memory",
           "schedule_release", "tolerate_dropped_connections"]

# panel/bokeh serve flags (milliseconds): a session without a browser is destroyed 15-25 s after it disconnects
SESSION_CLEANUP = {"--check-unused-sessions": "10000", "--unused-session-lifetime": "15000"}

log = logging.getLogger(__name__)


def passive_thread_waits() -> bool:
    """Ask torch's OpenMP threads to sleep, not spin, between parallel regions (unless OMP_WAIT_POLICY is set).

    A run's threads share the server's cores with its event loop and with whatever else the machine runs; spinning
    threads then wait out whole time slices for each other. Measured on 2 busy cores: one run alone trained 1-2
    steps/s with the default policy and about 40 with passive waits. Takes effect only before torch is imported;
    returns whether it did.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return "torch" not in sys.modules


def browser_gone(doc=None) -> bool:
    """True once this server session's browser has disconnected (its websocket closed) or the session ended.

    Panel does not reconnect a page to its old session, so nothing shown there can be seen again. Outside a
    server (a notebook, a test) there is no session and the answer is False.
    """
    doc = doc if doc is not None else pn.state.curdoc
    context = getattr(doc, "session_context", None)
    session = getattr(context, "session", None)
    if session is None:
        return False
    return bool(context.destroyed or session.connection_count == 0)


def _closed_socket(exc: BaseException | None) -> bool:
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError

    return isinstance(exc, (WebSocketClosedError, StreamClosedError))


def quiet_closed_sockets(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Log a write to a browser that went away as one debug line instead of an unretrieved-task traceback.

    A message half-sent when the socket closes leaves write futures nobody awaits; asyncio would print each
    one as "Task exception was never retrieved ... WebSocketClosedError". Other errors keep the default report.
    """
    if loop is None:
        from tornado.ioloop import IOLoop

        loop = IOLoop.current().asyncio_loop
    previous = loop.get_exception_handler()

    def handler(loop, context):
        if _closed_socket(context.get("exception")):
            log.debug("a write to a closed browser connection was dropped")
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def tolerate_dropped_connections() -> None:
    """No traceback when a tab closes while Bokeh's keep-alive pings it.

    A ping that fails on a closing socket makes Bokeh drop the connection from its session at once; when Tornado
    then calls the handler's ``on_close``, Bokeh asserts the connection still has its session and the log shows
    "Uncaught exception GET /rouser_app/ws ... AssertionError". The connection is gone either way: such an
    ``on_close`` only logs the close.
    """
    from bokeh.server.views.ws import WSHandler

    original = WSHandler.on_close
    if getattr(original, "_tolerates_dropped", False):
        return

    @functools.wraps(original)
    def on_close(self) -> None:
        connection = getattr(self, "connection", None)
        if connection is not None and getattr(connection, "_session", None) is None:
            log.info("WebSocket connection closed (already dropped after a failed keep-alive ping)")
            return
        original(self)

    on_close._tolerates_dropped = True
    WSHandler.on_close = on_close


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc), so RSS follows closed sessions."""
    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:  # not glibc: nothing to trim
        pass


_release_pending = False


def schedule_release(delay: float = 2.0) -> None:
    """`release_memory` once, ``delay`` seconds from now on the server's loop (sessions close in batches)."""
    global _release_pending
    if _release_pending:
        return
    from tornado.ioloop import IOLoop

    def run():
        global _release_pending
        _release_pending = False
        release_memory()

    _release_pending = True
    IOLoop.current().call_later(delay, run)
