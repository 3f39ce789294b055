"""`cairn target`: set up backup targets on purpose (`init`) and see their state (`list`);
and the check every role (`serve`, `worker`, `api`) makes of the targets when it starts.

A target is usable only when its path holds its own marker (`cairn.targets.marker`).
A role whose target fails that check still starts: it logs the target, its path and
why, and every job on that target fails with the same message while the other targets
keep working (one unmounted share of several must not stop the service). Once the share
is mounted, or `cairn target init NAME` has run, jobs on it succeed again: the check is
made anew before each job, never cached.

The embedded default target (`<data_dir>/targets/default`, used when no `[target:NAME]`
is configured) is Cairn's own directory: `serve` and `worker` initialise it themselves
when no workload is kept on it yet (a new installation, or one whose
`cairn token create` ran first), or when it holds Cairn's data from before markers
existed. A configured target, which may be a mount point, is never initialised but by
`cairn target init`.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from cairn.commands import settings_from
from cairn.config import Settings
from cairn.db.database import Database
from cairn.targets.marker import MISSING, UNMARKED, is_mount_point
from cairn.workloads.records import count_on_target
from cairn.workloads.storage import BackupTarget, BackupTargets

log = logging.getLogger(__name__)

DEFAULT_TARGET = "default"


def prepare_targets(settings: Settings, targets: BackupTargets, database: Database,
                    role: str) -> list[str]:
    """At a role's start: initialise the embedded default when that is safe (`serve`,
    `worker`), then log every target's state. Returns the names of the targets that fail
    their check (their jobs will fail; the role runs on)."""
    default = targets.get(DEFAULT_TARGET) if not settings.targets else None
    if isinstance(default, BackupTarget) and role in ("serve", "worker"):
        init_embedded_default(default, database)
    failing = []
    for state in targets.states():
        if state.ready:
            log.info("backup target %s at %s: ready (%s)", state.name, state.path, state.detail)
        else:
            failing.append(state.name)
            log.error("backup target %s at %s is NOT usable (%s): %s. Jobs on it fail until it is "
                      "fixed; other targets keep working.", state.name, state.path, state.state,
                      state.detail)
    return failing


def init_embedded_default(target: BackupTarget, database: Database) -> bool:
    """Write the embedded default's marker if it has none and nothing can be lost by it;
    whether it was written."""
    state = target.state()
    if state.state not in (MISSING, UNMARKED):
        return False
    legacy = (target.path / "projects").is_dir()
    if not legacy:
        with database.reader() as session:
            if count_on_target(session, target.name):
                # Workloads expect their backups here and the directory is gone or
                # empty: the data directory may be on a volume that is not mounted.
                return False
    marker, written = target.init()
    if written:
        log.info("initialised the embedded backup target %s at %s (id %s)", target.name, target.path,
                 marker.id)
    return written


@click.group()
def target() -> None:
    """Backup targets: set them up, see their state."""


@target.command("init")
@click.argument("name")
@click.pass_context
def init_cmd(ctx: click.Context, name: str) -> None:
    """Write the marker of the configured target NAME at its path (creating the directory).

    Run it once per target, with the share mounted. Running it again changes nothing; a
    path that holds another target's marker is refused.
    """
    settings = settings_from(ctx)
    chosen = BackupTargets(settings.backup_targets).get(name)
    marker, written = chosen.init()
    verb = "initialised" if written else "already initialised:"
    click.echo(f"backup target {chosen.name} {verb} {chosen.path} (id {marker.id})")
    if isinstance(chosen.path, Path) and not is_mount_point(chosen.path):
        click.echo(f"note: {chosen.path} is not a mount point; backups on it stay on this "
                   "host's filesystem", err=True)


@target.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per target, one per line.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """Show each configured target: name, path, marker state (exit status 1 if one fails)."""
    settings = settings_from(ctx)
    states = BackupTargets(settings.backup_targets).states()
    for state in states:
        if as_json:
            click.echo(json.dumps({"name": state.name, "path": str(state.path), "state": state.state,
                                   "id": state.marker.id if state.marker else None,
                                   "detail": state.detail}, sort_keys=True))
        else:
            click.echo(f"{state.name}\t{state.path}\t{state.state}\t{state.detail}")
    if not all(state.ready for state in states):
        sys.exit(1)
