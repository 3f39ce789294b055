"""Restores of Nova servers through the OpenStack APIs (never a domain behind Nova's back).

What a restore makes, in the workload's project (acting for its user through the
workload's Keystone trust, or with the caller's token in a request):

- **volumes** (`prepare_volumes`): one new Cinder volume per restored disk, of the
  original volume's size and type (or `vdisks[].new_volume_type`); an image-backed root
  disk comes back as a bootable volume of the flavor's disk size, so the new server boots
  from a volume that holds the data (no Glance image is uploaded). The disk is then
  written into the volume's file on the share (`volume-<id>` under the host's mount of
  Cinder's file share, `openstack_volume_mounts`) in the format Cinder made it in: qcow2
  (the NFS driver's `nfs_qcow2_volumes = True`, which gives live incrementals their
  dirty bitmaps) or raw.
- **ports** and a **server** (`make_server`): a new port on each original network (or the
  one `networks_mapping` names), with the original security groups, and a server with
  the original flavor (or the one asked for), key pair, metadata and availability zone
  that boots from the restored root volume and has the other volumes attached.

Each resource is recorded in the restore's job row (`Recorder`) before it is made (by
name and the restore's mark: the volume's metadata `cairn_restore_id`, the server's tag
`cairn-restore-<restore id>`, the port's name), and again with its id once it exists;
`remove` deletes one of them for the clean-up job, with Cairn's service user.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from cairn.engine.qemu import run_tool
from cairn.errors import Conflict, InvalidInput, Unavailable
from cairn.platforms.base import Recorder, RestoreDisk
from cairn.platforms.disk_probe import probe_disk

log = logging.getLogger(__name__)

GiB = 1 << 30
#: the destination key of what a restore made (`cairn.workloads.cleanup.PLATFORM_KEY`)
RESOURCE_KEY = "openstack"
#: a file on the share an instant restore put between a volume and the snapshot
#: (openstack_instant.py), `volume-<id>.<restore id>`
FILE_KIND = "file"
VOLUME_MARK = "cairn_restore_id"
TAG_PREFIX = "cairn-restore-"
#: how long a volume may take to become available, a server ACTIVE or gone
WAIT_SECONDS = 600.0

INSTANCES_FIELD = "restore.options.openstack.instances"
NETWORKS_FIELD = "restore.options.openstack.networks_mapping.networks"

Call = Callable[..., Any]


def server_tag(label: str) -> str:
    return f"{TAG_PREFIX}{label}"


def instance_options(options: dict[str, Any], instance_id: str) -> dict[str, Any]:
    """The `openstack.instances[]` entry of the restore for `instance_id` ({} if none)."""
    for entry in (options.get("openstack") or {}).get("instances") or []:
        if isinstance(entry, dict) and entry.get("id") == instance_id:
            return entry
    return {}


def disk_options(entry: dict[str, Any], volume_id: str | None) -> dict[str, Any]:
    """The `vdisks[]` entry of an instance's options for the volume `volume_id`."""
    for disk in entry.get("vdisks") or []:
        if isinstance(disk, dict) and volume_id and disk.get("id") == volume_id:
            return disk
    return {}


def _ref(value: Any) -> str | None:
    """An id from Trilio's forms: a string, or an object with `id` (or `name`)."""
    if isinstance(value, dict):
        value = value.get("id") or value.get("name")
    return str(value) if value else None


