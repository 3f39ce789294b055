"""`cairn instance`: the inventory of the `local` platform."""

from __future__ import annotations

import click

from cairn.commands import settings_from
from cairn.db.database import Database
from cairn.db.migrate import upgrade
from cairn.platforms.local import list_instances, register_instance


def _database(ctx: click.Context) -> Database:
    settings = settings_from(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    return Database(settings.database_url)


@click.group()
def instance() -> None:
    """Instances of the local platform."""


@instance.command("add")
@click.option("--project", required=True, help="Project that owns the instance.")
@click.option("--name", required=True, help="Instance name.")
@click.option("--disk", "disks", multiple=True, required=True, help="Disk image path (repeatable).")
@click.pass_context
def add(ctx: click.Context, project: str, name: str, disks: tuple[str, ...]) -> None:
    """Register an instance; prints its id alone."""
    database = _database(ctx)
    with database.unit_of_work() as session:
        info = register_instance(session, project, name, list(disks))
    database.dispose()
    click.echo(info.id)


@instance.command("list")
@click.option("--project", default=None, help="Only this project's instances.")
@click.pass_context
def list_cmd(ctx: click.Context, project: str | None) -> None:
    """List registered instances: id, project, name, disks."""
    database = _database(ctx)
    with database.reader() as session:
        for info in list_instances(session, project):
            disks = ", ".join(f"{d.path} ({d.format}, {d.size} B)" for d in info.disks)
            click.echo(f"{info.id}  {info.project_id}  {info.name}  {disks}")
    database.dispose()
