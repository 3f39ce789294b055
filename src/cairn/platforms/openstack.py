"""The `openstack` platform: a project's Nova servers are its instances.

Inventory comes from the OpenStack APIs (openstacksdk): which servers a project has is
asked of Nova with the caller's own Keystone token (`cairn.auth.caller`), so a server
the caller's project cannot see does not exist for Cairn; and a server whose project is
not the workload's is refused even for an administrator whose token sees every project.
Where there is no caller (a job on a worker), Cairn's service user of
`[keystone_authtoken]` asks, and the server's project is checked the same way.

The data path is the libvirt platform's: a Nova server is the libvirt domain of the
same UUID on its compute host (`OS-EXT-SRV-ATTR:host`), read live through checkpoints
and NBD (`libvirt_backup`). The server's jobs carry that host as their worker, so a
`cairn worker --name <compute host>` on each compute host runs them. Disks the domain
sees as files are read: the image-backed root disk (`instances/<uuid>/disk`), ephemeral
and swap disks, and Cinder volumes of file-backed drivers (the NFS driver mounts its
share on the compute host). Volumes that reach the domain otherwise (RBD as a network
disk, iSCSI/FC as a block device) are refused with the disk and the Cinder backend named.

Restores go through the OpenStack APIs (`openstack_restore`): new volumes written on this
host's mount of Cinder's share, new ports and a new server, made in the workload's
project as its user (the trust); in place, the server is stopped and started through
Nova around the writing of its disks here. An instant restore (`openstack_instant`)
boots the new server through Nova on volumes that read through to the snapshot, served
from this host, and copies the data in while it runs. Jobs of a workload with a trust act through
it (`cairn.auth.acting`): their Nova reads are the user's view, the service user's
only for admin-only attributes.

Each snapshot keeps, per server, what a restore through the OpenStack APIs needs
(`describe_server`): the flavor and its figures, image, key pair, metadata,
availability zone, security groups with their rules, ports with their networks, subnets
and fixed IPs, and every disk with its volume. It is stored in the instance's platform
state (`state["openstack"]`), which the snapshot's catalog document on the target and
the snapshot detail (`cairn.api.openstack_views`) carry.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.auth.acting import current_acting_user
from cairn.auth.caller import caller_token
from cairn.errors import CairnError, Conflict, Unavailable
from cairn.platforms.base import Capture, DiskInfo, DiskReader, InstanceInfo, Recorder, RestoreDisk
from cairn.platforms.libvirt import DEFAULT_URI, LibvirtPlatform
from cairn.platforms.libvirt_backup import new_member, open_capture
from cairn.platforms.libvirt_instant import InstantRestore
from cairn.platforms.openstack_instant import instant_server
from cairn.platforms.openstack_restore import check_options, make_server, prepare_volumes, remove

log = logging.getLogger(__name__)

#: the key of `InstanceView.state` (and of a snapshot instance's platform record)
STATE_KEY = "openstack"


@dataclass(frozen=True)
class OpenStackCredentials:
    """Where Keystone is and who Cairn is there (the `[keystone_authtoken]` service user)."""

    auth_url: str
    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str | None = None
    interface: str = "internal"
    cafile: str | None = None
    insecure: bool = False
    timeout: float = 30.0


@dataclass(frozen=True)
class DomainDiskSource:
    """How one disk of a domain reaches QEMU: `file`, `block` or `network` (with its
    protocol, `rbd` say), and the serial Nova gives a volume's disk (the volume id)."""

    target: str
    kind: str
    protocol: str
    serial: str
    path: str


def domain_disk_sources(xml: str) -> list[DomainDiskSource]:
    """The `<disk device='disk'>` elements of a domain as `DomainDiskSource`s."""
    root = ET.fromstring(xml)
    found = []
    for disk in root.findall("devices/disk"):
        if disk.get("device", "disk") != "disk":
            continue
        target = disk.find("target")
        source = disk.find("source")
        kind = disk.get("type", "file")
        path = ""
        protocol = ""
        if source is not None:
            path = source.get("file") or source.get("dev") or source.get("name") or ""
            protocol = source.get("protocol", "")
        found.append(DomainDiskSource(target=target.get("dev", "") if target is not None else "", kind=kind,
                                      protocol=protocol, serial=(disk.findtext("serial") or "").strip(),
                                      path=path))
    return found


