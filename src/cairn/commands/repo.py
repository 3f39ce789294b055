"""`cairn repo`: operator commands on a backup repository (init, verify, gc, stats)."""

from __future__ import annotations

import click


@click.group()
def repo() -> None:
    """Operate on a backup repository on a target path."""
