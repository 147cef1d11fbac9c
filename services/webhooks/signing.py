"""Standard Webhooks signatures: ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.

Signing and verification are the ``standardwebhooks`` package's (the specification's reference Python library); this
module only adds what the library leaves to its caller: several secrets at once (during a rotation's grace period the
header carries one signature per secret, space separated, as the specification allows), and a verification that
takes the tolerance and the clock as parameters and answers with a reason instead of an exception (the library's
``verify`` fixes both, which ``atelier webhooks verify --tolerance`` and the tests need to vary).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets as random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # 256 bits, the HMAC-SHA256 block's worth; the spec asks for 24 to 64
TOLERANCE_S = 300  # the specification's (and the library's) five minutes against replays


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes (the form the specification and its libraries read)."""
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, msg_id: str, timestamp_s: int, body: str) -> str:
    """``v1,<base64>`` for one secret (the library computes it)."""
    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp_s, UTC), body)


def headers(secrets: list[str], msg_id: str, body: str, *, timestamp_s: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt, signed with every secret in ``secrets``."""
    timestamp_s = int(time.time()) if timestamp_s is None else timestamp_s
    signatures = " ".join(signature(secret, msg_id, timestamp_s, body) for secret in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp_s), "webhook-signature": signatures,
            "content-type": "application/json"}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # "signature verifies", or what is wrong


def verify(secret: str, header_map: dict[str, str], body: str, *, tolerance_s: int = TOLERANCE_S,
           now_s: float | None = None) -> Verdict:
    """Check ``body`` and ``header_map`` (any case) against ``secret``: the headers are present, the timestamp is
    within ``tolerance_s`` of ``now_s`` and one ``v1`` signature matches (the library computes the expected one;
    compared in constant time)."""
    lowered = {name.lower(): value for name, value in header_map.items()}
    missing = [name for name in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lowered.get(name)]
    if missing:
        return Verdict(False, "missing header(s): " + ", ".join(missing))
    try:
        timestamp_s = int(lowered["webhook-timestamp"])
    except ValueError:
        return Verdict(False, f"webhook-timestamp {lowered['webhook-timestamp']!r} is not an integer")
    now_s = time.time() if now_s is None else now_s
    if abs(now_s - timestamp_s) > tolerance_s:
        return Verdict(False, f"webhook-timestamp {timestamp_s} is {now_s - timestamp_s:+.0f} s from now; the "
                       f"tolerance is {tolerance_s} s (a replay, or a clock off)")
    try:
        expected = signature(secret, lowered["webhook-id"], timestamp_s, body).split(",", 1)[1]
    except (ValueError, binascii.Error) as exc:
        return Verdict(False, f"the secret is not whsec_<base64>: {exc}")
    for candidate in lowered["webhook-signature"].split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return Verdict(True, "signature verifies")
    return Verdict(False, "no v1 signature in webhook-signature matches this secret and body")
