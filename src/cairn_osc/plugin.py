"""The hooks OpenStackClient calls on a plugin found under `openstack.cli.extension`.

`API_NAME` names the entry point, the client's attribute on the client manager
(`client_manager.workloads`) and the command group (`openstack.workloads.v1`).
`make_client` finds Cairn's endpoint the way every OpenStackClient plugin does:
`workloads_endpoint_override` from clouds.yaml, `$OS_WORKLOADS_ENDPOINT_OVERRIDE` or
`--os-workloads-endpoint-override` first, else the Keystone catalog entry of type
`workloads` for the chosen region and interface.
"""

from __future__ import annotations

import argparse
from typing import Any

from keystoneauth1 import exceptions as ks_exceptions
from osc_lib import exceptions, utils

from cairn_osc.client import SERVICE_TYPE, WorkloadsClient

DEFAULT_API_VERSION = "1"
API_VERSION_OPTION = "os_workloads_api_version"
API_NAME = "workloads"
API_VERSIONS = {"1": "cairn_osc.client.WorkloadsClient"}


def make_client(instance: Any) -> WorkloadsClient:
    """The workloads client of the client manager `instance` (authenticates on first use)."""
    version = instance._api_version.get(API_NAME, DEFAULT_API_VERSION)
    if version not in API_VERSIONS:
        raise exceptions.CommandError(f"--os-workloads-api-version: Cairn speaks version "
                                      f"{', '.join(API_VERSIONS)} of the workloads API, not {version!r}.")
    try:
        endpoint = instance.get_endpoint_for_service_type(
            SERVICE_TYPE, region_name=instance.region_name, interface=instance.interface)
    except ks_exceptions.EndpointNotFound:
        endpoint = None
    if not endpoint:
        region = f" in region {instance.region_name}" if instance.region_name else ""
        raise exceptions.CommandError(
            f"The Keystone catalog has no {instance.interface or 'public'} endpoint of type "
            f"'{SERVICE_TYPE}'{region}: register Cairn (cairn keystone register) or give its URL "
            f"with --os-workloads-endpoint-override.")
    project_id = None
    if instance.auth_ref is not None:
        project_id = instance.auth_ref.project_id
    return WorkloadsClient(instance.session, endpoint, interface=instance.interface,
                           region_name=instance.region_name, project_id=project_id)


def build_option_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The plugin's global options (`openstack --os-workloads-api-version 1 …`)."""
    parser.add_argument(
        "--os-workloads-api-version", metavar="<workloads-api-version>",
        default=utils.env("OS_WORKLOADS_API_VERSION"),
        help=f"Workloads API version, default={DEFAULT_API_VERSION} (Env: OS_WORKLOADS_API_VERSION)")
    parser.add_argument(
        "--os-workloads-endpoint-override", metavar="<url>",
        default=utils.env("OS_WORKLOADS_ENDPOINT_OVERRIDE"),
        help="Cairn's URL with its /v1/<project_id>, instead of the catalog's "
             "(Env: OS_WORKLOADS_ENDPOINT_OVERRIDE)")
    return parser
