"""``atelier webhooks secret|rotate|log|verify``: the tenant's signing secret, delivery logs, and a verifier for
integrators (docs/webhooks.md).

    atelier webhooks secret                      # whsec_... (GET /v1/webhooks/secret)
    atelier webhooks rotate                      # a new one; the old one keeps signing during the grace period
    atelier webhooks log JOB_ID                  # the delivery attempts of a job (--kind styles|batches)
    atelier webhooks verify --secret whsec_... < request.txt

``verify`` reads one HTTP request from stdin, as a receiver got it: an optional request line (``POST /hook
HTTP/1.1``), header lines ``Name: value``, an empty line, then the body, byte for byte (LF or CRLF line ends in the
head; the body is everything after the empty line, so no newline may be added after it). It checks the headers,
the timestamp (within ``--tolerance`` seconds of now, default 300 as in the specification) and the signature, prints
the verdict and exits 0 when it verifies, 1 when not. ``curl --trace-ascii``, a proxy's dump or a receiver that
writes ``request.txt`` all give this form.
"""

from __future__ import annotations

import json
import sys

import click

from services.cli.jobs import _client, _fail, api_key_option, api_option


@click.group()
def webhooks() -> None:
    """Webhook signing secret, delivery logs and signature verification."""


@webhooks.command("secret")
@api_option
@api_key_option
def secret(api_url: str, api_key: str | None) -> None:
    """Print this tenant's signing secret (made on first use)."""
    _print_secret(api_url, api_key, rotate=False)


@webhooks.command("rotate")
@api_option
@api_key_option
def rotate(api_url: str, api_key: str | None) -> None:
    """Make a new signing secret and print it; the previous one also signs until the grace period ends."""
    _print_secret(api_url, api_key, rotate=True)


def _print_secret(api_url: str, api_key: str | None, *, rotate: bool) -> None:
    from services.client import ClientError

    try:
        answer = _client(api_url, api_key).webhook_secret(rotate=rotate)
    except ClientError as exc:
        _fail(str(exc))
    click.echo(answer["secret"])
    if answer.get("previous_valid_until_s"):
        click.echo(f"the previous secret keeps signing too until epoch {answer['previous_valid_until_s']}", err=True)


@webhooks.command("log")
@click.argument("resource_id")
@click.option("--kind", type=click.Choice(["jobs", "styles", "videos", "batches"]), default="jobs", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the whole log as JSON.")
@api_option
@api_key_option
def log(resource_id: str, kind: str, as_json: bool, api_url: str, api_key: str | None) -> None:
    """Show the webhook of RESOURCE_ID and every delivery attempt."""
    from services.client import ClientError

    try:
        answer = _client(api_url, api_key).webhook_log(resource_id, kind=kind)
    except ClientError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    hook = answer.get("webhook") or {}
    click.echo(f"webhook {hook.get('url') or '(none)'} events {','.join(hook.get('events') or [])}")
    for entry in answer["attempts"]:
        outcome = entry["status_code"] if entry["status_code"] is not None else entry["error"]
        click.echo(f"{entry['at']} #{entry['attempt']} {entry['type']} {outcome} {entry['duration_ms']:.0f} ms "
                   f"{entry['outcome']}")


@webhooks.command("verify")
@click.option("--secret", "secret_text", required=True, envvar="ATELIER_WEBHOOK_SECRET", show_envvar=True,
              help="The tenant's whsec_... secret.")
@click.option("--tolerance", "tolerance_s", type=click.IntRange(min=0), default=300, show_default=True,
              help="Largest accepted difference between webhook-timestamp and now, in seconds.")
def verify(secret_text: str, tolerance_s: int) -> None:
    """Check the signature of an HTTP request read from stdin (headers, empty line, body)."""
    from services.webhooks.signing import verify as check

    try:
        headers, body = parse_request(sys.stdin.buffer.read())
    except ValueError as exc:
        _fail(str(exc))
    verdict = check(secret_text, headers, body, tolerance_s=tolerance_s)
    msg_id = {name.lower(): value for name, value in headers.items()}.get("webhook-id", "?")
    if not verdict.ok:
        _fail(f"webhook {msg_id}: {verdict.reason}")
    try:
        event_type = json.loads(body).get("type")
    except (ValueError, AttributeError):
        event_type = None
    click.echo(f"webhook {msg_id}: {verdict.reason}" + (f" ({event_type})" if event_type else ""))


def parse_request(raw: bytes) -> tuple[dict[str, str], str]:
    """``(headers, body)`` of a raw HTTP request (the format in the module's docstring)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = raw.partition(separator)
        if found:
            break
    else:
        raise ValueError("no empty line between the headers and the body on stdin; expected header lines, an "
                         "empty line, then the body")
    headers: dict[str, str] = {}
    for number, line in enumerate(head.decode("latin-1").replace("\r\n", "\n").split("\n"), start=1):
        if number == 1 and not line.strip().endswith(":") and " " in line and ":" not in line.split(" ", 1)[0]:
            continue  # the request line, "POST /hook HTTP/1.1"
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ValueError(f"line {number} of the request head is not 'Name: value': {line[:80]!r}")
        headers[name.strip()] = value.strip()
    try:
        return headers, body.decode()
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8 text; webhook bodies are JSON") from None
