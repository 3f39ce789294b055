"""Sub-commands of `cairn`, one module per group."""

from __future__ import annotations

import sys
from typing import Any

import click

from cairn.config import Settings, load_settings
from cairn.errors import CairnError


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    """The settings for this invocation: the group's --config-file plus overrides."""
    config_file = (ctx.find_root().obj or {}).get("config_file")
    return load_settings(config_file, **overrides)


def run(command: click.Command) -> None:
    """Run a command line: Cairn's errors become a one-line message and exit status 2,
    click's usage errors keep their own message and status."""
    try:
        command(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CairnError as exc:
        click.echo(f"cairn: {exc.message}", err=True)
        sys.exit(2)
