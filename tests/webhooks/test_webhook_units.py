"""Unit tests of one layer each: signing (the specification's test vector), verification, the address check, the
events field and the retry schedule."""

from __future__ import annotations

import pytest

from api.webhook_fields import BATCH_EVENTS, JOB_EVENTS, parse_events
from services.webhooks import signing
from services.webhooks.addresses import Allowlist, WebhookRefused, check_url
from services.webhooks.delivery import DELIVERED, GAVE_UP, REJECTED, RETRYING, STOPPED, Schedule, classify
from shared.errors import BadRequest, ParamError

# The example of the Standard Webhooks specification (and of its reference libraries' tests).
VECTOR = {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
          "timestamp": 1614265330, "body": '{"test": 2432232314}',
          "signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}


def test_signature_matches_the_specification_test_vector():
    assert signing.signature(VECTOR["secret"], VECTOR["id"], VECTOR["timestamp"], VECTOR["body"]) == \
        VECTOR["signature"]


def _vector_headers(**changes: str) -> dict[str, str]:
    headers = {"Webhook-Id": VECTOR["id"], "Webhook-Timestamp": str(VECTOR["timestamp"]),
               "Webhook-Signature": VECTOR["signature"]}
    return {**headers, **changes}


def test_verify_accepts_the_vector_and_refuses_tampering_replays_and_missing_headers():
    now = VECTOR["timestamp"] + 10
    assert signing.verify(VECTOR["secret"], _vector_headers(), VECTOR["body"], now_s=now).ok
    assert not signing.verify(VECTOR["secret"], _vector_headers(), VECTOR["body"] + " ", now_s=now).ok
    assert not signing.verify(VECTOR["secret"], _vector_headers(**{"Webhook-Id": "msg_other"}), VECTOR["body"],
                              now_s=now).ok
    old = signing.verify(VECTOR["secret"], _vector_headers(), VECTOR["body"], now_s=now + 600)
    assert not old.ok and "tolerance" in old.reason
    assert signing.verify(VECTOR["secret"], _vector_headers(), VECTOR["body"], now_s=now + 600, tolerance_s=700).ok
    missing = signing.verify(VECTOR["secret"], {"webhook-id": "x"}, "{}", now_s=now)
    assert not missing.ok and "webhook-signature" in missing.reason


def test_two_secrets_give_two_signatures_and_either_verifies():
    old, new = signing.new_secret(), signing.new_secret()
    headers = signing.headers([new, old], "msg_1", '{"a":1}', timestamp_s=1_700_000_000)
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        assert signing.verify(secret, headers, '{"a":1}', now_s=1_700_000_000).ok
    assert not signing.verify(signing.new_secret(), headers, '{"a":1}', now_s=1_700_000_000).ok


def _resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]
    return resolve


def test_host_names_are_judged_by_every_address_they_resolve_to():
    resolve = _resolver({"hooks.example": ["93.184.216.34"], "sneaky.example": ["93.184.216.34", "10.0.0.7"],
                         "internal.corp": ["10.0.0.7"]})
    assert check_url("https://hooks.example/x", Allowlist(), resolve=resolve).addresses == ("93.184.216.34",)
    with pytest.raises(WebhookRefused) as refused:
        check_url("https://sneaky.example/x", Allowlist(), resolve=resolve)
    assert refused.value.code == "webhook_address_refused" and "10.0.0.7" in refused.value.message
    with pytest.raises(WebhookRefused) as unresolvable:
        check_url("https://nowhere.example/x", Allowlist(), resolve=resolve)
    assert unresolvable.value.code == "webhook_unresolvable"
    assert check_url("https://internal.corp/x", Allowlist.parse("internal.corp"), resolve=resolve)
    assert check_url("https://internal.corp/x", Allowlist.parse(" 10.0.0.0/8 ,x"), resolve=resolve)
    with pytest.raises(WebhookRefused):
        check_url("https://internal.corp/x", Allowlist.parse("10.1.0.0/16"), resolve=resolve)


@pytest.mark.parametrize("address", ["0.0.0.0", "100.64.0.1", "224.0.0.1", "240.0.0.1", "[fe80::1]", "[fc00::1]",
                                     "[ff02::1]", "[::]"])
def test_special_addresses_are_refused(address):
    with pytest.raises(WebhookRefused):
        check_url(f"http://{address}/h", Allowlist())


def test_events_field_forms_and_order():
    assert parse_events(None, JOB_EVENTS) == list(JOB_EVENTS)
    assert parse_events(" canceled ,SUCCEEDED", JOB_EVENTS) == ["succeeded", "canceled"]
    assert parse_events('["finished"]', BATCH_EVENTS) == ["finished"]
    with pytest.raises(ParamError, match="'running' is not allowed; expected"):
        parse_events("running", JOB_EVENTS)
    with pytest.raises(BadRequest):
        parse_events('["a", 1]', JOB_EVENTS)
    with pytest.raises(ParamError):
        parse_events(",", JOB_EVENTS)


def test_schedule_and_outcomes():
    schedule = Schedule(base_s=5, factor=4, max_attempts=8)
    assert schedule.delays_s() == [5, 20, 80, 320, 1280, 5120, 20480]
    assert classify(204, 1, schedule) == DELIVERED
    assert classify(410, 1, schedule) == STOPPED
    assert [classify(code, 1, schedule) for code in (429, 500, 503, None)] == [RETRYING] * 4
    assert classify(500, 8, schedule) == GAVE_UP
    assert [classify(code, 1, schedule) for code in (301, 400, 404)] == [REJECTED] * 3