def network_mapping(options: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """snapshot network id → (target network id, target subnet id or None)."""
    mapping: dict[str, tuple[str, str | None]] = {}
    networks = ((options.get("openstack") or {}).get("networks_mapping") or {}).get("networks") or []
    for entry in networks:
        if not isinstance(entry, dict):
            continue
        source = _ref(entry.get("snapshot_network"))
        target = entry.get("target_network") or {}
        target_id = _ref(target)
        if not source or not target_id:
            raise InvalidInput(f"{NETWORKS_FIELD}: each mapping names a snapshot_network and a target_network "
                               "by id.", NETWORKS_FIELD)
        subnet = _ref(target.get("subnet")) if isinstance(target, dict) else None
        mapping[source] = (target_id, subnet)
    return mapping


def check_options(conn: Any, call: Call, options: dict[str, Any],
                  instances: list[tuple[str, dict[str, Any]]]) -> None:
    """InvalidInput naming the field when the options name a network, subnet, flavor or
    volume type `conn` (the caller's view of the project) does not find."""
    for target_id, subnet_id in network_mapping(options).values():
        network = call(f"reading network {target_id}", conn.network.get_network, target_id)
        if network is None:
            raise InvalidInput(f"{NETWORKS_FIELD}.target_network: network {target_id} could not be found.",
                               f"{NETWORKS_FIELD}.target_network")
        if subnet_id:
            subnet = call(f"reading subnet {subnet_id}", conn.network.get_subnet, subnet_id)
            if subnet is None or subnet.network_id != network.id:
                raise InvalidInput(f"{NETWORKS_FIELD}.target_network.subnet: subnet {subnet_id} of network "
                                   f"{target_id} could not be found.", f"{NETWORKS_FIELD}.target_network.subnet")
    for instance_id, _state in instances:
        entry = instance_options(options, instance_id)
        flavor_ref = _ref(entry.get("flavor"))
        if flavor_ref and call(f"finding flavor {flavor_ref}", conn.compute.find_flavor, flavor_ref,
                               ignore_missing=True) is None:
            raise InvalidInput(f"{INSTANCES_FIELD}.flavor: flavor {flavor_ref} could not be found.",
                               f"{INSTANCES_FIELD}.flavor")
        for disk in entry.get("vdisks") or []:
            wanted = disk.get("new_volume_type") if isinstance(disk, dict) else None
            if wanted and call(f"finding volume type {wanted}", conn.block_storage.find_type, wanted,
                               ignore_missing=True) is None:
                raise InvalidInput(f"{INSTANCES_FIELD}.vdisks.new_volume_type: volume type {wanted} could not "
                                   "be found.", f"{INSTANCES_FIELD}.vdisks.new_volume_type")


def _wait(what: str, poll: Callable[[], Any], done: Callable[[Any], bool], failed: Callable[[Any], str | None],
          timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        current = poll()
        if done(current):
            return current
        problem = failed(current)
        if problem:
            raise Unavailable(f"{what}: {problem}")
        if time.monotonic() > deadline:
            raise Unavailable(f"{what}: still not done after {timeout:.0f} s.")
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def volume_file(volume_id: str, mounts: tuple[str, ...]) -> str:
    """The file of a volume of a file-share driver on this host (`volume-<id>`)."""
    name = f"volume-{volume_id}"
    for base in mounts:
        for candidate in (os.path.join(base, name), *sorted(glob.glob(os.path.join(glob.escape(base), "*", name)))):
            if os.path.isfile(candidate):
                return candidate
    raise Conflict(f"Volume {volume_id} has no file {name} under {', '.join(mounts) or 'no directory'} on this "
                   "host: restores write volumes of file-share drivers (Cinder's NFS driver) where this host "
                   "mounts the share (openstack_volume_mounts).")


def prepare_volumes(conn: Any, call: Call, project_id: str, instance_id: str, described: dict[str, Any],
                    disks: list[RestoreDisk], options: dict[str, Any], label: str, record: Recorder,
                    mounts: tuple[str, ...]) -> list[RestoreDisk]:
    """A new volume per disk (see the module's docstring); the disks as written there.
    A root disk left out with `restore_boot_disk: false` (the server boots from its image
    then) comes back with no path: it is not written."""
    entry = instance_options(options, instance_id)
    by_device = {str(d.get("device")): d for d in described.get("disks") or []}
    server_name = (described.get("server") or {}).get("name") or instance_id
    image = described.get("image")
    prepared = []
    for disk in disks:
        kept = by_device.get(disk.device) or {}
        volume = kept.get("volume") or {}
        is_root = bool(kept.get("boot")) or disk.device == "vda"
        if is_root and not volume and image and entry.get("restore_boot_disk") is False:
            prepared.append(RestoreDisk(disk.device, disk.size, "", "raw", creates_file=False))
            continue
        chosen = disk_options(entry, volume.get("id"))
        size = int(volume.get("size") or 0) or max(1, math.ceil(disk.size / GiB))
        name = f"{volume.get('name') or f'{server_name}-{disk.device}'}-restore-{label[:8]}"
        resource = {RESOURCE_KEY: "volume", "project_id": project_id, "restore": label, "name": name}
        record([resource])
        attrs: dict[str, Any] = {"name": name, "size": size,
                                 "metadata": {**(volume.get("metadata") or {}), VOLUME_MARK: label}}
        volume_type = chosen.get("new_volume_type") or volume.get("volume_type")
        if volume_type:
            attrs["volume_type"] = volume_type
        zone = chosen.get("availability_zone") or volume.get("availability_zone")
        if zone:
            attrs["availability_zone"] = zone
        made = call(f"creating volume {name}", conn.block_storage.create_volume, **attrs)
        if made is None:
            raise Unavailable(f"Cinder did not create volume {name}.")
        record([{**resource, "id": made.id}])
        _wait(f"Volume {name} ({made.id})", partial(conn.block_storage.get_volume, made.id),
              lambda v: v.status == "available", lambda v: f"its status is {v.status}" if "error" in v.status else None)
        if is_root:
            call(f"making volume {made.id} bootable", conn.block_storage.set_volume_bootable_status, made.id, True)
        path = volume_file(made.id, mounts)
        volume_format, _ = probe_disk(path)
        prepared.append(RestoreDisk(disk.device, size * GiB, path, volume_format, creates_file=False))
    return prepared


def grow_volume_file(path: str, volume_format: str, size: int) -> None:
    """Make the disk in a restored volume's file `size` bytes (Cinder's size) when the
    snapshot's disk was smaller: an image-backed root disk comes back in a volume of
    whole GiB. A raw file is extended (sparse), a qcow2 image resized."""
    if volume_format == "qcow2":
        _, virtual = probe_disk(path)
        if virtual < size:
            run_tool(["qemu-img", "resize", "-q", "-f", "qcow2", path, str(size)], f"resizing {path}")
    elif os.path.getsize(path) < size:
        os.truncate(path, size)


def _volume_id(path: str) -> str:
    name = os.path.basename(path)
    if not name.startswith("volume-"):
        raise Conflict(f"{path} is not the file of a restored volume.")
    return name[len("volume-"):]


def existing_server(conn: Any, call: Call, name: str, label: str) -> Any | None:
    """The server an earlier call of this restore made under `name` (a retried call)."""
    found = call("listing servers", lambda: list(conn.compute.servers(tags=server_tag(label), name=name)))
    return next((s for s in found or [] if s.name == name), None)


def _flavor(conn: Any, call: Call, entry: dict[str, Any], described: dict[str, Any]) -> str:
    flavor = described.get("flavor") or {}
    ref = _ref(entry.get("flavor")) or flavor.get("id") or flavor.get("name")
    found = call(f"finding flavor {ref}", conn.compute.find_flavor, ref, ignore_missing=True) if ref else None
    if found is None:
        raise Conflict(f"Flavor {ref or flavor.get('name')} of the snapshot no longer exists; restore with "
                       f"'selective' and name another ({INSTANCES_FIELD}.flavor).")
    return str(found.id)


def _groups(conn: Any, call: Call, port: dict[str, Any], described: dict[str, Any]) -> list[str]:
    """The port's original security groups that the project still has (by id, else name)."""
    names = {g.get("id"): g.get("name") for g in described.get("security_groups") or []}
    found = []
    for group_id in port.get("security_group_ids") or []:
        group = call(f"reading security group {group_id}", conn.network.get_security_group, group_id)
        if group is None and names.get(group_id):
            group = call(f"finding security group {names[group_id]}", conn.network.find_security_group,
                         names[group_id], ignore_missing=True)
        if group is not None:
            found.append(str(group.id))
        else:
            log.warning("security group %s of the snapshot no longer exists: the restored port goes without it",
                        group_id)
    return found


def make_server(conn: Any, call: Call, project_id: str, name: str, disks: list[tuple[str, str, str]],
                described: dict[str, Any], options: dict[str, Any], label: str, record: Recorder | None) -> Any:
    """The ports and the server of a restore (see the module's docstring); the server,
    ACTIVE. Called again for the same restore and name, it returns the first call's."""
    original = described.get("server") or {}
    server = existing_server(conn, call, name, label)
    if server is not None:
        return server
    note: Recorder = record or (lambda _more: None)
    entry = instance_options(options, str(original.get("id")))
    flavor_id = _flavor(conn, call, entry, described)
    for _device, path, volume_format in disks:  # Cinder's size, whatever the disk's virtual size was
        volume = call(f"reading volume {_volume_id(path)}", conn.block_storage.get_volume, _volume_id(path))
        if volume is not None:
            grow_volume_file(path, volume_format, int(volume.size) * GiB)
    mapping = network_mapping(options)
    ports = []
    for index, port in enumerate(described.get("ports") or []):
        network = port.get("network") or {}
        target, subnet = mapping.get(str(network.get("id")), (str(network.get("id")), None))
        attrs: dict[str, Any] = {"network_id": target, "name": f"{TAG_PREFIX}{label[:8]}-{name}-{index}",
                                 "security_group_ids": _groups(conn, call, port, described)}
        if subnet:
            attrs["fixed_ips"] = [{"subnet_id": subnet}]
        resource = {RESOURCE_KEY: "port", "project_id": project_id, "restore": label, "name": attrs["name"]}
        note([resource])
        made = call(f"creating a port on network {target}", conn.network.create_port, **attrs)
        if made is None:
            raise Conflict(f"Network {target} no longer exists; map it to another ({NETWORKS_FIELD}).")
        note([{**resource, "id": made.id}])
        ports.append(made.id)
    mappings = []
    for device, path, _format in sorted(disks):
        boot = device == "vda"
        mappings.append({"uuid": _volume_id(path), "source_type": "volume", "destination_type": "volume",
                         "boot_index": 0 if boot else -1, "delete_on_termination": False})
    attrs = {"name": name, "flavor_id": flavor_id, "metadata": dict(original.get("metadata") or {}),
             "networks": [{"port": p} for p in ports] or "none", "block_device_mapping": mappings,
             "tags": [server_tag(label)]}
    if not any(m["boot_index"] == 0 for m in mappings):
        image = described.get("image") or {}
        if not image.get("id"):
            raise Conflict(f"Server {original.get('name')} has no root disk in the restore and no image to boot.")
        attrs["image_id"] = image["id"]
        # with a block device mapping, Nova wants the image's own entry as the boot device
        mappings.insert(0, {"uuid": image["id"], "source_type": "image", "destination_type": "local",
                            "boot_index": 0, "delete_on_termination": True})
    zone = entry.get("availability_zone") or original.get("availability_zone")
    if zone:
        attrs["availability_zone"] = zone
    key_name = original.get("key_name")
    if key_name and call(f"reading key pair {key_name}", conn.compute.find_keypair, key_name,
                         ignore_missing=True) is not None:
        attrs["key_name"] = key_name
    elif key_name:
        log.warning("key pair %s of server %s no longer exists: the restored server has none", key_name, name)
    resource = {RESOURCE_KEY: "server", "project_id": project_id, "restore": label, "name": name}
    note([resource])
    made = call(f"creating server {name}", conn.compute.create_server, **attrs)
    note([{**resource, "id": made.id}])
    return _wait(f"Restored server {name} ({made.id})", lambda: conn.compute.get_server(made.id),
                 lambda s: s.status == "ACTIVE",
                 lambda s: f"Nova set it {s.status}: {(s.fault or {}).get('message', '')}".strip()
                 if s.status == "ERROR" else None)


def remove(conn: Any, call: Call, resource: dict[str, Any]) -> None:
    """Delete one resource a restore recorded, with the service user; gone is fine."""
    kind = resource.get(RESOURCE_KEY)
    project_id = resource.get("project_id")
    label = str(resource.get("restore") or "")
    name = resource.get("name")
    if kind == "server":
        ids = [resource["id"]] if resource.get("id") else [
            s.id for s in call("listing servers", lambda: list(conn.compute.servers(
                all_projects=True, project_id=project_id, tags=server_tag(label)))) or [] if s.name == name]
        for server_id in ids:
            call(f"deleting server {server_id}", conn.compute.delete_server, server_id)
            _wait(f"Deleting server {server_id}", partial(call, f"reading server {server_id}",
                                                          conn.compute.get_server, server_id), lambda s: s is None,
                lambda s: None, timeout=300)
    elif kind == "port":
        ids = [resource["id"]] if resource.get("id") else [
            p.id for p in call("listing ports", lambda: list(conn.network.ports(name=name, project_id=project_id)))
            or []]
        for port_id in ids:
            call(f"deleting port {port_id}", conn.network.delete_port, port_id, ignore_missing=True)
    elif kind == "volume":
        ids = [resource["id"]] if resource.get("id") else [
            v.id for v in call("listing volumes", lambda: list(conn.block_storage.volumes(
                all_projects=True, project_id=project_id, name=name))) or []
            if (v.metadata or {}).get(VOLUME_MARK) == label]
        for volume_id in ids:
            read = partial(call, f"reading volume {volume_id}", conn.block_storage.get_volume, volume_id)
            volume = _wait(f"Volume {volume_id} settling", read,
                lambda v: v is None or v.status in ("available", "error", "in-use", "error_deleting"),
                lambda v: None, timeout=300)
            if volume is None:
                continue
            if volume.status == "in-use":  # its server is gone (deleted first): Nova detaches it
                volume = _wait(f"Volume {volume_id} detaching", read,
                    lambda v: v is None or v.status != "in-use", lambda v: None, timeout=120)
            if volume is not None:
                call(f"deleting volume {volume_id}", conn.block_storage.delete_volume, volume_id, force=True)
    elif kind == FILE_KIND:
        path = str(resource.get("path") or "")
        name = os.path.basename(path)
        if not (name.startswith("volume-") and label and name.endswith(f".{label}")):
            raise Conflict(f"Refusing to remove {path!r}: not a file an instant restore {label} made.")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise Unavailable(f"removing {path}: {exc.strerror}") from exc
    else:
        raise Conflict(f"Unknown OpenStack resource {resource!r}.")
