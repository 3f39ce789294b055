"""`openstack workload global-job-scheduler show|enable|disable`: the switch that lets
scheduled snapshots fire (reading it is open to members; changing it is an admin's)."""

from __future__ import annotations

import argparse
from typing import Any

from osc_lib.command import command

from cairn_osc.v1 import common

PATH = "/global_job_scheduler"


def shown(body: dict[str, Any]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    return ("global_job_scheduler",), (bool(body["global_job_scheduler"]),)


class ShowGlobalJobScheduler(command.ShowOne):
    """Show whether the global job scheduler is on"""

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        return shown(common.client_of(self).get(PATH))


class EnableGlobalJobScheduler(command.ShowOne):
    """Turn the global job scheduler on (admin only)"""

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        return shown(common.client_of(self).post(f"{PATH}/enable"))


class DisableGlobalJobScheduler(command.ShowOne):
    """Turn the global job scheduler off: no scheduled snapshot fires (admin only)"""

    def take_action(self, args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        return shown(common.client_of(self).post(f"{PATH}/disable"))
