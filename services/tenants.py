"""API keys and the tenants they belong to, stored in Redis with only a hash of each key.

A key is ``atl_<key_id>_<secret>``: ``key_id`` (16 hex characters) names the key in listings and ``atelier keys
revoke``; ``secret`` is 32 random bytes (256 bits, URL-safe base64). The plain key is shown once, at creation.

Why SHA-256 and not bcrypt/scrypt/argon2: those slow hashes protect *low-entropy* secrets (passwords) against
offline guessing. Our keys are 256-bit random tokens, so a leaked hash cannot be brute-forced whatever the hash
speed, and a fast hash lets us look a key up in O(1) (hash -> key id) on every request instead of paying ~100 ms of
CPU per request for bcrypt. (This is what GitHub and Stripe do for their tokens, too.)

Layout:
- ``atelier:apikey:<key_id>``: JSON ``{key_id, tenant, sha256, created_at, revoked_at}``;
- ``atelier:apikey-hash:<sha256>``: the ``key_id`` (lookup on each request; deleted on revoke);
- ``atelier:apikeys``: set of every key id (listing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

import redis

from services.redis_client import redis_errors
from services.redis_keys import ALL_API_KEYS, API_KEY_HASH_PREFIX, API_KEY_RECORD_PREFIX
from shared.errors import BadRequest, NotFound
from shared.jobs import utc_now_iso

KEY_PREFIX = "atl_"
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
KEY_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
# The tenant of every request when authentication is off (the embedded `atelier dev` default), and of records
# written before tenants existed.
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class NewKey:
    key_id: str
    tenant: str
    token: str  # the plain key: shown once, never stored


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_tenant_name(tenant: str) -> str:
    if not TENANT_PATTERN.match(tenant or ""):
        raise BadRequest("bad_tenant", f"tenant={tenant!r} is not allowed; expected 1 to 63 characters of a-z, 0-9, "
                         "'-' and '_', starting with a letter or digit", field="tenant")
    return tenant


class KeyStore:
    """Create, look up, list and revoke API keys."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    @redis_errors
    def create(self, tenant: str) -> NewKey:
        check_tenant_name(tenant)
        key_id = secrets.token_hex(8)
        token = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        digest = hash_token(token)
        record = {"key_id": key_id, "tenant": tenant, "sha256": digest, "created_at": utc_now_iso(),
                  "revoked_at": None}
        pipe = self.redis.pipeline()
        pipe.set(API_KEY_RECORD_PREFIX + key_id, json.dumps(record))
        pipe.set(API_KEY_HASH_PREFIX + digest, key_id)
        pipe.sadd(ALL_API_KEYS, key_id)
        pipe.execute()
        return NewKey(key_id=key_id, tenant=tenant, token=token)

    @redis_errors
    def tenant_for(self, token: str) -> str | None:
        """The tenant of a valid, unrevoked key; None otherwise."""
        if not token.startswith(KEY_PREFIX) or len(token) > 200:
            return None
        digest = hash_token(token)
        key_id = self.redis.get(API_KEY_HASH_PREFIX + digest)
        if key_id is None:
            return None
        record = self._get(key_id.decode())
        # The hash index and the record agree unless a revoke is half-done; the record decides.
        if record is None or record.get("revoked_at") or not hmac.compare_digest(record["sha256"], digest):
            return None
        return str(record["tenant"])

    @redis_errors
    def list(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every key's public fields (never the hash), oldest first."""
        ids = sorted(member.decode() for member in self.redis.smembers(ALL_API_KEYS))
        records = [record for record in (self._get(key_id) for key_id in ids) if record is not None]
        if tenant is not None:
            records = [record for record in records if record["tenant"] == tenant]
        records.sort(key=lambda record: record["created_at"])
        return [{k: v for k, v in record.items() if k != "sha256"} for record in records]

    @redis_errors
    def revoke(self, key_id: str) -> dict[str, Any]:
        """Revoke at once: the next request with this key is 401. Revoking twice is fine."""
        if not KEY_ID_PATTERN.match(key_id or ""):
            raise BadRequest("bad_key_id", f"key id {key_id!r} is not allowed; expected 16 hex characters "
                             "(see `atelier keys list`)", field="key_id")
        record = self._get(key_id)
        if record is None:
            raise NotFound("key_not_found", f"no API key with id {key_id!r}", field="key_id")
        if not record.get("revoked_at"):
            record["revoked_at"] = utc_now_iso()
        pipe = self.redis.pipeline()
        pipe.set(API_KEY_RECORD_PREFIX + key_id, json.dumps(record))
        pipe.delete(API_KEY_HASH_PREFIX + record["sha256"])
        pipe.execute()
        return {k: v for k, v in record.items() if k != "sha256"}

    def _get(self, key_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(API_KEY_RECORD_PREFIX + key_id)
        return None if raw is None else json.loads(raw)
