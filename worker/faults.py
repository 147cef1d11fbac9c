"""Test-only fault injection: a job that kills its worker every time it starts.

Only active when the environment variable ``ATELIER_TEST_CRASH_ON_CONTENT_NAME`` is set (never in compose, k8s or
``atelier dev``'s defaults): a job whose content file was uploaded under exactly that name makes the worker process
exit at once with ``os._exit`` — no cleanup, no acknowledgement, no record update — as an out-of-memory kill would.
The fault tests (tests/reliability) use it to check the redelivery cap: such a job must end ``failed`` with
``worker_lost`` and other jobs must still finish.
"""

from __future__ import annotations

import logging
import os

from shared.jobs import JobRecord

log = logging.getLogger(__name__)

CRASH_ENV = "ATELIER_TEST_CRASH_ON_CONTENT_NAME"
CRASH_EXIT_CODE = 86


def crash_if_requested(record: JobRecord) -> None:
    name = os.environ.get(CRASH_ENV)
    if name and record.inputs.get("content_name") == name:
        log.error("job %s: %s=%r matches its content; test switch: killing this worker process",
                  record.id, CRASH_ENV, name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(CRASH_EXIT_CODE)
