"""Retry with exponential backoff for the worker's writes of finished work (the result and its metrics).

A job that took minutes of GPU time must not be thrown away because storage blinked while its result was being
uploaded. botocore already retries a few times within about a second (``standard`` mode); this outer loop rides out
outages of tens of seconds (a MinIO restart), then gives up with the storage error, which fails the job cleanly
(``storage_unavailable``). Only ``Unavailable`` is retried: a refused write (bad credentials, no bucket) will not
heal by waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from shared.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

BASE_DELAY_S = 0.5
MAX_DELAY_S = 8.0


def with_backoff(operation: Callable[[], T], *, attempts: int, what: str,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``operation``; on ``Unavailable`` wait 0.5, 1, 2, 4, 8, 8... s and try again, ``attempts`` times in all."""
    delay_s = BASE_DELAY_S
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except Unavailable as exc:
            if attempt >= attempts:
                log.error("%s: storage still unavailable after %d attempts; giving up", what, attempts)
                raise
            log.warning("%s: attempt %d of %d failed (%s); retrying in %.1f s", what, attempt, attempts,
                        exc.message, delay_s, extra={"event": "storage_retry"})
            sleep(delay_s)
            delay_s = min(delay_s * 2, MAX_DELAY_S)
    raise AssertionError("unreachable")  # pragma: no cover
