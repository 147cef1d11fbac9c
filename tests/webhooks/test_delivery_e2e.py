"""Webhooks end to end from a job's terminal transition: the real webhook worker process, Redis and HTTP.

Each test ends a job through ``JobRegistry.finish`` (the worker's own call), then reads what the receiver got and the
delivery log. The secret is the tenant's, read from the same store the API serves it from.
"""

from __future__ import annotations

import json
import time

from services.registry import JobRegistry
from services.webhooks import signing
from services.webhooks.delivery import DeliveryLog
from services.webhooks.secrets import SecretStore
from shared.jobs import JobStatus, parse_iso

from .conftest import running_job


def _verify(registry: JobRegistry, request) -> signing.Verdict:  # noqa: ANN001
    secret = SecretStore(registry.redis).current("default")
    return signing.verify(secret, request.headers, request.body)


def test_success_is_signed_with_the_tenant_secret_and_carries_the_job(webhook_worker, receiver, registry):
    job = running_job(registry, receiver.url + "/ok")
    registry.finish(job.id, JobStatus.SUCCEEDED, result={"key": f"results/{job.id}/result.png", "width": 8,
                                                          "height": 8})
    [got] = receiver.wait_for("/ok", 1)
    assert _verify(registry, got).ok, _verify(registry, got).reason
    payload = json.loads(got.body)
    assert payload["type"] == "job.succeeded"
    assert payload["data"]["id"] == job.id and payload["data"]["status"] == "succeeded"
    assert payload["data"]["result"]["url"] == f"/v1/jobs/{job.id}/result"
    assert got.headers["webhook-id"] == f"msg_{job.id}_succeeded"
    finished_at = parse_iso(registry.require(job.id).finished_at).timestamp()
    assert got.at_s - finished_at < 5.0  # the relay blocks on the stream: no polling interval to wait out
    log = _wait_log(registry, job.id, 1)
    assert [entry["outcome"] for entry in log] == ["delivered"] and log[0]["status_code"] == 200


def test_tampered_body_fails_verification(webhook_worker, receiver, registry):
    job = running_job(registry, receiver.url + "/ok?tamper")
    registry.finish(job.id, JobStatus.FAILED, error={"code": "engine_error", "message": "x"})
    [got] = receiver.wait_for("/ok?tamper", 1)
    assert got.headers["webhook-id"] == f"msg_{job.id}_failed"
    assert _verify(registry, got).ok
    got.body = got.body.replace('"failed"', '"succeeded"')
    verdict = _verify(registry, got)
    assert not verdict.ok and "no v1 signature" in verdict.reason