def _device(name: str | None) -> str:
    """`/dev/vdb` → `vdb` (Cinder and Nova name devices with the /dev prefix)."""
    return (name or "").rsplit("/", 1)[-1]


def _backend(volume: Any) -> str:
    """A volume's Cinder backend from its host (`host@backend#pool`), else its type."""
    host = getattr(volume, "host", None) or ""
    if "@" in host:
        return host.split("@", 1)[1].split("#", 1)[0]
    return host or str(volume.volume_type or "unknown")


def check_disk_sources(name: str, server_id: str, domain_xml: str, volumes: dict[str, Any]) -> None:
    """Refuse a server whose disks do not all reach its domain as files (an RBD network
    disk, an iSCSI/FC block device), naming the disk, its volume and backend. `volumes`
    maps a volume id (the disk's serial) to its Cinder volume (`host`, `volume_type`)."""
    for source in domain_disk_sources(domain_xml):
        if source.kind == "file":
            continue
        volume = volumes.get(source.serial)
        what = f"Cinder volume {volume.id} on backend {_backend(volume)}" if volume is not None else "a disk"
        how = f"a {source.protocol} network disk" if source.kind == "network" else f"a {source.kind} device"
        raise Conflict(f"Disk {source.target} of server {name} ({server_id}) is {what}, attached as {how} "
                       f"({source.path}); Cairn reads disks that reach the instance as files (image-backed "
                       "disks, Cinder's NFS driver), not RBD or iSCSI volumes.")


