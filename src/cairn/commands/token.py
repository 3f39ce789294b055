"""`cairn token create`: issue a local API token."""

from __future__ import annotations

import click

from cairn.auth.context import Identity
from cairn.auth.tokens import issue_token, parse_ttl
from cairn.commands import settings_from
from cairn.db.database import Database
from cairn.db.migrate import upgrade


@click.group()
def token() -> None:
    """Local API tokens."""


@token.command("create")
@click.option("--project", required=True, help="Project the token acts in.")
@click.option("--user", required=True, help="User id recorded on what the token does.")
@click.option("--role", "roles", multiple=True, help="A role (repeatable); `admin` for administrators.")
@click.option("--ttl", default="24h", show_default=True, help="Lifetime: 30m, 24h, 7d, or `never`.")
@click.pass_context
def create(ctx: click.Context, project: str, user: str, roles: tuple[str, ...], ttl: str) -> None:
    """Print a new token alone on stdout (only its hash is stored)."""
    lifetime = None if ttl == "never" else parse_ttl(ttl)
    settings = settings_from(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    database = Database(settings.database_url)
    with database.unit_of_work() as session:
        secret = issue_token(session, Identity(project, user, frozenset(roles)), lifetime)
    database.dispose()
    click.echo(secret)
