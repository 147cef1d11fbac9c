"""The ``webhook`` and ``webhook_events`` form fields of every creating request (jobs, batches, style models; videos).

- ``webhook``: an ``http``/``https`` URL the service POSTs a signed event to when the work ends. Refused (422) when
  it is malformed (``bad_webhook_url``), does not resolve (``webhook_unresolvable``) or resolves to a loopback,
  private, link-local, multicast or reserved address (``webhook_address_refused``) that ``ATELIER_WEBHOOK_ALLOWLIST``
  does not name (``services/webhooks/addresses.py``).
- ``webhook_events``: which endpoints of the work call it, a comma list (``succeeded,failed``) or a JSON list
  (``["succeeded"]``). For a job or a style model: ``succeeded``, ``failed``, ``canceled`` (default: all three); for
  a batch: ``finished``, ``canceled`` (default: both). Without ``webhook`` it is refused (400
  ``webhook_events_without_webhook``); an unknown value is 422 ``bad_webhook_events`` naming it and the allowed ones.

``parse_webhook`` returns the ``{"url", "events"}`` the record stores, or None when the request has no ``webhook``.
A route that reads its fields with ``api.validation.refuse_unknown_parts`` lists ``WEBHOOK_FIELDS`` among its form
fields.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request

from api.validation import form_text
from services.webhooks.addresses import Allowlist, check_url
from shared.errors import BadRequest, ParamError

WEBHOOK_FIELDS = ("webhook", "webhook_events")
JOB_EVENTS = ("succeeded", "failed", "canceled")
BATCH_EVENTS = ("finished", "canceled")


def parse_webhook(request: Request, *, allowlist: str, allowed_events: tuple[str, ...] = JOB_EVENTS
                  ) -> dict[str, Any] | None:
    """The request's webhook (checked, SSRF included), or None. Raises ``AtelierError`` (400/422) naming the value."""
    url = form_text(request, "webhook")
    events_text = form_text(request, "webhook_events")
    if url is None or not url.strip():
        if events_text is not None and events_text.strip():
            raise BadRequest("webhook_events_without_webhook", "webhook_events was sent without webhook; send the "
                             "URL to call in the 'webhook' field", field="webhook_events")
        return None
    target = check_url(url.strip(), Allowlist.parse(allowlist))
    return {"url": target.url, "events": parse_events(events_text, allowed_events)}


def parse_events(text: str | None, allowed: tuple[str, ...]) -> list[str]:
    """``"succeeded, failed"`` or ``'["succeeded"]'`` -> ``["succeeded", "failed"]`` (in ``allowed``'s order);
    empty or missing -> all of ``allowed``."""
    expected = f"expected a comma list or JSON list of {', '.join(allowed)}"
    if text is None or not text.strip():
        return list(allowed)
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            values = json.loads(stripped)
        except ValueError:
            values = None
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise BadRequest("bad_webhook_events", f"webhook_events={stripped[:100]!r} is not a JSON list of "
                             f"strings; {expected}", field="webhook_events")
    else:
        values = stripped.split(",")
    chosen = {value.strip().lower() for value in values if value.strip()}
    unknown = sorted(chosen - set(allowed))
    if unknown:
        raise ParamError("bad_webhook_events", f"webhook_events value {unknown[0][:40]!r} is not allowed; {expected}",
                         field="webhook_events")
    if not chosen:
        raise ParamError("bad_webhook_events", f"webhook_events={stripped[:100]!r} names no event; {expected}",
                         field="webhook_events")
    return [event for event in allowed if event in chosen]
