"""Fills the development OpenStack of scripts/openstack-dev.sh with what the tests use.

Run by `openstack-dev.sh start` with the OpenStack virtual environment's Python: phase
`identity` once Keystone listens (the other services need their users to start), phase
`contents` once the other APIs listen. Idempotent: each step adds only what is missing,
so a restart costs a few look-ups. Adds:

- the service users (nova, placement, glance, cinder, neutron; `admin` in `service`) and
  the catalog (compute, placement, image, volumev3, network; public and internal);
- projects `cairn-alpha` and `cairn-beta` with users `cairn-alice` and `cairn-bob`
  (role `member`), and `cairn`, a service user for Cairn (`admin` and `service` in
  `service`);
- flavor `cairn.tiny` (1 vCPU, 192 MiB, 1 GiB root disk), the guest image `cairn-guest`
  (tests/platforms/guest.py's boot disk), network `cairn-net` (flat, shared, subnet
  10.77.0.0/24 without DHCP) and volume type `nfs1`;
- `clouds.yaml` in the state directory (clouds `admin`, `alpha`, `beta`, `cairn`).

Then waits until the compute host is mapped to the cell and its resources are in
Placement, so the first server a test boots is scheduled.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import openstack

REGION = "RegionOne"
SERVICE_USERS = ("nova", "placement", "glance", "cinder", "neutron")
ENDPOINTS = {
    # service type: (name, url template)
    "compute": ("nova", "http://127.0.0.1:8774/v2.1"),
    "placement": ("placement", "http://127.0.0.1:8778"),
    "image": ("glance", "http://127.0.0.1:9292"),
    "volumev3": ("cinderv3", "http://127.0.0.1:8776/v3"),
    "network": ("neutron", "http://127.0.0.1:9696"),
}
PEOPLE = {"alpha": ("cairn-alpha", "cairn-alice"), "beta": ("cairn-beta", "cairn-bob")}


def log(message: str) -> None:
    print(f"populate: {message}", file=sys.stderr, flush=True)


def connect(auth_url: str, user: str, password: str, project: str) -> openstack.connection.Connection:
    return openstack.connect(auth_url=auth_url, username=user, password=password, project_name=project,
                             user_domain_name="Default", project_domain_name="Default",
                             region_name=REGION, identity_interface="public")


def ensure_user(conn, name: str, password: str, project, role_names: tuple[str, ...]):
    user = conn.identity.find_user(name, domain_id="default")
    if user is None:
        user = conn.identity.create_user(name=name, password=password, domain_id="default",
                                         default_project_id=project.id)
    for role_name in role_names:
        role = conn.identity.find_role(role_name)
        if role is None:
            role = conn.identity.create_role(name=role_name)
        conn.identity.assign_project_role_to_user(project, user, role)
    return user


def ensure_project(conn, name: str):
    project = conn.identity.find_project(name, domain_id="default")
    return project or conn.identity.create_project(name=name, domain_id="default")


def ensure_catalog(conn) -> None:
    for service_type, (name, url) in ENDPOINTS.items():
        services = [s for s in conn.identity.services() if s.type == service_type]
        service = services[0] if services else conn.identity.create_service(name=name, type=service_type)
        have = {e.interface for e in conn.identity.endpoints(service_id=service.id)}
        for interface in ("public", "internal"):
            if interface not in have:
                conn.identity.create_endpoint(service_id=service.id, interface=interface, url=url,
                                              region_id=REGION)


def wait_for_compute(conn, nova_manage: str, host: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        subprocess.run([*shlex.split(nova_manage), "cell_v2", "discover_hosts"], capture_output=True)
        try:
            up = [s for s in conn.compute.services() if s.binary == "nova-compute" and s.host == host
                  and s.state == "up"]
            providers = list(conn.placement.resource_providers())
        except openstack.exceptions.SDKException as exc:  # the compute service may be registering itself
            log(f"compute not ready yet: {exc}")
            up, providers = [], []
        if up and providers:
            inventories = list(conn.placement.resource_provider_inventories(providers[0]))
            if any(i.resource_class == "VCPU" for i in inventories):
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"nova-compute on {host} did not report its resources within {timeout:.0f} s")
        time.sleep(2)


def ensure_volume_type(conn) -> None:
    if conn.block_storage.find_type("nfs1") is None:
        conn.block_storage.create_type(name="nfs1", extra_specs={"volume_backend_name": "nfs1"},
                                       is_public=True)


def ensure_flavor(conn) -> None:
    if conn.compute.find_flavor("cairn.tiny") is None:
        conn.compute.create_flavor(name="cairn.tiny", vcpus=1, ram=192, disk=1, is_public=True)


def ensure_network(conn) -> None:
    network = conn.network.find_network("cairn-net")
    if network is None:
        network = conn.network.create_network(name="cairn-net", shared=True,
                                              provider_network_type="flat",
                                              provider_physical_network="physnet1")
    if not list(conn.network.subnets(network_id=network.id)):
        conn.network.create_subnet(name="cairn-subnet", network_id=network.id, ip_version=4,
                                   cidr="10.77.0.0/24", is_dhcp_enabled=False)


#: seconds Nova waits for a guest to power off before it pulls the plug: the test guest
#: has no ACPI handler, so Nova's default 60 s is spent whole on every stop
SHUTDOWN_TIMEOUT = 5


def ensure_image(conn, cairn_root: Path) -> None:
    """The guest's boot disk as image `cairn-guest`, uploaded again when the disk changed
    (a new kernel, a new init script): Glance's SHA-512 of the image tells."""
    sys.path.insert(0, str(cairn_root))
    from tests.platforms.guest import build_boot_disk

    disk = build_boot_disk()
    digest = hashlib.sha512(disk.read_bytes()).hexdigest()
    image = conn.image.find_image("cairn-guest")
    if image is not None and image.status == "active" and image.hash_value == digest:
        if image.os_shutdown_timeout != SHUTDOWN_TIMEOUT:
            set_shutdown_timeout(conn, image)
        return
    if image is not None:
        conn.image.delete_image(image)
    image = conn.image.create_image(name="cairn-guest", filename=str(disk), disk_format="raw",
                                    container_format="bare", visibility="public", wait=True)
    set_shutdown_timeout(conn, image)


