"""``atelier keys create|list|revoke``: API keys for tenants, written straight into the service's Redis.

An operator command (it needs ``ATELIER_REDIS_URL``, not an API key): keys are the root of the API's trust, so they
are managed next to the data, not through the API they protect. The plain key is printed once, at creation.
"""

from __future__ import annotations

import json

import click

from shared.errors import AtelierError

REDIS_OPTION = click.option("--redis-url", envvar="ATELIER_REDIS_URL", default="redis://127.0.0.1:6379/0",
                            show_default=True, help="The service's Redis (env ATELIER_REDIS_URL).")


def _store(redis_url: str):  # noqa: ANN202 - KeyStore, imported lazily like every command's dependencies
    from services.redis_client import connect
    from services.tenants import KeyStore

    return KeyStore(connect(redis_url))


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (bearer tokens) of tenants."""


@keys.command("create")
@click.option("--tenant", required=True, help="Tenant the key belongs to (a-z, 0-9, '-', '_').")
@REDIS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print {key_id, tenant, key} as JSON.")
def create(tenant: str, redis_url: str, as_json: bool) -> None:
    """Create a key for TENANT and print it (shown only this once)."""
    try:
        new = _store(redis_url).create(tenant)
    except AtelierError as exc:
        raise click.ClickException(exc.message) from None
    if as_json:
        click.echo(json.dumps({"key_id": new.key_id, "tenant": new.tenant, "key": new.token}))
        return
    click.echo(f"key id  {new.key_id}")
    click.echo(f"tenant  {new.tenant}")
    click.echo(f"key     {new.token}")
    click.echo("Store the key now: only its hash is kept. Send it as 'Authorization: Bearer <key>'.", err=True)


@keys.command("list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@REDIS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_keys(tenant: str | None, redis_url: str, as_json: bool) -> None:
    """List keys (id, tenant, created, revoked); never the keys themselves."""
    try:
        records = _store(redis_url).list(tenant)
    except AtelierError as exc:
        raise click.ClickException(exc.message) from None
    if as_json:
        click.echo(json.dumps(records))
        return
    click.echo(f"{'KEY ID':<18}{'TENANT':<24}{'CREATED':<26}REVOKED")
    for record in records:
        click.echo(f"{record['key_id']:<18}{record['tenant']:<24}{record['created_at']:<26}"
                   f"{record.get('revoked_at') or '-'}")


@keys.command("revoke")
@click.argument("key_id")
@REDIS_OPTION
def revoke(key_id: str, redis_url: str) -> None:
    """Revoke KEY_ID at once (its next request is 401)."""
    try:
        record = _store(redis_url).revoke(key_id)
    except AtelierError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"revoked {record['key_id']} (tenant {record['tenant']}) at {record['revoked_at']}")
