"""`openstack workload policy list|show|create|modify|delete|assign|assigned`.

Policies are an admin's (the service's policy file decides); `assigned` is open to the
project's members, for their own project (the default) or, for an admin, any.
"""

from __future__ import annotations

import argparse
from typing import Any

from osc_lib import exceptions
from osc_lib.command import command

from cairn_osc.v1 import common
from cairn_osc.v1.common import POLICY

TIERS = ("hourly", "daily", "weekly", "monthly", "yearly", "manual")


def add_body_options(parser: argparse.ArgumentParser, creating: bool) -> None:
    parser.add_argument("--name", "--display-name", dest="name", metavar="<name>", required=creating,
                        help="Name of the policy")
    parser.add_argument("--description", "--display-description", dest="description", metavar="<description>",
                        help="Description of the policy")
    parser.add_argument("--interval", metavar="<hours>", help="Hours between snapshots, e.g. 24hr")
    parser.add_argument("--retention-policy-type", metavar="<type>",
                        help="'Number of Snapshots to Keep' or 'Number of days to retain Snapshots'")
    parser.add_argument("--retention-policy-value", metavar="<n>", help="How many snapshots, or days, to keep")
    parser.add_argument("--fullbackup-interval", metavar="<n>",
                        help="-1: never a full after the first; 0: always full; N: a full after N incrementals")
    parser.add_argument("--tier", metavar="<tier=json>", action="append",
                        help=f"A tier of a tiered policy ({', '.join(TIERS)}) as a JSON object, "
                             "e.g. daily='{\"backup_time\": [\"01:00\"], \"retention\": 7}'")
    parser.add_argument("--metadata", metavar="<key=value>", action="append", help="Metadata (repeat for several)")


def body_of(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.name is not None:
        body["display_name"] = args.name
    if args.description is not None:
        body["display_description"] = args.description
    values: dict[str, Any] = {}
    for option in ("interval", "retention_policy_type", "retention_policy_value", "fullbackup_interval"):
        if getattr(args, option) is not None:
            values[option] = getattr(args, option)
    for tier, value in common.key_values(args.tier, "--tier").items():
        if tier not in TIERS:
            raise exceptions.CommandError(f"--tier: {tier!r} is none of {', '.join(TIERS)}.")
        values[tier] = value
    if values:
        body["field_values"] = values
    if args.metadata:
        body["metadata"] = common.key_values(args.metadata, "--metadata")
    return body


def field_values(policy: dict[str, Any]) -> dict[str, Any]:
    return {f["policy_field_name"]: f["value"] for f in policy.get("field_values", [])}


class ListPolicy(command.Lister):
    """List workload policies"""

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        items = common.client_of(self).get(POLICY.path)["policy_list"]
        rows = [(p["id"], p["name"], p["description"], common.formatted(field_values(p)),
                 common.formatted([a["project_id"] for a in p.get("policy_assignments", [])]))
                for p in items]
        return ("ID", "Name", "Description", "Field Values", "Projects"), rows


class ShowPolicy(command.ShowOne):
    """Show a workload policy"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("policy", metavar="<policy>", help="Policy (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        return common.show_columns(common.find(common.client_of(self), POLICY, args.policy))


class CreatePolicy(command.ShowOne):
    """Create a workload policy (its four field values, or its tiers)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_body_options(parser, creating=True)
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        created = common.client_of(self).post(POLICY.path, {"workload_policy": body_of(args)})["policy"]
        return common.show_columns(created)


class ModifyPolicy(command.ShowOne):
    """Modify a workload policy (refused while a workload uses it)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("policy", metavar="<policy>", help="Policy (name or ID)")
        add_body_options(parser, creating=False)
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        client = common.client_of(self)
        body = body_of(args)
        if not body:
            raise exceptions.CommandError("Nothing to modify: give at least one option.")
        policy_id = common.find_id(client, POLICY, args.policy)
        return common.show_columns(client.put(f"{POLICY.path}/{policy_id}", {"policy": body})["policy"])


class DeletePolicy(command.Command):
    """Delete workload policies (refused while a workload uses one)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("policies", metavar="<policy>", nargs="+", help="Policy(s) to delete (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> None:
        common.delete_each(common.client_of(self), POLICY, args.policies, lambda i: f"{POLICY.path}/{i}")


class AssignPolicy(command.ShowOne):
    """Assign a workload policy to projects, or take it from them"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("policy", metavar="<policy>", help="Policy (name or ID)")
        parser.add_argument("--add-project", metavar="<project-id>", action="append", default=[],
                            help="Project to assign the policy to (repeat for several)")
        parser.add_argument("--remove-project", metavar="<project-id>", action="append", default=[],
                            help="Project to take the policy from (repeat for several)")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        if not args.add_project and not args.remove_project:
            raise exceptions.CommandError("Give --add-project or --remove-project.")
        client = common.client_of(self)
        policy_id = common.find_id(client, POLICY, args.policy)
        answer = client.post(f"{POLICY.path}/{policy_id}/assign", {"policy": {
            "add_projects": args.add_project, "remove_projects": args.remove_project}})
        shown = dict(answer["policy"], failed_ids=answer.get("failed_ids", []))
        return common.show_columns(shown)


class AssignedPolicy(command.Lister):
    """List the policies assigned to a project"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--project", metavar="<project-id>", help="Project (default: the current one)")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        client = common.client_of(self)
        project = args.project or client.project_id
        if not project:
            raise exceptions.CommandError("--project: the token has no project; name one.")
        items = client.get(f"{POLICY.path}/assigned/{project}")["policies"]
        return ("Policy ID", "Policy Name"), [(p["policy_id"], p["policy_name"]) for p in items]
