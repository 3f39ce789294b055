"""`openstack workload list|create|show|modify|delete|unlock|reset`.

A workload is named by its id or, when unique in the project, its name. Create and
modify take Trilio's forms too: `--instance instance-id=ID`, `--display-name`,
`--display-description`, `--jobschedule KEY=VALUE`, `--metadata KEY=VALUE`.
"""

from __future__ import annotations

import argparse
from typing import Any

from osc_lib import exceptions
from osc_lib.command import command

from cairn_osc.v1 import common
from cairn_osc.v1.common import WORKLOAD, WORKLOAD_TYPE

LIST_FIELDS: tuple[str, ...] = ("id", "name", "status", "workload_type_id", "created_at")
LIST_HEADERS: tuple[str, ...] = ("ID", "Name", "Status", "Workload Type", "Created At")
LONG_FIELDS = ("description", "instances", "storage_usage", "error_msg")
LONG_HEADERS = ("Description", "Instances", "Storage Usage", "Error")


def instance_ids(values: list[str] | None) -> list[dict[str, str]] | None:
    """`--instance ID` or Trilio's `--instance instance-id=ID`, each once."""
    if values is None:
        return None
    ids: list[str] = []
    for value in values:
        key, sep, rest = value.partition("=")
        instance = rest if sep and key == "instance-id" else value
        if not instance or (sep and key != "instance-id"):
            raise exceptions.CommandError(f"--instance: {value!r} is neither an instance id nor instance-id=ID.")
        ids.append(instance)
    return [{"instance-id": i} for i in ids]


def workload_type_id(client: Any, value: str | None) -> str | None:
    """A workload type by id or name (`Serial`, `Parallel`)."""
    if value is None:
        return None
    types = client.get(WORKLOAD_TYPE.path)["workload_types"]
    for wtype in types:
        if value in (wtype["id"], wtype["name"]):
            return str(wtype["id"])
    known = ", ".join(f"{t['name']} ({t['id']})" for t in types)
    raise exceptions.CommandError(f"--workload-type: no workload type {value!r}; there are {known}.")


def add_body_options(parser: argparse.ArgumentParser, creating: bool) -> None:
    parser.add_argument("--name", "--display-name", dest="name", metavar="<name>",
                        required=creating, help="Name of the workload")
    parser.add_argument("--description", "--display-description", dest="description",
                        metavar="<description>", help="Description of the workload")
    parser.add_argument("--instance", metavar="<instance-id>", action="append", dest="instances",
                        required=creating,
                        help=("Instance to protect (repeat for several; instance-id=ID also accepted)"
                              if creating else "Instance to protect; the instances given replace the whole set"))
    parser.add_argument("--jobschedule", metavar="<key=value>", action="append",
                        help="Schedule field, e.g. interval=12hr, start_time='9:00 PM', enabled=false, "
                             "retention_policy_value=7 (repeat for several; a JSON object value for a tier)")
    parser.add_argument("--metadata", metavar="<key=value>", action="append",
                        help="Metadata to set (repeat for several)")
    parser.add_argument("--policy-id", metavar="<policy>",
                        help="Workload policy whose schedule and retention the workload follows")