def test_retries_after_500_keep_the_same_id_then_deliver(webhook_worker, receiver, registry):
    job = running_job(registry, receiver.url + "/flaky")
    registry.finish(job.id, JobStatus.SUCCEEDED)
    attempts = receiver.wait_for("/flaky", 3)
    assert {a.headers["webhook-id"] for a in attempts} == {f"msg_{job.id}_succeeded"}
    assert len({a.headers["webhook-timestamp"] + a.headers["webhook-signature"] for a in attempts}) >= 1
    assert all(_verify(registry, a).ok for a in attempts)  # every attempt signed afresh
    gaps = [b.at_s - a.at_s for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.15 and gaps[1] >= 0.35  # 0.2 s then 0.4 s (base 0.2, factor 2)
    log = _wait_log(registry, job.id, 3)
    assert [e["outcome"] for e in log] == ["retrying", "retrying", "delivered"]
    assert [e["status_code"] for e in log] == [500, 500, 200]
    assert [e["attempt"] for e in log] == [1, 2, 3]
    time.sleep(0.3)
    assert len(receiver.on("/flaky")) == 3  # nothing after the success


def test_410_stops_at_once(webhook_worker, receiver, registry):
    job = running_job(registry, receiver.url + "/gone")
    registry.finish(job.id, JobStatus.CANCELED)
    receiver.wait_for("/gone", 1)
    log = _wait_log(registry, job.id, 1)
    assert log[0]["status_code"] == 410 and log[0]["outcome"] == "stopped"
    time.sleep(0.5)  # longer than the first retry wait (0.2 s)
    assert len(receiver.on("/gone")) == 1


def test_unsubscribed_events_and_jobs_without_webhook_send_nothing(webhook_worker, receiver, registry):
    quiet = running_job(registry, receiver.url + "/ok?quiet", events=["succeeded"])
    plain = running_job(registry, None)
    registry.finish(quiet.id, JobStatus.FAILED)
    registry.finish(plain.id, JobStatus.SUCCEEDED)
    marker = running_job(registry, receiver.url + "/ok?marker")  # events are relayed in order: after it, nothing
    registry.finish(marker.id, JobStatus.SUCCEEDED)
    receiver.wait_for("/ok?marker", 1)
    assert receiver.on("/ok?quiet") == []
    assert DeliveryLog(registry.redis).read(quiet.id) == []


def test_delivery_survives_a_killed_worker_without_loss_or_duplicate_ids(webhook_worker, receiver, registry):
    webhook_worker.kill()
    jobs = [running_job(registry, receiver.url + "/ok?restart") for _ in range(5)]
    for job in jobs:  # the jobs end while no webhook worker runs: the events wait in the stream
        registry.finish(job.id, JobStatus.SUCCEEDED)
    webhook_worker.start()
    got = receiver.wait_for("/ok?restart", 5)
    time.sleep(0.5)
    ids = [r.headers["webhook-id"] for r in receiver.on("/ok?restart")]
    assert sorted(ids) == sorted(f"msg_{job.id}_succeeded" for job in jobs)  # each once: no loss, no duplicate
    assert all(_verify(registry, r).ok for r in got)


def _wait_log(registry: JobRegistry, job_id: str, count: int, timeout_s: float = 10.0) -> list[dict]:
    log = DeliveryLog(registry.redis)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entries = log.read(job_id)
        if len(entries) >= count:
            return entries
        time.sleep(0.02)
    raise AssertionError(f"delivery log of {job_id}: {log.read(job_id)}")


def test_a_batch_webhook_fires_once_when_its_last_child_ends(webhook_worker, receiver, registry):
    from services.batches import BatchRegistry, new_batch_record

    batches = BatchRegistry(registry)
    batch = new_batch_record(params={}, style_keys=[], style_names=[])
    batch["webhook"] = {"url": receiver.url + "/ok?batch", "events": ["finished"]}
    batches.create(batch)
    children = [running_job(registry, None, batch_id=batch["id"]) for _ in range(2)]
    for index, child in enumerate(children):
        batches.append_item(batch["id"], f"c{index}.jpg", child.id)
    registry.finish(children[0].id, JobStatus.SUCCEEDED)
    registry.finish(children[1].id, JobStatus.FAILED)
    [got] = receiver.wait_for("/ok?batch", 1)
    payload = json.loads(got.body)
    assert payload["type"] == "batch.finished" and payload["data"]["id"] == batch["id"]
    assert payload["data"]["counts"]["succeeded"] == 1 and payload["data"]["counts"]["failed"] == 1
    assert got.headers["webhook-id"] == f"msg_batch_{batch['id']}_finished_2" and _verify(registry, got).ok
    assert [e["outcome"] for e in _wait_log(registry, batch["id"], 1)] == ["delivered"]
    time.sleep(0.3)
    assert len(receiver.on("/ok?batch")) == 1  # the first child's end did not fire it


def test_a_corrupt_record_does_not_stop_later_webhooks(webhook_worker, receiver, registry):
    from services.redis_keys import TERMINAL_EVENTS_KEY, job_key

    registry.redis.set(job_key("corrupt"), '{"status": "nonsense"}')
    registry.redis.xadd(TERMINAL_EVENTS_KEY, {"job_id": "corrupt", "kind": "stylize", "status": "succeeded",
                                              "tenant": "default", "at": "2026-01-01T00:00:00Z"})
    job = running_job(registry, receiver.url + "/ok?after-poison")
    registry.finish(job.id, JobStatus.SUCCEEDED)
    [got] = receiver.wait_for("/ok?after-poison", 1)
    assert got.headers["webhook-id"] == f"msg_{job.id}_succeeded"
