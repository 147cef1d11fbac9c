"""Job leases on a real Redis: exclusive, renewed by a heartbeat, released only by their holder."""

from __future__ import annotations

import time

from worker.lease import JobLease


def test_only_one_holder_at_a_time(registry):
    first = JobLease(registry, "job-a", owner="w1:1", ttl_s=5)
    second = JobLease(registry, "job-a", owner="w2:2", ttl_s=5)
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()


def test_release_by_a_former_holder_does_not_remove_the_new_lease(registry):
    old = JobLease(registry, "job-b", owner="w1:1", ttl_s=0.3)
    assert old.try_acquire()
    time.sleep(0.4)  # expired
    new = JobLease(registry, "job-b", owner="w2:2", ttl_s=5)
    assert new.try_acquire()
    old.release()
    assert not old.renew()
    assert not JobLease(registry, "job-b", owner="w3:3").try_acquire()


def test_heartbeat_keeps_the_lease_past_its_ttl_and_releases_at_exit(registry):
    lease = JobLease(registry, "job-c", owner="w1:1", ttl_s=0.3)
    assert lease.try_acquire()
    other = JobLease(registry, "job-c", owner="w2:2", ttl_s=0.3)
    with lease.held():
        time.sleep(1.0)  # > 3 TTLs
        assert not other.try_acquire()
        assert not lease.lost.is_set()
    assert other.try_acquire()


def test_heartbeat_reports_a_lease_taken_over(registry):
    lease = JobLease(registry, "job-d", owner="w1:1", ttl_s=0.3)
    assert lease.try_acquire()
    with lease.held():
        registry.redis.delete("atelier:lease:job-d")  # e.g. Redis lost it; another delivery takes it
        assert JobLease(registry, "job-d", owner="w2:2", ttl_s=5).try_acquire()
        assert lease.lost.wait(2.0)


def test_claim_waits_for_a_dead_holder_and_gives_up_on_a_live_one(registry):
    dead = JobLease(registry, "job-e", owner="dead:1", ttl_s=0.5)
    assert dead.try_acquire()
    started = time.monotonic()
    assert JobLease(registry, "job-e", owner="w:2", ttl_s=0.5).claim(poll_s=0.05)
    assert 0.3 < time.monotonic() - started < 2.0

    live = JobLease(registry, "job-f", owner="live:1", ttl_s=0.5)
    assert live.try_acquire()
    with live.held():
        assert not JobLease(registry, "job-f", owner="w:2", ttl_s=0.5).claim(poll_s=0.05)
