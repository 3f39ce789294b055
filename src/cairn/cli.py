"""The `cairn` command: one entry point, a sub-command group per concern.

Each group lives in `cairn/commands/<name>.py`; this module only assembles them and
turns Cairn's errors into a one-line message and exit status 2.
"""

from __future__ import annotations

import sys

import click

from cairn.commands import config as config_cmd
from cairn.commands import db as db_cmd
from cairn.commands import instance as instance_cmd
from cairn.commands import policy as policy_cmd
from cairn.commands import repo as repo_cmd
from cairn.commands import serve as serve_cmd
from cairn.commands import token as token_cmd
from cairn.commands import workload as workload_cmd
from cairn.errors import CairnError


@click.group()
@click.option("--config-file", type=click.Path(dir_okay=False), envvar="CAIRN_CONFIG_FILE",
              help="Configuration file (INI); see `cairn config sample`.")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """Cairn: backup and recovery for virtual-machine clouds."""
    ctx.obj = {"config_file": config_file}


for group in (serve_cmd.serve, db_cmd.db, token_cmd.token, instance_cmd.instance,
              repo_cmd.repo, config_cmd.config, policy_cmd.policy, workload_cmd.workload):
    cli.add_command(group)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CairnError as exc:
        click.echo(f"cairn: {exc.message}", err=True)
        sys.exit(2)
