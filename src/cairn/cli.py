"""The `cairn` command: one entry point, a sub-command group per concern.

Each group lives in `cairn/commands/<name>.py` and is imported only when it is used, so
`cairn repo backup` does not pay (in start-up time and memory) for the HTTP stack that
`cairn serve` needs. This module also turns Cairn's errors into a one-line message and
exit status 2.
"""

from __future__ import annotations

import importlib

import click

from cairn.commands import run

#: sub-command name → "module:attribute" of its click command
COMMANDS = {
    "serve": "cairn.commands.serve:serve",
    "db": "cairn.commands.db:db",
    "token": "cairn.commands.token:token",
    "instance": "cairn.commands.instance:instance",
    "workload": "cairn.commands.workload:workload",
    "repo": "cairn.commands.repo:repo",
    "target": "cairn.commands.target:target",
    "config": "cairn.commands.config:config",
    "policy": "cairn.commands.policy:policy",
    "api": "cairn.commands.api:api",
    "scheduler": "cairn.commands.scheduler:scheduler",
    "worker": "cairn.commands.worker:worker",
    "keystone": "cairn.commands.keystone:keystone",
}


CONFIG_FILE_HELP = "Configuration file (INI); see `cairn config sample`."


def _remember_config_file(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        root = ctx.find_root()
        root.obj = {**(root.obj or {}), "config_file": value}


def accept_config_file(command: click.Command) -> click.Command:
    """Let `--config-file` also follow the sub-command (`cairn serve --config-file F`), as
    on every OpenStack service's commands; given there, it wins over the group's."""
    if not any(param.name == "config_file" for param in command.params):
        command.params.append(click.Option(
            ["--config-file"], type=click.Path(dir_okay=False), expose_value=False,
            callback=_remember_config_file, help=CONFIG_FILE_HELP))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_config_file(sub)
    return command


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return accept_config_file(command)


@click.group(cls=LazyGroup)
@click.option("--config-file", type=click.Path(dir_okay=False), envvar="CAIRN_CONFIG_FILE",
              help=CONFIG_FILE_HELP)
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """Cairn: backup and recovery for virtual-machine clouds."""
    ctx.obj = {"config_file": config_file}


def main() -> None:
    run(cli)
