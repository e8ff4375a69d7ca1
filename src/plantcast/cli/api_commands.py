"""The REST API surface: ``api`` serves it (uvicorn), ``apikey`` creates, lists, revokes keys."""

from __future__ import annotations

import click

from plantcast.cli.common import console, database_option, out
from plantcast.cli.group import cli
from plantcast.cli.output import emit, listing_format

DEFAULT_API_PORT = 8000


@cli.command("api")
@database_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=DEFAULT_API_PORT, show_default=True, help="Port.")
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Server processes."
)
def api(database_url, host, port, workers) -> None:
    """Serve the REST API (FastAPI on uvicorn; OpenAPI docs at /docs).

    Every route but /health needs a key: create one with `plantcast apikey create`.
    """
    import uvicorn  # here, not at the top: `plantcast --help` stays quick

    from plantcast.core.config import load_settings
    from plantcast.services.context import open_store

    url = load_settings(database_url=database_url).database_url
    with open_store(url, init=True):  # creates api_keys on a store made before it existed
        pass
    console.print(f"API on http://{host}:{port} (docs: http://{host}:{port}/docs)")
    if workers > 1:
        import os

        os.environ["PLANTCAST_DATABASE_URL"] = url
        uvicorn.run(
            "plantcast.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
        return
    from plantcast.api import create_app

    uvicorn.run(create_app(url), host=host, port=port, log_level="warning")


API_KEY_FIELDS = (
    "id",
    "name",
    "prefix",
    "scopes",
    "user",
    "created_at",
    "last_used_at",
    "revoked_at",
)


@cli.group("apikey")
def apikey() -> None:
    """Create, list and revoke REST API keys (scopes: read, write, admin)."""


@apikey.command("create")
@database_option
@click.option("--name", required=True, help="Who or what uses the key (e.g. grafana).")
@click.option(
    "--user",
    default=None,
    help="The user the key belongs to: it carries that user's role (plantcast users).",
)
@click.option(
    "--scopes",
    default=None,
    help="Without --user: comma-separated read, write, admin (admin ⊃ write ⊃ read; default read).",
)
def apikey_create(database_url, name, user, scopes) -> None:
    """Create a key and print its token once (only a hash of it is stored)."""
    from plantcast.services.apikeys import create_key
    from plantcast.services.audit import cli_actor
    from plantcast.services.context import open_store

    with open_store(database_url, init=True) as store:
        key, token = create_key(store, name, scopes, user=user, actor=cli_actor())
    whose = f"user {user}'s role" if user else ",".join(key.scopes)
    console.print(f"key {key.id} ({key.name}, {whose}); the token is shown this once:")
    click.echo(token)


@apikey.command("list")
@database_option
@listing_format
def apikey_list(database_url, fmt) -> None:
    """List keys (never their tokens): id, name, prefix, scopes, created, last used, revoked."""
    from rich.table import Table

    from plantcast.services.context import open_store
    from plantcast.services.users import list_users

    with open_store(database_url, init=True) as store:
        keys = store.list_api_keys()
        owners = {u.id: u.name for u in list_users(store)}

    def when(ts) -> str | None:
        return None if ts is None else ts.isoformat()

    if fmt != "table":
        rows = [
            {
                "id": k.id,
                "name": k.name,
                "prefix": k.prefix,
                "scopes": list(k.scopes),
                "user": owners.get(k.user_id) if k.user_id else None,
                "created_at": when(k.created_at),
                "last_used_at": when(k.last_used_at),
                "revoked_at": when(k.revoked_at),
            }
            for k in keys
        ]
        emit(rows, fmt, list(API_KEY_FIELDS), empty="")
        return
    table = Table("id", "name", "prefix", "scopes", "user", "created (UTC)", "last used", "status")
    for k in keys:
        table.add_row(
            str(k.id),
            k.name,
            k.prefix + "…",
            ",".join(k.scopes),
            owners.get(k.user_id, "-") if k.user_id else "-",
            f"{k.created_at:%Y-%m-%d %H:%M}",
            "-" if k.last_used_at is None else f"{k.last_used_at:%Y-%m-%d %H:%M}",
            "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}",
        )
    out.print(table if keys else "no API keys")


@apikey.command("revoke")
@database_option
@click.argument("key_id", type=int)
def apikey_revoke(database_url, key_id) -> None:
    """Revoke a key: requests with it answer 401 from now on."""
    from plantcast.services.apikeys import revoke_key
    from plantcast.services.audit import cli_actor
    from plantcast.services.context import open_store

    with open_store(database_url, init=True) as store:
        key = revoke_key(store, key_id, actor=cli_actor())
    out.print(f"key {key.id} ({key.name}) revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
