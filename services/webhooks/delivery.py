"""One webhook delivery attempt: check the address again, POST the signed body, log the attempt, decide what next.

Outcomes (``Attempt.outcome``), following the Standard Webhooks guidance on retries:

- ``delivered``: a 2xx answer;
- ``retrying``: 429, any 5xx, a timeout or a connection error, while attempts remain (``Schedule``);
- ``gave_up``: the same after the last attempt;
- ``stopped``: 410 Gone (the receiver says the endpoint is gone for good), or an address that is now refused;
- ``rejected``: any other answer (other 4xx, or a 3xx: redirects are never followed, since a redirect could point at
  an internal address the check never saw).

Attempts of one webhook id never overlap (a lock in Redis) and an id that reached a final outcome is never posted
again (the ``done`` marker), so a task republished by a restarted relay does nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import requests
from requests.adapters import HTTPAdapter

from services.redis_keys import webhook_done_key, webhook_lock_key, webhook_log_key
from services.webhooks import signing
from services.webhooks.addresses import Allowlist, Target, WebhookRefused, check_url
from shared.jobs import utc_now_iso
from shared.settings import Settings

MAX_LOG_ENTRIES = 100  # per job: the whole schedule several times over
DONE_TTL_S = 30 * 86400
USER_AGENT = "atelier-webhooks/1"

DELIVERED, RETRYING, GAVE_UP, STOPPED, REJECTED = "delivered", "retrying", "gave_up", "stopped", "rejected"
FINAL_OUTCOMES = (DELIVERED, GAVE_UP, STOPPED, REJECTED)


@dataclass(frozen=True)
class Schedule:
    """Exponential backoff: after failed attempt n (1-based) wait ``base_s * factor ** (n - 1)``."""

    base_s: float
    factor: float
    max_attempts: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        return cls(settings.webhook_retry_base_s, settings.webhook_retry_factor, settings.webhook_max_attempts)

    def delay_after_s(self, attempt: int) -> float:
        return self.base_s * self.factor ** (attempt - 1)

    def delays_s(self) -> list[float]:
        """Every wait of a delivery that fails each time (``max_attempts - 1`` of them)."""
        return [self.delay_after_s(n) for n in range(1, self.max_attempts)]


@dataclass(frozen=True)
class Delivery:
    """What a delivery task carries: the id is stable across retries, the body is fixed at the event."""

    msg_id: str
    subject_id: str  # the job, style model or batch whose log gets the attempts
    event_type: str
    url: str
    body: str
    tenant: str

    def to_args(self) -> list[Any]:
        return [asdict(self)]


@dataclass(frozen=True)
class Attempt:
    webhook_id: str
    type: str
    attempt: int
    at: str
    url: str
    status_code: int | None
    error: str | None
    duration_ms: float
    outcome: str
    next_attempt_in_s: float | None = None


Poster = Callable[[Target, dict[str, str], str, float], int]


class DeliveryLog:
    """``atelier:webhooks:log:<subject>``: the attempts, oldest first, capped at ``MAX_LOG_ENTRIES``."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    def append(self, subject_id: str, attempt: Attempt) -> None:
        key = webhook_log_key(subject_id)
        pipe = self.redis.pipeline()
        pipe.rpush(key, json.dumps(asdict(attempt)))
        pipe.ltrim(key, -MAX_LOG_ENTRIES, -1)
        pipe.execute()

    def read(self, subject_id: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.redis.lrange(webhook_log_key(subject_id), 0, -1)]


def classify(status_code: int | None, attempt: int, schedule: Schedule) -> str:
    """The outcome of an attempt that got ``status_code`` (None: no answer)."""
    if status_code is not None and 200 <= status_code < 300:
        return DELIVERED
    if status_code == 410:
        return STOPPED
    if status_code is None or status_code == 429 or status_code >= 500:
        return RETRYING if attempt < schedule.max_attempts else GAVE_UP
    return REJECTED


