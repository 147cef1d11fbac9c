"""Server-Sent Events: framing, the per-process cap on open streams, and the tail loop over a Redis stream.

Why a cap (docs/events.md): the API runs under gunicorn's threaded worker (``services/commands.py``: ``--threads``
= the request threads + ``ATELIER_SSE_MAX_STREAMS``). An open event stream holds one thread for as long as it is
open, so without a cap a few browser tabs could take every thread and ordinary requests would queue behind them.
Each process admits at most ``sse_max_streams`` streams at a time and answers the next with ``503`` +
``Retry-After`` (code ``too_many_streams``); the page then polls. The request threads stay free for requests.

A stream holds its thread cheaply: it waits in ``XREAD BLOCK`` (no polling), writes a comment line every
``sse_heartbeat_s`` (so proxies keep the connection and a vanished client is noticed at the next write), and ends
after ``sse_max_stream_s`` so no client holds a slot for ever; the browser's EventSource reconnects by itself
(``retry:`` hint) with ``Last-Event-ID`` and misses nothing.

Framing follows the WHATWG HTML "Server-sent events" section: ``id:``, ``event:``, one ``data:`` line of JSON, a
blank line; comment lines start with ``:``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
from flask import Flask, Response

from api.ratelimit import RateLimited
from services import events
from services.events import Event

RETRY_MS = 3000  # the EventSource reconnection delay we ask for
BLOCK_MAX_MS = 5000  # one XREAD BLOCK; below the Redis client's 10 s socket timeout (services/redis_client.py)
RETRY_AFTER_S = 5  # Retry-After of a refused stream
EXTENSION = "atelier.sse_slots"
_SLOTS_LOCK = threading.Lock()

Handler = Callable[[list[Event]], tuple[list[str], bool]]


class TooManyStreams(RateLimited):
    """The process already serves ``sse_max_streams`` streams (answered 503 + Retry-After by ratelimit's handler)."""

    http_status = 503


class StreamSlots:
    """A counter of open streams in this process, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def acquire(self) -> Callable[[], None]:
        """Take a slot or raise ``TooManyStreams``; returns the release function (safe to call twice)."""
        with self._lock:
            if self.open >= self.limit:
                raise TooManyStreams(
                    "too_many_streams", f"this API process already serves {self.open} event streams; allowed: "
                    f"{self.limit} (ATELIER_SSE_MAX_STREAMS); poll the resource or retry later",
                    retry_after_s=RETRY_AFTER_S)
            self.open += 1
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if not released.is_set():
                    released.set()
                    self.open -= 1

        return release


def slots_for(app: Flask, limit: int) -> StreamSlots:
    with _SLOTS_LOCK:
        slots = app.extensions.get(EXTENSION)
        if slots is None:
            slots = app.extensions[EXTENSION] = StreamSlots(limit)
        return slots


# --- framing ------------------------------------------------------------------------------------------------------

def frame(name: str, data: dict[str, Any], event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def retry_hint() -> str:
    return f"retry: {RETRY_MS}\n\n"


HEARTBEAT = ": keep-alive\n\n"


def event_stream_response(body: Iterator[str], release: Callable[[], None]) -> Response:
    """The streaming response; ``release`` runs when the server closes it (finished, client gone, or never
    started), which a ``finally`` in the generator alone would miss for a generator that never ran."""
    response = Response(body, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
    response.call_on_close(release)
    return response


# --- resuming -----------------------------------------------------------------------------------------------------

def resume_point(last_event_id: str | None, first_id: str | None, last_id: str | None) -> str | None:
    """The entry id to continue after, when ``Last-Event-ID`` names a point the stream still holds everything after
    (between its first and last entries); None when the client must be sent the current state instead (no or a
    malformed id, one older than the trimmed stream's first entry, one from the future, or an expired stream)."""
    if not last_event_id or first_id is None or last_id is None:
        return None
    try:
        if events.compare_ids(last_event_id, first_id) < 0 or events.compare_ids(last_event_id, last_id) > 0:
            return None
    except ValueError:
        return None
    return last_event_id.strip()


def stream_bounds(pipe_result: list[Any]) -> tuple[str | None, str | None]:
    """(first id, last id) from the replies of ``XRANGE key - + COUNT 1`` and ``XREVRANGE key + - COUNT 1``."""
    first, last = events.parse_entries(pipe_result[0]), events.parse_entries(pipe_result[1])
    return (first[0].id if first else None), (last[0].id if last else None)


# --- tailing ------------------------------------------------------------------------------------------------------

def tail(client: redis.Redis, key: str, cursor: str, handle: Handler, *, heartbeat_s: float, max_s: float,
         idle_block_ms: int = BLOCK_MAX_MS) -> Iterator[str]:
    """Frames for the events of ``key`` after ``cursor`` until ``handle`` says the stream is over, or ``max_s``.

    ``handle`` gets each chunk of new events (an empty list when a wait timed out: a chance to emit derived
    frames) and returns (frames, ended). A Redis failure ends the stream; the client reconnects with its last id."""
    deadline_s = time.monotonic() + max_s
    last_write_s = time.monotonic()
    while True:
        now_s = time.monotonic()
        if now_s >= deadline_s:
            return
        until_heartbeat_ms = int(max(0.0, heartbeat_s - (now_s - last_write_s)) * 1000)
        block_ms = max(1, min(idle_block_ms, until_heartbeat_ms, int((deadline_s - now_s) * 1000) + 1))
        try:
            chunk = events.read_after(client, key, cursor, block_ms=block_ms)
            frames, ended = handle(chunk)
        except redis.RedisError:
            return
        if chunk:
            cursor = chunk[-1].id
        for text in frames:
            yield text
            last_write_s = time.monotonic()
        if ended:
            return
        if time.monotonic() - last_write_s >= heartbeat_s:
            yield HEARTBEAT
            last_write_s = time.monotonic()
