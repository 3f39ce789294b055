"""Instant restore of Nova servers: the restored server boots through Nova from new
Cinder volumes that read through to the snapshot, and the data is copied into them
while it runs.

Per restored disk, once `prepare_volumes` has made its volume (a qcow2 file on the
share: Cinder's NFS driver with `nfs_qcow2_volumes = True`), the worker on the original
server's compute host lays out:

    volume-<id>                      the volume's own file, replaced by an empty qcow2
    │                                of Cinder's size whose backing file is
    └─ volume-<id>.<restore id>      an empty qcow2 whose backing is
       └─ nbd+unix:///?socket=…      the snapshot's disk, served read-only by this worker
                                     (`nbd_server.NbdServer`)

Why the middle file: at attach time Cinder's NFS driver accepts a volume file only if
its backing file is named `volume-<id>.<hex digits and dashes>` beside it (the form of
its own snapshots), and refuses any other backing; the export is reached through a file
of that name. Nova then boots the server from the volumes as from any others, and
QEMU's block-stream job (`virDomainBlockPull` on the server's domain here) copies every
cluster of the chain into the volume file while the guest runs. When it completes, the
volume file has no backing file in its header, the middle file is removed, and Cinder
finds the plain qcow2 volume it made.

A raw volume file cannot have a backing file: such a restore is refused before the
server is made (restore without `instant`). The new server must land on this compute
host (QEMU reaches the export through a Unix socket): Nova boots it elsewhere only in a
cloud of several hosts, and it then fails to start there (the restore fails, and its
clean-up deletes what it made). A copy that stops (the target went away: reads fail
with EIO, never zeros) fails the restore; its clean-up job deletes the server, ports,
volumes and middle files it recorded.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from cairn.engine.qemu import run_tool
from cairn.errors import Conflict
from cairn.platforms.base import DiskReader, InstanceInfo, Recorder, RestoreDisk
from cairn.platforms.libvirt_instant import ExportedDisk, InstantRestore, start_exports
from cairn.platforms.openstack_restore import FILE_KIND, RESOURCE_KEY, make_server, prepare_volumes


def middle_file(volume_path: str, label: str) -> str:
    """The file between a volume's file and the export (`volume-<id>.<restore id>`)."""
    return f"{volume_path}.{label}"


def _replace_with_overlay(volume_path: str, backing: str, size: int) -> None:
    """Replace the volume's file by an empty qcow2 of `size` bytes over `backing` (beside
    it, named relatively): Cinder made it with preallocated metadata, which would hide
    any backing file."""
    fresh = os.path.join(os.path.dirname(volume_path), f".{os.path.basename(volume_path)}.cairn-overlay")
    run_tool(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", os.path.basename(backing), "-u",
              fresh, str(size)], f"creating the overlay of {volume_path}")
    os.rename(fresh, volume_path)


def domain_devices(domain_xml: str) -> dict[str, str]:
    """file name of each disk's top image → its device in the domain (`vda`)."""
    found = {}
    for disk in ET.fromstring(domain_xml).iterfind("devices/disk"):
        source, target = disk.find("source"), disk.find("target")
        if source is not None and target is not None and source.get("file"):
            found[os.path.basename(source.get("file", ""))] = target.get("dev", "")
    return found


class ServerInstantRestore(InstantRestore):
    """A restored Nova server running on volumes that read through to the snapshot.

    Nova owns the server: a copy that cannot complete leaves it to the restore's
    clean-up job (which deletes it through Nova with the rest of what was recorded)
    instead of removing a domain behind Nova's back."""

    def close(self) -> None:
        super().close()
        for disk in self.disks:
            try:
                os.unlink(disk.overlay)
            except FileNotFoundError:
                pass

    def abandon(self) -> None:
        self.stop_copy()
        super().close()  # the exports; the middle files go with the clean-up


def instant_server(conn: Any, call: Callable[..., Any], libvirt: Any, lookup: Callable[[str], Any],
                   project_id: str, name: str, disks: list[tuple[str, str, DiskReader]], described: dict[str, Any],
                   options: dict[str, Any], label: str, record: Recorder, mounts: tuple[str, ...],
                   socket_dir: str, host: str | None) -> ServerInstantRestore:
    """Make the volumes, lay out each over its export (see the module's docstring) and
    boot the server through Nova; the handle's `start_copy()` copies the data in."""
    original = described.get("server") or {}
    readers = {device: reader for device, _planned, reader in disks}
    wanted = [RestoreDisk(device, reader.size, "", "qcow2", creates_file=False) for device, _p, reader in disks]
    volumes = [v for v in prepare_volumes(conn, call, project_id, str(original.get("id") or ""), described, wanted,
                                          options, label, record, mounts) if v.path]
    for volume in volumes:
        if volume.format != "qcow2":
            raise Conflict(f"Volume file {volume.path} is {volume.format}: an instant restore needs qcow2 volume "
                           "files, which can read through to the snapshot (Cinder's nfs_qcow2_volumes = True). "
                           "Restore without 'instant'.")
    record([{RESOURCE_KEY: FILE_KIND, "project_id": project_id, "restore": label, "path": middle_file(v.path, label)}
            for v in volumes])
    exports = start_exports([(v.device, middle_file(v.path, label), readers[v.device]) for v in volumes],
                            socket_dir, label)
    try:
        for volume, export in zip(volumes, exports, strict=True):
            _replace_with_overlay(volume.path, export.overlay, volume.size)
        made = make_server(conn, call, project_id, name, [(v.device, v.path, v.format) for v in volumes],
                           described, options, label, record)
        domain = lookup(made.id)
        if domain is None:
            raise Conflict(f"Restored server {made.name} ({made.id}) is not on this compute host, which serves its "
                           "snapshot: an instant restore needs the new server on the original server's host.")
        devices = domain_devices(domain.XMLDesc(0))
        exported = []
        for volume, export in zip(volumes, exports, strict=True):
            device = devices.get(os.path.basename(volume.path))
            if device is None:
                raise Conflict(f"Restored server {made.name} has no disk on volume file {volume.path}.")
            exported.append(ExportedDisk(device, export.overlay, export.server, export.size))
        info = InstanceInfo(id=made.id, project_id=project_id, name=made.name, disks=(),
                            metadata={"platform": "openstack", "state": "active"}, host=host)
        return ServerInstantRestore(libvirt, domain, info, exported)
    except BaseException:
        for export in exports:
            export.server.close()
        raise