def set_shutdown_timeout(conn, image) -> None:
    # Glance's schema takes extra properties as strings only (an int is a 400); the SDK
    # reads this one back as an int.
    conn.image.update_image(image, os_shutdown_timeout=str(SHUTDOWN_TIMEOUT))


def write_clouds(state: Path, auth_url: str, password: str) -> None:
    def cloud(user: str, project: str) -> dict:
        return {"auth": {"auth_url": auth_url, "username": user, "password": password,
                         "project_name": project, "user_domain_name": "Default",
                         "project_domain_name": "Default"},
                "region_name": REGION, "identity_api_version": 3}

    clouds = {"admin": cloud("admin", "admin"), "cairn": cloud("cairn", "service")}
    for key, (project, user) in PEOPLE.items():
        clouds[key] = cloud(user, project)
    # JSON is YAML: clouds.yaml needs no YAML writer.
    (state / "clouds.yaml").write_text(json.dumps({"clouds": clouds}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=("identity", "contents"))
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--auth-url", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--nova-manage", required=True)
    parser.add_argument("--cairn-root", type=Path, required=True)
    args = parser.parse_args()
    started = time.monotonic()
    conn = connect(args.auth_url, "admin", args.password, "admin")
    if args.phase == "identity":
        service = ensure_project(conn, "service")
        for name in SERVICE_USERS:
            ensure_user(conn, name, args.password, service, ("admin", "service"))
        ensure_user(conn, "cairn", args.password, service, ("admin", "service"))
        for project_name, user_name in PEOPLE.values():
            ensure_user(conn, user_name, args.password, ensure_project(conn, project_name), ("member",))
        ensure_catalog(conn)
        write_clouds(args.state, args.auth_url, args.password)
    else:
        ensure_volume_type(conn)
        ensure_flavor(conn)
        ensure_network(conn)
        ensure_image(conn, args.cairn_root)
        wait_for_compute(conn, args.nova_manage, args.host)
    log(f"{args.phase} ready in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
