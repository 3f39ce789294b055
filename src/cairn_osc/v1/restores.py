"""`openstack workload restore oneclick|selective|inplace|list|show|delete|cancel`.

A selective or in-place restore reads its choices from a JSON file (`--filename`), in
any of three forms, from the widest:

- a whole request body: `{"restore": {"name": …, "options": {…}}}`;
- the restore's `options` (Trilio's restore.json): `{"openstack": {"instances": […]}, …}`;
- the `openstack` part alone: `{"instances": [{"id": …, "include": true, "name": …}]}`.

The command sets `type` and `restore_type` itself; `--name` and `--description` win over
the file's.
"""

from __future__ import annotations

import argparse
from typing import Any

from osc_lib import exceptions
from osc_lib.command import command

from cairn_osc.v1 import common
from cairn_osc.v1.common import RESTORE, SNAPSHOT

ENDED = ("available", "error", "cancelled")
LIST_FIELDS: tuple[str, ...] = ("id", "name", "snapshot_id", "restore_type", "status", "size", "created_at")
LIST_HEADERS: tuple[str, ...] = ("ID", "Name", "Snapshot ID", "Type", "Status", "Size", "Created At")
LONG_FIELDS = ("progress_percent", "time_taken", "finished_at", "instances", "error_msg")
LONG_HEADERS = ("Progress", "Time Taken", "Finished At", "Instances", "Error")


def body_from_file(path: str) -> dict[str, Any]:
    """The restore body a `--filename` file describes (see the module docstring)."""
    data = common.read_json_file(path, "--filename")
    if not isinstance(data, dict):
        raise exceptions.CommandError(f"--filename: {path} holds a JSON {type(data).__name__}, not an object.")
    if "restore" in data:
        if not isinstance(data["restore"], dict):
            raise exceptions.CommandError(f"--filename: 'restore' in {path} is not an object.")
        body = dict(data["restore"])
        body.setdefault("options", {})
        return body
    if "openstack" in data or "restore_type" in data or "type" in data:
        return {"options": dict(data)}
    if "instances" in data:
        return {"options": {"openstack": dict(data)}}
    raise exceptions.CommandError(
        f"--filename: {path} has none of 'restore', 'openstack' or 'instances': it must hold a restore body, "
        f"its options, or the openstack part with the instances to restore.")


def add_start_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("snapshot", metavar="<snapshot>", help="Snapshot to restore (name or ID)")
    parser.add_argument("--name", "--display-name", dest="name", metavar="<name>", help="Name of the restore")
    parser.add_argument("--description", "--display-description", dest="description", metavar="<description>",
                        help="Description of the restore")
    common.add_wait_options(parser, "restore")


def start(command_: command.ShowOne, args: argparse.Namespace, body: dict[str, Any],
          restore_type: str) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    client = common.client_of(command_)
    snapshot_id = common.find_id(client, SNAPSHOT, args.snapshot)
    if args.name is not None:
        body["name"] = args.name
    if args.description is not None:
        body["description"] = args.description
    options = body.setdefault("options", {})
    if not isinstance(options, dict):
        raise exceptions.CommandError("--filename: the restore's 'options' is not an object.")
    options["type"] = "openstack"
    options["restore_type"] = restore_type
    options["oneclickrestore"] = restore_type == "oneclick"
    started = client.post(f"/snapshots/{snapshot_id}", {"restore": body})["restore"]
    if args.wait:
        started = common.wait_for(client, f"/restores/{started['id']}", "restore", lambda r: r["status"] in ENDED,
                                  args.wait_timeout)
        if started["status"] != "available":
            raise common.ended_badly("Restore", started)
    return common.show_columns(started)


class OneclickRestore(command.ShowOne):
    """Restore every instance of a snapshot as a new instance beside the original"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_start_options(parser)
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        return start(self, args, {}, "oneclick")


class SelectiveRestore(command.ShowOne):
    """Restore the instances a JSON file chooses, under the names it gives"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_start_options(parser)
        parser.add_argument("--filename", metavar="<file>", required=True,
                            help="JSON file with the instances to restore (see docs/cli.md)")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        return start(self, args, body_from_file(args.filename), "selective")


class InplaceRestore(command.ShowOne):
    """Write a snapshot's disks back over the original instances' disks"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_start_options(parser)
        parser.add_argument("--filename", metavar="<file>",
                            help="JSON file choosing instances and disks (default: every one)")
        parser.add_argument("--power-off", action="store_true",
                            help="Stop a running instance first and start it again afterwards")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        body = body_from_file(args.filename) if args.filename else {}
        if args.power_off:
            body.setdefault("options", {})["power_off"] = True
        return start(self, args, body, "inplace")


class ListRestore(command.Lister):
    """List restores"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--snapshot", metavar="<snapshot>", help="Only this snapshot's (name or ID)")
        parser.add_argument("--long", action="store_true", help="List additional fields in output")
        parser.add_argument("--limit", metavar="<n>", type=int, help="At most this many")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        client = common.client_of(self)
        snapshot_id = common.find_id(client, SNAPSHOT, args.snapshot) if args.snapshot else None
        items = client.get("/restores/detail" if args.long else "/restores", snapshot_id=snapshot_id,
                           limit=args.limit)["restores"]
        fields, headers = LIST_FIELDS, LIST_HEADERS
        if args.long:
            fields, headers = (*fields, *LONG_FIELDS), (*headers, *LONG_HEADERS)
        return headers, common.list_rows(items, fields)


class ShowRestore(command.ShowOne):
    """Show a restore: its state, progress and the instances it made"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("restore", metavar="<restore>", help="Restore (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        return common.show_columns(common.find(common.client_of(self), RESTORE, args.restore))


class DeleteRestore(command.Command):
    """Delete restore records (the restored instances stay)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("restores", metavar="<restore>", nargs="+", help="Restore(s) to delete (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        common.delete_each(common.client_of(self), RESTORE, args.restores, lambda i: f"/restores/{i}")


class CancelRestore(command.ShowOne):
    """Cancel a running restore"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("restore", metavar="<restore>", help="Restore (name or ID)")
        common.add_wait_options(parser, "cancelled restore")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        client = common.client_of(self)
        restore_id = common.find_id(client, RESTORE, args.restore)
        shown = client.post(f"/restores/{restore_id}/cancel")["restore"]
        if args.wait:
            shown = common.wait_for(client, f"/restores/{restore_id}", "restore", lambda r: r["status"] in ENDED,
                                    args.wait_timeout)
        return common.show_columns(shown)
