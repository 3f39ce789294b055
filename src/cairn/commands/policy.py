"""`cairn policy sample`: the policy rules at their defaults, as an oslo.policy YAML file."""

from __future__ import annotations

import click

from cairn.auth.policy import sample_policy


@click.group()
def policy() -> None:
    """Policy rules."""


@policy.command("sample")
def sample() -> None:
    """Print every policy rule at its default (commented out)."""
    click.echo(sample_policy())
