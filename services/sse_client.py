"""A small client for the API's event streams (``GET /v1/.../events``): used by the tests, bench/sse.py and scripts.

Parses ``text/event-stream`` as the WHATWG HTML standard says (fields ``id``, ``event``, ``data``, ``retry``; lines
starting with ``:`` are comments; a blank line dispatches), over ``requests`` with ``stream=True``.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class StreamEvent:
    name: str
    data: Any  # the parsed JSON payload
    id: str | None


def parse(lines: Iterable[str]) -> Iterator[StreamEvent]:
    """Events from the decoded lines of a stream (without their line endings); comments and ``retry`` skipped."""
    name, data, event_id = "message", [], None
    for line in lines:
        if not line:
            if data:
                yield StreamEvent(name, json.loads("\n".join(data)), event_id)
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value


def open_stream(url: str, *, token: str | None = None, last_event_id: str | None = None,
                timeout_s: float = 30.0) -> requests.Response:
    """GET the stream (``stream=True``); the caller checks the status and closes the response."""
    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    return requests.get(url, headers=headers, stream=True, timeout=timeout_s)


def events(response: requests.Response) -> Iterator[StreamEvent]:
    """The events of an open stream response, as they arrive."""
    return parse(_lines(response))


def _lines(response: requests.Response) -> Iterator[str]:
    # Our own split rather than iter_lines: a blank line (the dispatch) must survive any chunk boundary.
    decoder, buffer = codecs.getincrementaldecoder("utf-8")(), ""
    for chunk in response.iter_content(chunk_size=None):
        buffer += decoder.decode(chunk)
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            yield line.rstrip("\r")
