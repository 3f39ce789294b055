"""`cairn workload import`: rebuild workload and snapshot rows from a backup target."""

from __future__ import annotations

import click

from cairn.clock import utcnow
from cairn.commands import settings_from
from cairn.db.database import Database
from cairn.db.migrate import upgrade
from cairn.workloads.importer import import_target
from cairn.workloads.storage import BackupTargets


@click.group()
def workload() -> None:
    """Workload maintenance."""


@workload.command("import")
@click.option("--target", "target_name", required=True, help="Name of a configured backup target.")
@click.option("--workload", "workload_id", default=None, help="Only this workload.")
@click.pass_context
def import_cmd(ctx: click.Context, target_name: str, workload_id: str | None) -> None:
    """Import the workloads (and their snapshots) a backup target describes."""
    settings = settings_from(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    database = Database(settings.database_url)
    targets = BackupTargets(settings.backup_targets)
    with database.unit_of_work() as session:
        report = import_target(session, targets, target_name, utcnow(), workload_id)
    database.dispose()
    for workload_id_ in report.workloads:
        click.echo(f"imported workload {workload_id_}")
    for snapshot_id in report.snapshots:
        click.echo(f"imported snapshot {snapshot_id}")
    for note in report.skipped:
        click.echo(f"skipped {note}")
    click.echo(f"{len(report.workloads)} workload(s), {len(report.snapshots)} snapshot(s) imported")
