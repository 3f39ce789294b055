"""`cairn db`: database schema management."""

from __future__ import annotations

import click

from cairn.commands import settings_from
from cairn.db.migrate import upgrade as upgrade_schema


@click.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Apply the migrations up to the newest on the configured database."""
    settings = settings_from(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_schema(settings.database_url)
    click.echo("database is at the newest schema")
