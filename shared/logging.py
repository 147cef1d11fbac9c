"""Structured logs: one JSON object per line, carrying the id of the job being handled.

Every process (API, worker, ``atelier dev``'s children) calls ``configure_logging(service, fmt)`` once at start-up;
the worker's Celery logging is adapted in ``worker/signals.py`` with ``json_handler_setup``. Whoever handles a job
binds its id with ``job_context(job_id)`` (or ``bind_job_id``), and every log line written meanwhile, from any
logger, carries ``"job_id"``: a log search for one id shows the API accepting it, the worker running it, and why it
failed. The id lives in a ``ContextVar``, so concurrent requests on gunicorn threads never see each other's id.

A line looks like::

    {"ts": "2026-11-23T22:50:01.123Z", "level": "INFO", "service": "worker", "logger": "worker.runner",
     "message": "job 3f... succeeded: 32x21 in 1.2 s", "job_id": "3f...", "pid": 4242}

plus any ``extra=`` fields of the call and ``exc_info`` as a string.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

JOB_ID: ContextVar[str | None] = ContextVar("atelier_job_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is worth keeping.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "job_id"}
_HANDLER_MARK = "_atelier_handler"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [job %(job_id)s] %(message)s"


def bind_job_id(job_id: str | None) -> Token[str | None]:
    """Attach ``job_id`` to every log line of this thread/task until ``JOB_ID.reset(token)``."""
    return JOB_ID.set(job_id)


@contextmanager
def job_context(job_id: str | None) -> Iterator[None]:
    token = JOB_ID.set(job_id)
    try:
        yield
    finally:
        JOB_ID.reset(token)


class JobIdFilter(logging.Filter):
    """Puts the bound job id on each record (``record.job_id``, None outside a job). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = JOB_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object (keys above). Values that JSON cannot hold become strings."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "job_id": getattr(record, "job_id", None) or JOB_ID.get(),
            "pid": record.process or os.getpid(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRS and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def make_formatter(service: str, fmt: str = "json") -> logging.Formatter:
    """``fmt`` is ``Settings.log_format``: "json", or "text" for reading in a terminal."""
    if fmt == "json":
        return JsonFormatter(service)
    if fmt == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"log format {fmt!r} is not allowed; expected json or text")


def json_handler_setup(handler: logging.Handler, service: str, fmt: str = "json") -> logging.Handler:
    """Give an existing handler (Celery's, gunicorn's) our formatter and the job-id filter."""
    handler.setFormatter(make_formatter(service, fmt))
    if not any(isinstance(f, JobIdFilter) for f in handler.filters):
        handler.addFilter(JobIdFilter())
    return handler


def configure_logging(service: str, fmt: str = "json", level: str | int = "INFO") -> logging.Handler:
    """Send the root logger to stderr in ``fmt``. Idempotent: a second call replaces our handler, not adds one."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = json_handler_setup(logging.StreamHandler(sys.stderr), service, fmt)
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