def post_pinned(target: Target, headers: dict[str, str], body: str, timeout_s: float) -> int:
    """POST ``body`` to the address the check resolved (not to a fresh DNS answer), with the URL's host in the
    ``Host`` header, TLS server name and certificate check; no redirects, no proxies from the environment."""
    address = target.addresses[0]
    parts = urlsplit(target.url)
    netloc = f"[{address}]" if ":" in address else address
    pinned_url = urlunsplit((parts.scheme, f"{netloc}:{target.port}", parts.path or "/", parts.query, ""))
    with requests.Session() as session:
        session.trust_env = False
        if target.scheme == "https":
            session.mount("https://", _HostnameAdapter(target.host))
        response = session.post(pinned_url, data=body.encode(), headers={**headers, "Host": _host_header(target),
                                                                          "User-Agent": USER_AGENT},
                                timeout=timeout_s, allow_redirects=False, stream=True)
        response.close()  # the answer's body is not ours to read
        return int(response.status_code)


class _HostnameAdapter(HTTPAdapter):
    """Connect to an IP address but speak TLS to the URL's host: SNI and certificate verification use ``host``."""

    def __init__(self, host: str) -> None:
        self._host = host
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._host
        kwargs["assert_hostname"] = self._host
        super().init_poolmanager(*args, **kwargs)


def _host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default else f"{host}:{target.port}"


class Deliverer:
    """Makes attempts; the Celery task (``worker/webhook_app.py``) calls ``attempt`` and retries when asked."""

    def __init__(self, redis_client: redis.Redis, settings: Settings, *, secrets: Any, post: Poster = post_pinned,
                 resolve: Any = None) -> None:
        self.redis = redis_client
        self.settings = settings
        self.secrets = secrets
        self.schedule = Schedule.from_settings(settings)
        self.allowlist = Allowlist.parse(settings.webhook_allowlist)
        self.log = DeliveryLog(redis_client)
        self._post = post
        self._resolve = resolve

    def attempt(self, delivery: Delivery, attempt: int) -> Attempt | None:
        """One attempt (number ``attempt``, 1-based). None when the id is already done or another copy of the task
        is posting it right now (the caller then does nothing, or retries shortly: ``busy``)."""
        if self.redis.exists(webhook_done_key(delivery.msg_id)):
            return None
        lock = webhook_lock_key(delivery.msg_id)
        if not self.redis.set(lock, str(attempt), nx=True, px=int((self.settings.webhook_timeout_s + 5) * 1000)):
            return None
        try:
            result = self._attempt(delivery, attempt)
            self.log.append(delivery.subject_id, result)
            if result.outcome in FINAL_OUTCOMES:
                self.redis.set(webhook_done_key(delivery.msg_id), result.outcome, ex=DONE_TTL_S)
            return result
        finally:
            self.redis.delete(lock)

    def _attempt(self, delivery: Delivery, attempt: int) -> Attempt:
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            kwargs = {"resolve": self._resolve} if self._resolve else {}
            target = check_url(delivery.url, self.allowlist, **kwargs)
        except WebhookRefused as exc:
            return self._record(delivery, attempt, started, None, f"{exc.code}: {exc.message}", STOPPED)
        header_map = signing.headers(self.secrets.signing_secrets(delivery.tenant), delivery.msg_id, delivery.body)
        try:
            status_code = self._post(target, header_map, delivery.body, self.settings.webhook_timeout_s)
        except requests.Timeout:
            error = f"timeout after {self.settings.webhook_timeout_s:g} s"
        except requests.RequestException as exc:
            error = f"connection error: {type(exc).__name__}: {str(exc)[:200]}"
        return self._record(delivery, attempt, started, status_code, error,
                            classify(status_code, attempt, self.schedule))

    def _record(self, delivery: Delivery, attempt: int, started: float, status_code: int | None,
                error: str | None, outcome: str) -> Attempt:
        retry_in = self.schedule.delay_after_s(attempt) if outcome == RETRYING else None
        return Attempt(webhook_id=delivery.msg_id, type=delivery.event_type, attempt=attempt, at=utc_now_iso(),
                       url=delivery.url, status_code=status_code, error=error,
                       duration_ms=round((time.monotonic() - started) * 1000, 1), outcome=outcome,
                       next_attempt_in_s=retry_in)