def body_of(client: Any, args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.name is not None:
        body["name"] = args.name
    if args.description is not None:
        body["description"] = args.description
    instances = instance_ids(args.instances)
    if instances is not None:
        body["instances"] = instances
    if args.jobschedule:
        body["jobschedule"] = common.key_values(args.jobschedule, "--jobschedule")
    metadata = common.key_values(args.metadata, "--metadata")
    if args.policy_id:
        metadata["policy_id"] = args.policy_id
    if metadata:
        body["metadata"] = metadata
    return body


class ListWorkload(command.Lister):
    """List workloads"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--long", action="store_true", help="List additional fields in output")
        parser.add_argument("--all-projects", "--all", dest="all_projects", action="store_true",
                            help="Every project's workloads (admin only)")
        parser.add_argument("--project", metavar="<project-id>", help="Only this project's workloads (admin only)")
        parser.add_argument("--nfs-share", metavar="<target>",
                            help="Only workloads stored on this backup target (export or name)")
        parser.add_argument("--limit", metavar="<n>", type=int, help="At most this many")
        parser.add_argument("--marker", metavar="<workload-id>", help="Start after this workload")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        client = common.client_of(self)
        path = "/workloads/detail" if args.long else "/workloads"
        items = client.get(path, all_workloads="true" if args.all_projects else None, project_id=args.project,
                           nfs_share=args.nfs_share, limit=args.limit, marker=args.marker)["workloads"]
        fields, headers = LIST_FIELDS, LIST_HEADERS
        if args.all_projects or args.project:
            fields, headers = (*fields, "project_id"), (*headers, "Project")
        if args.long:
            fields, headers = (*fields, *LONG_FIELDS), (*headers, *LONG_HEADERS)
        type_names = {t["id"]: t["name"] for t in client.get(WORKLOAD_TYPE.path)["workload_types"]}
        shape = {"instances": lambda v: common.formatted([i["name"] for i in v or []]),
                 "storage_usage": lambda v: (v or {}).get("usage"),
                 "workload_type_id": lambda v: type_names.get(v, v)}
        return headers, common.list_rows(items, fields, shape)


class ShowWorkload(command.ShowOne):
    """Show a workload's details"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("workload", metavar="<workload>", help="Workload (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        return common.show_columns(common.find(common.client_of(self), WORKLOAD, args.workload))


class CreateWorkload(command.ShowOne):
    """Create a workload protecting instances"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_body_options(parser, creating=True)
        parser.add_argument("--workload-type", "--workload-type-id", dest="workload_type",
                            metavar="<workload-type>",
                            help="Serial (the default: one instance after another) or Parallel, by name or ID")
        parser.add_argument("--source-platform", metavar="<platform>", default=None,
                            help="Only 'openstack' (the default)")
        common.add_wait_options(parser, "workload's creation")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        client = common.client_of(self)
        body = body_of(client, args)
        type_id = workload_type_id(client, args.workload_type)
        if type_id is not None:
            body["workload_type_id"] = type_id
        if args.source_platform is not None:
            body["source_platform"] = args.source_platform
        created = client.post("/workloads", {"workload": body})["workload"]
        path = f"/workloads/{created['id']}"
        if args.wait:
            shown = common.wait_for(client, path, "workload", lambda w: w["status"] != "creating",
                                    args.wait_timeout)
            if shown["status"] == "error":
                raise common.ended_badly("Workload", shown)
        else:
            shown = client.get(path)["workload"]
        return common.show_columns(shown)


class ModifyWorkload(command.Command):
    """Modify a workload: name, description, instances, schedule, metadata, policy"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("workload", metavar="<workload>", help="Workload (name or ID)")
        add_body_options(parser, creating=False)
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        client = common.client_of(self)
        body = body_of(client, args)
        if not body:
            raise exceptions.CommandError("Nothing to modify: give at least one of --name, --description, "
                                          "--instance, --jobschedule, --metadata, --policy-id.")
        client.put(f"/workloads/{common.find_id(client, WORKLOAD, args.workload)}", {"workload": body})


class DeleteWorkload(command.Command):
    """Delete workloads (refused while a workload has snapshots)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("workloads", metavar="<workload>", nargs="+", help="Workload(s) to delete (name or ID)")
        parser.add_argument("--database-only", action="store_true",
                            help="Delete the database rows only and keep every byte on the backup target, "
                                 "so the workload can be imported again (admin only)")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        params = {"database_only": "true"} if args.database_only else None
        common.delete_each(common.client_of(self), WORKLOAD, args.workloads, lambda i: f"/workloads/{i}", params)


class UnlockWorkload(command.Command):
    """Unlock a workload: it becomes available, and a snapshot or restore running for it is cancelled"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("workload", metavar="<workload>", help="Workload (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        client = common.client_of(self)
        client.post(f"/workloads/{common.find_id(client, WORKLOAD, args.workload)}/unlock")


class ResetWorkload(command.Command):
    """Reset a workload: the next snapshot is full, leftovers of failed snapshots are removed"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("workload", metavar="<workload>", help="Workload (name or ID)")
        common.add_wait_options(parser, "reset")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        client = common.client_of(self)
        workload_id = common.find_id(client, WORKLOAD, args.workload)
        client.post(f"/workloads/{workload_id}/reset")
        if args.wait:
            common.wait_for(client, f"/workloads/{workload_id}", "workload",
                            lambda w: w["status"] != "resetting", args.wait_timeout)
