"""`cairn instance`: the inventory of the `local` platform, and the domains of the
`libvirt` platform (`list` shows what the configured platform sees; `adopt` gives a
domain to a project)."""

from __future__ import annotations

import click

from cairn.commands import settings_from
from cairn.db.database import Database
from cairn.db.migrate import upgrade
from cairn.platforms.local import list_instances, register_instance, update_instance


def _database(ctx: click.Context) -> Database:
    settings = settings_from(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    return Database(settings.database_url)


@click.group()
def instance() -> None:
    """Instances: the local inventory, or the libvirt host's domains."""


@instance.command("add")
@click.option("--project", required=True, help="Project that owns the instance.")
@click.option("--name", required=True, help="Instance name.")
@click.option("--disk", "disks", multiple=True, required=True, help="Disk image path (repeatable).")
@click.option("--host", default=None,
              help="The worker (`cairn worker --name`) that reaches the disks; its jobs run there "
                   "(default: any worker).")
@click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE",
              help="Instance metadata (repeatable), e.g. exclude_boot_disk_from_backup=true.")
@click.option("--exclude-disk", "excluded", multiple=True, metavar="PATH",
              help="A disk (one of --disk) left out of snapshots: its metadata exclude_from_backup=true.")
@click.pass_context
def add(ctx: click.Context, project: str, name: str, disks: tuple[str, ...], host: str | None,
        metadata: tuple[str, ...], excluded: tuple[str, ...]) -> None:
    """Register an instance; prints its id alone."""
    pairs = _pairs(metadata)
    database = _database(ctx)
    with database.unit_of_work() as session:
        info = register_instance(session, project, name, list(disks), host=host, metadata=pairs,
                                 excluded=list(excluded))
    database.dispose()
    click.echo(info.id)


def _pairs(items: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--metadata")
        pairs[key] = value
    return pairs


@instance.command("set")
@click.argument("instance_id")
@click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE", help="Set a metadata key (repeatable).")
@click.option("--unset", "unset", multiple=True, metavar="KEY", help="Remove a metadata key (repeatable).")
@click.option("--exclude-disk", "excluded", multiple=True, metavar="PATH",
              help="The disks left out of snapshots (repeatable; replaces the previous choice).")
@click.option("--include-every-disk", is_flag=True, help="Leave no disk out of snapshots.")
@click.pass_context
def set_cmd(ctx: click.Context, instance_id: str, metadata: tuple[str, ...], unset: tuple[str, ...],
            excluded: tuple[str, ...], include_every_disk: bool) -> None:
    """Change an instance's metadata, or which of its disks snapshots leave out."""
    pairs = _pairs(metadata)
    choice = [] if include_every_disk else (list(excluded) if excluded else None)
    database = _database(ctx)
    with database.unit_of_work() as session:
        info = update_instance(session, instance_id, pairs, list(unset), choice)
    database.dispose()
    left = [d.path for d in info.disks if d.metadata.get("exclude_from_backup") == "true"]
    click.echo(f"{info.id}  metadata {info.metadata}  excluded disks: {', '.join(left) or 'none'}")


@instance.command("list")
@click.option("--project", default=None, help="Only this project's instances.")
@click.pass_context
def list_cmd(ctx: click.Context, project: str | None) -> None:
    """List instances: id, project, name, disks (libvirt: every domain of the host)."""
    settings = settings_from(ctx)
    if settings.platform == "libvirt":
        from cairn.platforms.libvirt import LibvirtPlatform

        for info in LibvirtPlatform(settings.libvirt_uri).list_domains(project):
            disks = ", ".join(f"{d.device}={d.path} ({d.format}, {d.size} B)" for d in info.disks)
            click.echo(f"{info.id}  {info.project_id or '-'}  {info.name}  {info.metadata['state']}  {disks}")
        return
    database = _database(ctx)
    with database.reader() as session:
        for info in list_instances(session, project):
            disks = ", ".join(f"{d.path} ({d.format}, {d.size} B"
                              f"{', excluded from backup' if d.metadata.get('exclude_from_backup') else ''})"
                              for d in info.disks)
            where = f"  (on worker {info.host})" if info.host else ""
            click.echo(f"{info.id}  {info.project_id}  {info.name}  {disks}{where}")
    database.dispose()


@instance.command("adopt")
@click.option("--project", required=True, help="Project the domain is given to.")
@click.option("--domain", "domain", required=True, help="Domain name or UUID.")
@click.pass_context
def adopt(ctx: click.Context, project: str, domain: str) -> None:
    """Give a libvirt domain to a project (stored in the domain's metadata); prints its
    instance id (the domain UUID) alone."""
    from cairn.platforms.libvirt import LibvirtPlatform

    settings = settings_from(ctx)
    click.echo(LibvirtPlatform(settings.libvirt_uri).adopt(project, domain).id)