class OpenStackPlatform(LibvirtPlatform):
    """Nova servers through the OpenStack APIs, their disks through this host's libvirt."""

    def __init__(self, credentials: OpenStackCredentials, uri: str = DEFAULT_URI,
                 scratch_dir: str | Path = "/var/tmp/cairn-scratch", shutdown_seconds: float = 120.0,
                 volume_mounts: tuple[str, ...] = ("/var/lib/nova/mnt", "/var/lib/cinder/mnt")) -> None:
        super().__init__(uri, scratch_dir, shutdown_seconds)
        self.credentials = credentials
        self.volume_mounts = tuple(volume_mounts)
        self._service: Any = None
        self._service_lock = threading.Lock()

    # -- sessions ----------------------------------------------------------------------

    def _verify(self) -> bool | str:
        if self.credentials.insecure:
            return False
        return self.credentials.cafile or True

    def _connection(self, auth: Any) -> Any:
        import openstack
        from keystoneauth1 import session as ks_session

        session = ks_session.Session(auth=auth, verify=self._verify(), timeout=self.credentials.timeout)
        return openstack.connection.Connection(session=session, region_name=self.credentials.region_name,
                                               interface=self.credentials.interface)

    def service_connection(self) -> Any:
        """Cairn's service user (an administrator, as OpenStack service users are): sees
        every project's servers and their admin-only attributes (host, volume host)."""
        with self._service_lock:
            if self._service is None:
                from keystoneauth1.identity import v3

                c = self.credentials
                self._service = self._connection(v3.Password(
                    auth_url=c.auth_url, username=c.username, password=c.password, project_name=c.project_name,
                    user_domain_name=c.user_domain_name, project_domain_name=c.project_domain_name))
            return self._service

    def caller_connection(self, project_id: str) -> Any | None:
        """Who acts in `project_id` as its user: the request's caller (their token scoped
        to the project), or, in a job, the user the job acts for through the workload's
        Keystone trust (`current_acting_user`, when the trust is on that project). None
        otherwise: the service user acts then."""
        token = caller_token.get()
        if not token:
            acting = current_acting_user()
            if acting is None or acting.project_id != project_id:
                return None
            import openstack

            return openstack.connection.Connection(session=acting.session, region_name=self.credentials.region_name,
                                                   interface=self.credentials.interface)
        from keystoneauth1.identity import v3

        return self._connection(v3.Token(auth_url=self.credentials.auth_url, token=token, project_id=project_id))

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """An SDK call whose failures leave as CairnErrors (NotFound as None)."""
        from keystoneauth1 import exceptions as ks_exc
        from openstack import exceptions as os_exc

        try:
            return function(*args, **kwargs)
        except os_exc.NotFoundException:
            return None
        except (os_exc.SDKException, ks_exc.ClientException) as exc:
            raise Unavailable(f"OpenStack refused {what}: {exc}") from exc

    # -- inventory ---------------------------------------------------------------------

    def _server(self, project_id: str, server_id: str) -> Any | None:
        """The server `server_id` if it is one of `project_id`'s and the caller sees it."""
        try:
            uuid.UUID(server_id)
        except ValueError:
            return None
        caller = self.caller_connection(project_id)
        if caller is not None:
            seen = self._call(f"reading server {server_id}", caller.compute.get_server, server_id)
            if seen is None or seen.project_id != project_id:
                return None
        server = self._call(f"reading server {server_id}", self.service_connection().compute.get_server, server_id)
        if server is None or server.project_id != project_id:
            return None
        return server

    def _volumes(self, server: Any) -> list[Any]:
        conn = self.service_connection()
        volumes = []
        for attached in server.attached_volumes or []:
            volume_id = attached["id"] if isinstance(attached, dict) else attached.id
            volume = self._call(f"reading volume {volume_id}", conn.block_storage.get_volume, volume_id)
            if volume is not None:
                volumes.append(volume)
        return volumes

    def _attached_device(self, volume: Any, server_id: str) -> str:
        for attachment in volume.attachments or []:
            if attachment.get("server_id") == server_id:
                return _device(attachment.get("device"))
        return ""

    def _instance(self, server: Any) -> InstanceInfo:
        """The server as Cairn sees it: its disks from the local domain when it is on this
        host, else from Nova and Cinder (sizes only: the worker of its host reads them)."""
        disks: tuple[DiskInfo, ...] = ()
        domain = None
        try:
            domain = self._lookup(server.id)
        except CairnError as exc:  # no libvirt here (an API node): the figures will do
            log.debug("no local domain for %s: %s", server.id, exc.message)
        if domain is not None:
            description, _ = self._describe(domain)
            disks = self._info(domain, description).disks
        else:
            found = []
            flavor = server.flavor or {}
            if server.image and server.image.get("id"):
                found.append(DiskInfo(path="", format="qcow2", size=int(flavor.get("disk") or 0) << 30, device="vda"))
            for volume in self._volumes(server):
                found.append(DiskInfo(path="", format="raw", size=int(volume.size or 0) << 30,
                                      device=self._attached_device(volume, server.id)))
            disks = tuple(found)
        metadata = {"platform": "openstack", "state": str(server.status or "").lower(),
                    "availability_zone": str(server.availability_zone or ""),
                    "flavor": str((server.flavor or {}).get("original_name") or ""),
                    "host": str(server.compute_host or "")}
        return InstanceInfo(id=server.id, project_id=server.project_id, name=server.name, disks=disks,
                            metadata=metadata, host=server.compute_host or None)

    def find_instances(self, project_id: str, instance_ids: list[str]) -> dict[str, InstanceInfo]:
        found: dict[str, InstanceInfo] = {}
        for instance_id in instance_ids:
            server = self._server(project_id, instance_id)
            if server is not None:
                found[server.id] = self._instance(server)
        return found

    def confirm(self, instance: InstanceInfo) -> None:
        server = self._server(instance.project_id, instance.id)
        if server is None:
            raise Conflict(f"Server {instance.name} ({instance.id}) no longer exists.")
        domain = self._lookup(instance.id)
        if domain is None:
            raise Conflict(f"Server {instance.name} ({instance.id}) runs on compute host {server.compute_host}, "
                           "not on this worker's libvirt; run a worker named after that host there.")
        self._check_disks(server, domain)
        super().confirm(instance)

    def _check_disks(self, server: Any, domain: Any) -> None:
        _, xml = self._describe(domain)
        check_disk_sources(server.name, server.id, xml, {v.id: v for v in self._volumes(server)})

    # -- what a restore needs -------------------------------------------------------------

    def describe_server(self, server: Any, domain_xml: str) -> dict[str, Any]:
        """Everything a restore through the OpenStack APIs needs of `server` (JSON)."""
        conn = self.service_connection()
        flavor = dict(server.flavor or {})
        flavor_name = flavor.get("original_name") or flavor.get("name") or ""
        # Since microversion 2.47 a server embeds its flavor's figures, not its id (the SDK
        # puts the name there): the id is the flavor of that name, if it still exists.
        flavor_id = None
        if flavor_name:
            found = self._call(f"finding flavor {flavor_name}", conn.compute.find_flavor, flavor_name,
                               ignore_missing=True)
            flavor_id = found.id if found is not None else None
        image = server.image or {}
        image_id = image.get("id") or None
        image_name = None
        if image_id:
            found_image = self._call(f"reading image {image_id}", conn.image.get_image, image_id)
            image_name = found_image.name if found_image is not None else None
        keypair = None
        if server.key_name:
            found_key = self._call(f"reading key pair {server.key_name}", conn.compute.get_keypair,
                                   server.key_name, user_id=server.user_id)
            keypair = ({"name": found_key.name, "type": found_key.type, "public_key": found_key.public_key,
                        "fingerprint": found_key.fingerprint} if found_key is not None
                       else {"name": server.key_name})
        ports = []
        group_ids: list[str] = []
        for port in self._call("listing ports", lambda: list(conn.network.ports(device_id=server.id))) or []:
            network = self._call(f"reading network {port.network_id}", conn.network.get_network, port.network_id)
            fixed = []
            for entry in port.fixed_ips or []:
                subnet = self._call(f"reading subnet {entry.get('subnet_id')}", conn.network.get_subnet,
                                    entry.get("subnet_id"))
                fixed.append({"ip_address": entry.get("ip_address"),
                              "subnet": None if subnet is None else {
                                  "id": subnet.id, "name": subnet.name, "cidr": subnet.cidr,
                                  "ip_version": subnet.ip_version, "gateway_ip": subnet.gateway_ip,
                                  "enable_dhcp": subnet.is_dhcp_enabled}})
            for group_id in port.security_group_ids or []:
                if group_id not in group_ids:
                    group_ids.append(group_id)
            ports.append({"id": port.id, "name": port.name, "mac_address": port.mac_address,
                          "fixed_ips": fixed, "security_group_ids": list(port.security_group_ids or []),
                          "network": None if network is None else {
                              "id": network.id, "name": network.name, "mtu": network.mtu,
                              "network_type": network.provider_network_type,
                              "shared": network.is_shared}})
        groups = []
        for group_id in group_ids:
            group = self._call(f"reading security group {group_id}", conn.network.get_security_group, group_id)
            if group is None:
                continue
            groups.append({"id": group.id, "name": group.name, "description": group.description,
                           "rules": [{"direction": r.get("direction"), "ethertype": r.get("ethertype"),
                                      "protocol": r.get("protocol"), "port_range_min": r.get("port_range_min"),
                                      "port_range_max": r.get("port_range_max"),
                                      "remote_ip_prefix": r.get("remote_ip_prefix"),
                                      "remote_group_id": r.get("remote_group_id")}
                                     for r in group.security_group_rules or []]})
        if not groups:  # a server without ports: Nova's own list of names
            groups = [{"id": None, "name": g.get("name"), "description": None, "rules": []}
                      for g in server.security_groups or []]
        by_serial = {s.serial: s for s in domain_disk_sources(domain_xml) if s.serial}
        sources = {s.target: s for s in domain_disk_sources(domain_xml)}
        disks: list[dict[str, Any]] = []
        volume_devices = set()
        for volume in self._volumes(server):
            device = self._attached_device(volume, server.id)
            source = by_serial.get(volume.id) or sources.get(device)
            device = source.target if source is not None else device
            volume_devices.add(device)
            disks.append({"device": device, "kind": "volume", "path": source.path if source else "",
                          "boot": bool(volume.is_bootable) and device == "vda" and not image_id,
                          "size": int(volume.size or 0) << 30,
                          "volume": {"id": volume.id, "name": volume.name, "size": volume.size,
                                     "volume_type": volume.volume_type, "bootable": bool(volume.is_bootable),
                                     "availability_zone": volume.availability_zone,
                                     "backend": _backend(volume), "metadata": dict(volume.metadata or {})}})
        for target, source in sources.items():
            if target in volume_devices:
                continue
            kind = "root" if target == "vda" else "ephemeral"
            disks.append({"device": target, "kind": kind, "path": source.path, "boot": kind == "root",
                          "size": (int(flavor.get("disk") or 0) << 30) if kind == "root" else 0, "volume": None})
        disks.sort(key=lambda d: str(d["device"]))
        return {
            "server": {"id": server.id, "name": server.name, "status": server.status,
                       "project_id": server.project_id, "user_id": server.user_id,
                       "host": server.compute_host, "availability_zone": server.availability_zone,
                       "key_name": server.key_name, "metadata": dict(server.metadata or {}),
                       "config_drive": server.has_config_drive},
            "flavor": {"id": flavor_id, "name": flavor_name, "vcpus": flavor.get("vcpus"), "ram": flavor.get("ram"),
                       "disk": flavor.get("disk"), "ephemeral": flavor.get("ephemeral"), "swap": flavor.get("swap"),
                       "extra_specs": dict(flavor.get("extra_specs") or {})},
            "image": None if not image_id else {"id": image_id, "name": image_name},
            "keypair": keypair,
            "security_groups": groups,
            "ports": ports,
            "disks": disks,
        }

    # -- snapshots -----------------------------------------------------------------------

    def capture(self, instances: list[InstanceInfo], parents: dict[str, dict[str, Any]], label: str) -> Capture:
        import os

        os.makedirs(self.scratch_dir, exist_ok=True)
        members = []
        for instance in instances:
            server = self._server(instance.project_id, instance.id)
            if server is None:
                raise Conflict(f"Server {instance.name} ({instance.id}) no longer exists.")
            domain = self._lookup(instance.id)
            if domain is None:
                raise Conflict(f"Server {instance.name} ({instance.id}) is not on this worker's libvirt.")
            self._check_disks(server, domain)
            description, xml = self._describe(domain)
            try:
                inactive = domain.XMLDesc(self.libvirt.VIR_DOMAIN_XML_INACTIVE)
            except self.libvirt.libvirtError as exc:
                raise self._error(exc, f"reading the description of {instance.name}") from exc
            local = self._info(domain, description)
            info = InstanceInfo(id=instance.id, project_id=instance.project_id, name=server.name,
                                disks=local.disks, metadata=self._instance(server).metadata,
                                host=server.compute_host or None)
            member = new_member(domain, info, description, inactive, parents.get(instance.id))
            member.state[STATE_KEY] = self.describe_server(server, xml)
            members.append(member)
        try:
            return open_capture(self.libvirt, members, self.scratch_dir, label)
        except self.libvirt.libvirtError as exc:
            raise self._error(exc, "capturing the servers") from exc

    # -- restores (through the OpenStack APIs: `openstack_restore`) -------------------------

    def project_connection(self, project_id: str) -> Any:
        """A connection that acts in `project_id` as a user of it: the caller's token in a
        request, the workload's trust in a job. The service user cannot: what Cinder,
        Nova and Neutron create belongs to the project of the token."""
        connection = self.caller_connection(project_id)
        if connection is None:
            raise Conflict(f"Restoring OpenStack servers creates volumes, ports and servers in project "
                           f"{project_id} as its user, through the workload's Keystone trust, and this job acts "
                           "for nobody there: the workload has no trust (create or modify it with a Keystone "
                           "token of the project, with [trustee] enabled).")
        return connection

    def check_restore(self, project_id: str, restore_type: str, options: dict[str, Any],
                      instances: list[tuple[str, dict[str, Any]]]) -> None:
        if restore_type == "inplace":
            return
        connection = self.caller_connection(project_id) or self.service_connection()
        check_options(connection, self._call, options, instances)

    def prepare_disks(self, project_id: str, instance_id: str, state: dict[str, Any], disks: list[RestoreDisk],
                      options: dict[str, Any], label: str, record: Recorder) -> list[RestoreDisk]:
        described = state.get(STATE_KEY)
        if not described:
            raise Conflict(f"The snapshot keeps no OpenStack description of server {instance_id}.")
        return prepare_volumes(self.project_connection(project_id), self._call, project_id, instance_id,
                               described, disks, options, label, record, self.volume_mounts)

    def restore_instance(self, project_id: str, name: str, disks: list[tuple[str, str, str]],
                         state: dict[str, Any], label: str, host: str | None,
                         options: dict[str, Any] | None = None, record: Recorder | None = None) -> InstanceInfo:
        """A new Nova server booted from the restored volumes (`make_server`)."""
        described = state.get(STATE_KEY)
        if not described:
            raise Conflict(f"The snapshot keeps no OpenStack description of server {name}.")
        made = make_server(self.project_connection(project_id), self._call, project_id, name,
                           [d for d in disks if d[1]], described, options or {}, label, record)
        server = self._call(f"reading server {made.id}", self.service_connection().compute.get_server, made.id)
        host_name = (server.compute_host if server is not None else None) or None
        return InstanceInfo(id=made.id, project_id=project_id, name=made.name, disks=(),
                            metadata={"platform": "openstack", "state": "active"}, host=host_name)

    def remove_created(self, resource: dict[str, Any]) -> None:
        remove(self.service_connection(), self._call, resource)

    def instant_restore_instance(self, project_id: str, name: str, disks: list[tuple[str, str, DiskReader]],
                                 state: dict[str, Any], label: str, host: str | None, options: dict[str, Any],
                                 record: Recorder) -> InstantRestore:
        """A new Nova server booted from volumes that read through to the snapshot, served
        from this compute host (`openstack_instant`)."""
        described = state.get(STATE_KEY)
        if not described:
            raise Conflict(f"The snapshot keeps no OpenStack description of server {name}.")
        return instant_server(self.project_connection(project_id), self._call, self.libvirt, self._lookup,
                              project_id, name, disks, described, options, label, record, self.volume_mounts,
                              str(self.scratch_dir), host)

    def check_inplace(self, instance: InstanceInfo, options: dict[str, Any]) -> None:
        server = self._server(instance.project_id, instance.id)
        if server is None:
            raise Conflict(f"Server {instance.id} no longer exists; restore it with 'oneclick' or 'selective' "
                           "instead.")
        if server.status not in ("ACTIVE", "SHUTOFF"):
            raise Conflict(f"Server {server.name} is {server.status}; an in-place restore stops an ACTIVE server "
                           "or writes a SHUTOFF one.")

    @contextmanager
    def inplace_window(self, instance: InstanceInfo, options: dict[str, Any]) -> Iterator[None]:
        """Stop the server through Nova if it runs, let its disks be written on this host
        (its compute host), drop Cairn's checkpoints (the new files hold no bitmap: Nova
        could not redefine the domain otherwise), start it through Nova if it ran."""
        self.check_inplace(instance, options)
        connection = self.caller_connection(instance.project_id) or self.service_connection()
        server = self._call(f"reading server {instance.id}", connection.compute.get_server, instance.id)
        was_running = server.status == "ACTIVE"
        if was_running:
            self._call(f"stopping server {server.name}", connection.compute.stop_server, server.id)
            self._wait_status(connection, server, "SHUTOFF")
        yield
        domain = self._lookup(instance.id)
        if domain is not None:
            self._drop_checkpoints(domain)
        if was_running:
            self._call(f"starting server {server.name}", connection.compute.start_server, server.id)
            self._wait_status(connection, server, "ACTIVE")

    def _wait_status(self, connection: Any, server: Any, status: str) -> None:
        deadline = time.monotonic() + max(self.shutdown_seconds, 60.0) + 300.0
        while True:
            current = self._call(f"reading server {server.id}", connection.compute.get_server, server.id)
            if current is None:
                raise Conflict(f"Server {server.name} ({server.id}) was deleted during its in-place restore.")
            if current.status == status and not current.task_state:
                return
            if current.status == "ERROR" or time.monotonic() > deadline:
                raise Unavailable(f"Server {server.name} did not become {status} (it is {current.status}).")
            time.sleep(0.5)


__all__ = ["OpenStackCredentials", "OpenStackPlatform", "STATE_KEY", "check_disk_sources", "domain_disk_sources"]
