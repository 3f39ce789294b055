"""`openstack workload type list|show`: the workload types (Serial, Parallel)."""

from __future__ import annotations

import argparse
from typing import Any

from osc_lib.command import command

from cairn_osc.v1 import common
from cairn_osc.v1.common import WORKLOAD_TYPE


class ListWorkloadType(command.Lister):
    """List workload types"""

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        items = common.client_of(self).get(WORKLOAD_TYPE.path)["workload_types"]
        return ("ID", "Name", "Description"), common.list_rows(items, ("id", "name", "description"))


class ShowWorkloadType(command.ShowOne):
    """Show a workload type"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("workload_type", metavar="<workload-type>", help="Workload type (name or ID)")
        return parser

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        client = common.client_of(self)
        for wtype in client.get(WORKLOAD_TYPE.path)["workload_types"]:
            if args.workload_type in (wtype["id"], wtype["name"]):
                return common.show_columns(wtype)
        return common.show_columns(client.get(f"{WORKLOAD_TYPE.path}/{args.workload_type}")["workload_type"])
