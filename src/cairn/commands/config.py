"""`cairn config`: show the sample configuration file."""

from __future__ import annotations

import click

from cairn.config import sample_config


@click.group()
def config() -> None:
    """Configuration helpers."""


@config.command("sample")
def sample() -> None:
    """Print a configuration file with every option at its default."""
    click.echo(sample_config())
