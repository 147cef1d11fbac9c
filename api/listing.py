"""What every job-like resource's routes share: the ``GET`` list page and the answer headers of a creation.

Jobs, style models and videos are all records of one registry (``services.registry``), told apart by kind; their
list routes read the same ``status``/``limit``/``cursor`` query (described by ``api.openapi._list_operation``) and
their ``POST`` answers carry the same ``Location`` and ``Idempotent-Replayed`` headers (``api.idempotency``).
"""

from __future__ import annotations

from flask import request

from api.auth import current_tenant
from api.validation import int_query_arg
from services.registry import MAX_LIST_LIMIT, JobRegistry
from shared.jobs import JobKind, JobRecord

DEFAULT_LIST_LIMIT = 20  # api.openapi.JOBS_DEFAULT_LIMIT documents it


def list_page(registry: JobRegistry, kind: JobKind) -> tuple[list[JobRecord], str | None]:
    """This tenant's records of ``kind``, newest first: one page and the cursor of the next (None at the end).

    A bad ``limit``, ``status`` or ``cursor`` is a 400 naming it (``int_query_arg``, ``JobRegistry.list``)."""
    limit = int_query_arg(request, "limit", DEFAULT_LIST_LIMIT, 1, MAX_LIST_LIMIT)
    return registry.list(status=request.args.get("status") or None, limit=limit,
                         cursor=request.args.get("cursor") or None, tenant=current_tenant(), kind=kind.value)


def creation_headers(location: str, created: bool) -> dict[str, str]:
    """``Location`` of the resource, plus ``Idempotent-Replayed: true`` when an earlier request created it."""
    headers = {"Location": location}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return headers
