"""Every Redis key Atelier writes, in one place, so two modules cannot pick the same name and an operator can read
the whole layout here.

All keys start with ``atelier:`` except Celery's own (its queue lists are named after the queues, and its
unacknowledged-message hash is ``unacked``), which are listed at the end because the reconciler reads them.

Jobs (``services.registry``):
- ``atelier:job:<id>``: the record, one JSON document (``shared.jobs.JobRecord``);
- ``atelier:jobs``: sorted set of every job id, score = creation time (epoch seconds), for newest-first listing;
- ``atelier:jobs:status:<status>``: the same, per status, so a filtered listing reads only matching ids;
- ``atelier:jobs:tenant:<tenant>`` and ``atelier:jobs:tenant:<tenant>:status:<status>``: the same two per tenant;
- ``atelier:jobs:tenant:<tenant>:kind:<kind>`` and ``…:kind:<kind>:status:<status>``: the same per tenant and kind;
- ``atelier:lease:<id>``: the lease a worker holds while it runs the job (``worker.lease``).

Batches (``services.batches``): ``atelier:batch:<id>`` (JSON), ``…:items`` (list), ``…:names`` (hash name -> job id).

Events (``services.events``): ``atelier:events:job:<id>`` and ``atelier:events:batch:<id>`` (streams of one job's
and one batch's events, read by the SSE routes), ``atelier:events:terminal`` (a stream of every job that reached a
terminal status: the webhook dispatcher's input).

Webhooks (``services.webhooks``): ``atelier:webhooks:secret:<tenant>`` (hash), ``…:log:<job or batch id>`` (list),
``…:done:<webhook id>``, ``…:lock:<webhook id>``, and the webhook worker's own Celery keys under
``atelier:webhooks:celery:``; the relay reads ``atelier:events:terminal`` with the consumer group ``webhooks``.

API keys (``services.tenants``): ``atelier:apikey:<key_id>``, ``atelier:apikey-hash:<sha256>``, ``atelier:apikeys``.

Requests (``api.ratelimit``, ``api.idempotency``): ``atelier:rate:<tenant>:<window>``,
``atelier:idem:<tenant>:<scope>:<sha256 of the client's key>``.

Workers: ``atelier:metrics:…`` (``services.metrics``; counters, histograms, ``atelier:metrics:workers``),
``atelier:style-targets:lock:<storage key>`` (``worker.style_cache``), ``atelier:reconciler:lock`` and
``atelier:reconciler:no-lease-since:<id>`` (``worker.reconciler``), ``atelier:capabilities:<worker id>`` and
``atelier:capabilities-index`` (``services.capabilities``).
"""

from __future__ import annotations

PREFIX = "atelier:"

# --- jobs ---------------------------------------------------------------------------------------------------------
JOB_KEY_PREFIX = PREFIX + "job:"
ALL_JOBS_KEY = PREFIX + "jobs"
STATUS_INDEX_PREFIX = PREFIX + "jobs:status:"
TENANT_INDEX_PREFIX = PREFIX + "jobs:tenant:"
LEASE_KEY_PREFIX = PREFIX + "lease:"


def job_key(job_id: str) -> str:
    return JOB_KEY_PREFIX + job_id


def status_index_key(status: str) -> str:
    return STATUS_INDEX_PREFIX + status


def tenant_index_key(tenant: str, status: str | None = None) -> str:
    return TENANT_INDEX_PREFIX + tenant + (f":status:{status}" if status else "")


def kind_index_key(tenant: str, kind: str, status: str | None = None) -> str:
    """A tenant's jobs of one kind (``/v1/styles`` lists ``train_style``), optionally in one status."""
    return TENANT_INDEX_PREFIX + tenant + f":kind:{kind}" + (f":status:{status}" if status else "")


def lease_key(job_id: str) -> str:
    return LEASE_KEY_PREFIX + job_id


# --- batches ------------------------------------------------------------------------------------------------------
BATCH_KEY_PREFIX = PREFIX + "batch:"


def batch_key(batch_id: str) -> str:
    return BATCH_KEY_PREFIX + batch_id


def batch_items_key(batch_id: str) -> str:
    return BATCH_KEY_PREFIX + batch_id + ":items"


