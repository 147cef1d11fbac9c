"""The relay: from the terminal-events stream (the outbox written with each status change) to delivery tasks.

It reads ``atelier:events:terminal`` through the Redis consumer group ``webhooks`` (XREADGROUP), so several webhook
workers share the stream and each entry goes to one of them. An entry is acknowledged (XACK) only after its delivery
task was published; on start a relay first re-reads its own pending entries (those it had read but not acknowledged
when it stopped), then claims entries another consumer left pending for ``claim_idle_ms`` (XAUTOCLAIM: a webhook
worker that died for good), then reads new ones. An entry handled twice publishes a task with the same id
(``payloads``), which ``delivery`` posts once. The group starts at the stream's beginning (id 0), so jobs that ended
before any webhook worker ran are not skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from kombu.exceptions import OperationalError

from services.batches import BatchRegistry
from services.redis_keys import TERMINAL_EVENTS_KEY, WEBHOOK_RELAY_GROUP
from services.registry import JobRegistry
from services.webhooks import payloads
from services.webhooks.delivery import Delivery
from shared.errors import Unavailable

log = logging.getLogger(__name__)

Send = Callable[[Delivery], None]
Entry = tuple[str, dict[str, str]]

# Errors that mean "try again later" rather than "this entry is bad".
OUTAGES: tuple[type[BaseException], ...] = (redis.RedisError, Unavailable, OperationalError, ConnectionError, OSError)

READ_COUNT = 100
BLOCK_MS = 1000
CLAIM_IDLE_MS = 60_000
ERROR_PAUSE_S = 1.0


class Relay:
    def __init__(self, registry: JobRegistry, send: Send, *, consumer: str, block_ms: int = BLOCK_MS,
                 claim_idle_ms: int = CLAIM_IDLE_MS) -> None:
        self.registry = registry
        self.redis: redis.Redis = registry.redis
        self.batches = BatchRegistry(registry)
        self.send = send
        self.consumer = consumer
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self._recovered = False
        self._last_claim_s = time.monotonic()

    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(TERMINAL_EVENTS_KEY, WEBHOOK_RELAY_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run_once(self) -> int:
        """Read and handle one batch of entries; returns how many were acknowledged. Until nothing is left from
        before, the batch is this consumer's own pending entries, then entries claimed from a dead consumer; every
        ``claim_idle_ms`` it claims again (a replica may die while this one runs)."""
        now = time.monotonic()
        if not self._recovered:
            entries = self._read("0") or self._claim()
            self._recovered = not entries
        elif now - self._last_claim_s > self.claim_idle_ms / 1000:
            self._last_claim_s = now
            entries = self._claim()
        else:
            entries = []
        if not entries and self._recovered:
            entries = self._read(">")
        for entry_id, fields in entries:
            try:
                self.handle(fields)
            except OUTAGES:
                raise  # Redis or the broker: the entry stays pending and is handled after the outage
            except Exception:  # noqa: BLE001 - a poison entry (a corrupt record) must not stop every later webhook
                log.exception("webhook relay: entry %s (%s) skipped", entry_id, fields)
            self.redis.xack(TERMINAL_EVENTS_KEY, WEBHOOK_RELAY_GROUP, entry_id)
        return len(entries)

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; a Redis or broker outage pauses and retries (entries stay pending)."""
        while not stop.is_set():
            try:
                self.ensure_group()
                while not stop.is_set():
                    self.run_once()
            except Exception:  # noqa: BLE001 - the relay must outlive an outage; the entry is re-read after it
                log.exception("webhook relay: will retry in %.0f s", ERROR_PAUSE_S)
                self._recovered = False
                stop.wait(ERROR_PAUSE_S)

    def handle(self, fields: dict[str, str]) -> None:
        """Publish the deliveries one terminal event asks for: the job's own webhook, and its batch's if the batch
        has just ended."""
        record = self.registry.get(fields.get("job_id", ""))
        if record is None:
            return
        hook = record.webhook or {}
        if hook.get("url") and record.status in hook.get("events", ()):
            event_type, text = payloads.job_event(record)
            self.send(Delivery(msg_id=payloads.job_msg_id(record.id, record.status), subject_id=record.id,
                               event_type=event_type, url=hook["url"], body=text, tenant=record.tenant))
        if record.batch_id:
            self._batch(record.batch_id)

    def _batch(self, batch_id: str) -> None:
        batch = self.batches.get(batch_id)
        hook = (batch or {}).get("webhook") or {}
        if not batch or not hook.get("url"):
            return
        event = payloads.batch_event(self.batches, batch)
        if event is None or event[1].split(".", 1)[1] not in hook.get("events", ()):
            return
        msg_id, event_type, text = event
        self.send(Delivery(msg_id=msg_id, subject_id=batch_id, event_type=event_type, url=hook["url"], body=text,
                           tenant=str(batch.get("tenant") or "default")))

    def _read(self, start: str) -> list[Entry]:
        block = None if start == "0" else self.block_ms
        reply = self.redis.xreadgroup(WEBHOOK_RELAY_GROUP, self.consumer, {TERMINAL_EVENTS_KEY: start},
                                      count=READ_COUNT, block=block)
        # A pending entry trimmed from the stream since comes back without fields: acknowledged, nothing to send.
        return [(_text(entry_id), _fields(raw or {})) for _stream, entries in reply or [] for entry_id, raw in entries]

    def _claim(self) -> list[Entry]:
        reply = self.redis.xautoclaim(TERMINAL_EVENTS_KEY, WEBHOOK_RELAY_GROUP, self.consumer, self.claim_idle_ms,
                                      start_id="0-0", count=READ_COUNT)
        return [(_text(entry_id), _fields(raw or {})) for entry_id, raw in reply[1]]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: dict[Any, Any]) -> dict[str, str]:
    return {_text(key): _text(value) for key, value in raw.items()}
