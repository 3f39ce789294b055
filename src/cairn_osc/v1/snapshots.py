"""`openstack workload snapshot create|list|show|delete|cancel`.

`create` takes a snapshot now (`POST /workloads/{id}`); `--wait` follows it until it is
`available` (exit 0) or `error` / `cancelled` (exit 1 with its `error_msg`).
"""

from __future__ import annotations

import argparse
from typing import Any

from osc_lib.command import command

from cairn_osc.v1 import common
from cairn_osc.v1.common import SNAPSHOT, WORKLOAD

ENDED = ("available", "error", "cancelled")
LIST_FIELDS: tuple[str, ...] = ("id", "name", "workload_id", "snapshot_type", "status", "size", "created_at")
LIST_HEADERS: tuple[str, ...] = ("ID", "Name", "Workload ID", "Type", "Status", "Size", "Created At")
LONG_FIELDS = ("progress_percent", "restore_size", "time_taken", "finished_at", "error_msg")
LONG_HEADERS = ("Progress", "Restore Size", "Time Taken", "Finished At", "Error")


def wait_ended(client: Any, snapshot_id: str, timeout: float | None) -> dict[str, Any]:
    """The snapshot's detail once it has ended; an error if it did not end available."""
    shown = common.wait_for(client, f"/snapshots/{snapshot_id}", "snapshot", lambda s: s["status"] in ENDED,
                            timeout)
    if shown["status"] != "available":
        raise common.ended_badly("Snapshot", shown)
    return shown


class CreateSnapshot(command.ShowOne):
    """Take a snapshot of a workload now"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("workload", metavar="<workload>", help="Workload (name or ID)")
        kind = parser.add_mutually_exclusive_group()
        kind.add_argument("--full", action="store_true", help="A full snapshot (default: as the schedule decides)")
        kind.add_argument("--incremental", action="store_true", help="An incremental snapshot")
        parser.add_argument("--name", "--display-name", dest="name", metavar="<name>", help="Name of the snapshot")
        parser.add_argument("--description", "--display-description", dest="description",
                            metavar="<description>", help="Description of the snapshot")
        common.add_wait_options(parser, "snapshot")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        client = common.client_of(self)
        workload_id = common.find_id(client, WORKLOAD, args.workload)
        body: dict[str, Any] = {}
        if args.name is not None:
            body["name"] = args.name
        if args.description is not None:
            body["description"] = args.description
        if args.incremental:
            body["snapshot_type"] = "incremental"
        taken = client.post(f"/workloads/{workload_id}", {"snapshot": body},
                            full="1" if args.full else None)["snapshot"]
        if args.wait:
            return common.show_columns(wait_ended(client, taken["id"], args.wait_timeout))
        return common.show_columns(taken)


class ListSnapshot(command.Lister):
    """List snapshots, oldest first"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--workload", metavar="<workload>", help="Only this workload's (name or ID)")
        parser.add_argument("--status", metavar="<status>", help="Only snapshots in this state")
        parser.add_argument("--date-from", metavar="<YYYY-MM-DDTHH:MM:SS>", help="Only those created since")
        parser.add_argument("--date-to", metavar="<YYYY-MM-DDTHH:MM:SS>", help="Only those created until")
        parser.add_argument("--all-projects", "--all", dest="all_projects", action="store_true",
                            help="Every project's snapshots (admin only)")
        parser.add_argument("--long", action="store_true", help="List additional fields in output")
        parser.add_argument("--limit", metavar="<n>", type=int, help="At most this many")
        parser.add_argument("--marker", metavar="<snapshot-id>", help="Start after this snapshot")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        client = common.client_of(self)
        workload_id = common.find_id(client, WORKLOAD, args.workload) if args.workload else None
        items = client.get("/snapshots", workload_id=workload_id, status=args.status, date_from=args.date_from,
                           date_to=args.date_to, all="true" if args.all_projects else None, limit=args.limit,
                           marker=args.marker)["snapshots"]
        fields, headers = LIST_FIELDS, LIST_HEADERS
        if args.all_projects:
            fields, headers = (*fields, "project_id"), (*headers, "Project")
        if args.long:
            fields, headers = (*fields, *LONG_FIELDS), (*headers, *LONG_HEADERS)
        return headers, common.list_rows(items, fields)


class ShowSnapshot(command.ShowOne):
    """Show a snapshot's details: its instances and their disks"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("snapshot", metavar="<snapshot>", help="Snapshot (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        return common.show_columns(common.find(common.client_of(self), SNAPSHOT, args.snapshot))


class DeleteSnapshot(command.Command):
    """Delete snapshots (their data becomes reclaimable)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("snapshots", metavar="<snapshot>", nargs="+", help="Snapshot(s) to delete (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        common.delete_each(common.client_of(self), SNAPSHOT, args.snapshots, lambda i: f"/snapshots/{i}")


class CancelSnapshot(command.ShowOne):
    """Cancel a running snapshot: it ends cancelled and its partial data is cleaned up"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("snapshot", metavar="<snapshot>", help="Snapshot (name or ID)")
        common.add_wait_options(parser, "cancelled snapshot")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        client = common.client_of(self)
        snapshot_id = common.find_id(client, SNAPSHOT, args.snapshot)
        shown = client.post(f"/snapshots/{snapshot_id}/cancel")["snapshot"]
        if args.wait:
            shown = common.wait_for(client, f"/snapshots/{snapshot_id}", "snapshot",
                                    lambda s: s["status"] in ENDED, args.wait_timeout)
        return common.show_columns(shown)