def batch_names_key(batch_id: str) -> str:
    return BATCH_KEY_PREFIX + batch_id + ":names"


# --- events (services.events) ------------------------------------------------------------------------------------
EVENTS_KEY_PREFIX = PREFIX + "events:"
TERMINAL_EVENTS_KEY = EVENTS_KEY_PREFIX + "terminal"


def job_events_key(job_id: str) -> str:
    return EVENTS_KEY_PREFIX + "job:" + job_id


def batch_events_key(batch_id: str) -> str:
    return EVENTS_KEY_PREFIX + "batch:" + batch_id


# --- webhooks (services.webhooks) ---------------------------------------------------------------------------------
WEBHOOK_KEY_PREFIX = PREFIX + "webhooks:"
WEBHOOK_RELAY_GROUP = "webhooks"  # the consumer group the webhook workers read the terminal-events stream with
# The webhook worker's Celery keys (its queue, unacked hash, bindings) all carry this prefix (kombu's
# global_keyprefix), so its short visibility timeout can never restore a GPU job's unacknowledged message.
WEBHOOK_CELERY_PREFIX = WEBHOOK_KEY_PREFIX + "celery:"


def webhook_secret_key(tenant: str) -> str:
    return WEBHOOK_KEY_PREFIX + "secret:" + tenant


def webhook_log_key(subject_id: str) -> str:
    """The delivery attempts for one job, style model or batch (a list of JSON entries, newest last)."""
    return WEBHOOK_KEY_PREFIX + "log:" + subject_id


def webhook_done_key(msg_id: str) -> str:
    """Set once a webhook id has been delivered or given up: a republished task for it does nothing."""
    return WEBHOOK_KEY_PREFIX + "done:" + msg_id


def webhook_lock_key(msg_id: str) -> str:
    """Held during one delivery attempt, so two copies of the same task never post at the same time."""
    return WEBHOOK_KEY_PREFIX + "lock:" + msg_id


# --- API keys and requests ----------------------------------------------------------------------------------------
API_KEY_RECORD_PREFIX = PREFIX + "apikey:"
API_KEY_HASH_PREFIX = PREFIX + "apikey-hash:"
ALL_API_KEYS = PREFIX + "apikeys"
RATE_KEY_PREFIX = PREFIX + "rate:"
IDEMPOTENCY_KEY_PREFIX = PREFIX + "idem:"


def rate_key(tenant: str, window: int) -> str:
    return f"{RATE_KEY_PREFIX}{tenant}:{window}"


def idempotency_key(tenant: str, scope: str, client_key_sha256: str) -> str:
    return f"{IDEMPOTENCY_KEY_PREFIX}{tenant}:{scope}:{client_key_sha256}"


# --- workers ------------------------------------------------------------------------------------------------------
METRICS_KEY_PREFIX = PREFIX + "metrics:"
METRICS_WORKERS_KEY = METRICS_KEY_PREFIX + "workers"
STYLE_TARGETS_LOCK_PREFIX = PREFIX + "style-targets:lock:"
RECONCILER_LOCK_KEY = PREFIX + "reconciler:lock"
RECONCILER_NO_LEASE_PREFIX = PREFIX + "reconciler:no-lease-since:"
CAPABILITIES_KEY_PREFIX = PREFIX + "capabilities:"
CAPABILITIES_INDEX_KEY = PREFIX + "capabilities-index"  # sorted set: worker id -> epoch second its key expires
MODEL_SIGNING_KEY = PREFIX + "model-signing-key"  # the deployment's random HMAC key when none is configured


def style_targets_lock_key(storage_key: str) -> str:
    return STYLE_TARGETS_LOCK_PREFIX + storage_key


def no_lease_since_key(job_id: str) -> str:
    return RECONCILER_NO_LEASE_PREFIX + job_id


def capabilities_key(worker_id: str) -> str:
    return CAPABILITIES_KEY_PREFIX + worker_id


# --- Celery's own (kombu's Redis transport) -----------------------------------------------------------------------
CELERY_UNACKED_KEY = "unacked"  # hash delivery tag -> [message, exchange, routing key] of unacknowledged messages
