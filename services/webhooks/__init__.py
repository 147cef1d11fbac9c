"""Signed webhooks (issue 14 item 3), following the Standard Webhooks specification (https://www.standardwebhooks.com).

How a job's end becomes an HTTP call, and why nothing is lost on the way:

1. **Outbox.** ``JobRegistry.transition`` appends one entry to the stream ``atelier:events:terminal`` in the same
   MULTI/EXEC as the record write that makes a job terminal (``services.events``). The event exists exactly when the
   status change was committed: no lost deliveries, no deliveries of changes that never happened.
2. **Relay** (``relay.py``): a thread of the webhook worker reads that stream through the consumer group
   ``webhooks``, turns each entry of a job (or the end of a batch) with a subscribed ``webhook`` into a Celery task on
   the ``webhooks`` queue, and acknowledges the entry only after the task was published. A relay killed in between
   reads its pending entries again on restart; the task id and the ``webhook-id`` are derived from the event
   (``msg_<job id>_<status>``), so a re-read republishes the same id, and ``delivery.py`` delivers an id once.
3. **Delivery** (``delivery.py``, task ``atelier.deliver_webhook`` in ``worker/webhook_app.py``): one signed POST per
   attempt, with the SSRF check repeated on the address actually connected to, retried with exponential backoff on
   429, 5xx and connection errors, stopped on 410; every attempt is logged (``GET /v1/jobs/{id}/webhooks``).

Modules: ``addresses`` (which URLs may be called), ``secrets`` (per-tenant signing secrets, rotation), ``signing``
(headers and verification with the ``standardwebhooks`` package), ``delivery``, ``relay``. docs/webhooks.md is the
integrator's view.
"""
