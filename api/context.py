"""What the request handlers need, built once per app: settings, job registry, storage and queue.

``create_app`` puts one ``ApiContext`` in ``app.extensions``; handlers reach it with ``api_context()``. Tests inject
their own registry, storage or queue through ``create_app``'s keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from services.queue import JobQueue
from services.registry import JobRegistry
from services.storage import Storage
from shared.settings import Settings

EXTENSION_NAME = "atelier"


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    registry: JobRegistry
    storage: Storage
    queue: JobQueue


def api_context() -> ApiContext:
    return current_app.extensions[EXTENSION_NAME]
