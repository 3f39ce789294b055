"""Sub-commands of `cairn`, one module per group."""

from __future__ import annotations

import click

from cairn.config import Settings, load_settings


def settings_from(ctx: click.Context, **overrides: object) -> Settings:
    """The settings for this invocation: the group's --config-file plus overrides."""
    config_file = (ctx.find_root().obj or {}).get("config_file")
    return load_settings(config_file, **overrides)
