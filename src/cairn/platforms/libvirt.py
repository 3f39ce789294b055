"""The `libvirt` platform: the domains of a KVM host are the instances.

An instance id is the domain's UUID; its name, disks (file and block sources, raw and
qcow2), vCPUs, memory and NICs come from the domain XML (`libvirt_domain`), its disk
sizes from `virDomainGetBlockInfo`. Which project a domain belongs to is in its
metadata (`libvirt_domain`): Nova's owner element, or Cairn's, written by `cairn
instance adopt`. Snapshots read the disks through `libvirt_backup`; restores write
files and define domains here.

The binding is Debian's python3-libvirt, loaded with `cairn.system_python`; every
libvirt error leaves as a `CairnError` (`Unavailable` when libvirt cannot be reached,
`NotFound`/`Conflict` where the domain's state or a name is the cause).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cairn.errors import CairnError, Conflict, NotFound, Unavailable
from cairn.platforms.base import Capture, DiskInfo, DiskReader, InstanceInfo, NoCloudResources, Recorder
from cairn.platforms.libvirt_backup import CHECKPOINT_PREFIX, delete_checkpoint, new_member, open_capture
from cairn.platforms.libvirt_domain import (
    OWNER_NS,
    OWNER_PREFIX,
    DomainDescription,
    beside,
    describe,
    owner_element,
    restored_domain_xml,
)
from cairn.platforms.libvirt_instant import InstantRestore, start_exports
from cairn.system_python import import_system_modules

log = logging.getLogger(__name__)

DEFAULT_URI = "qemu:///system"


def import_libvirt() -> Any:
    try:
        module = import_system_modules(("libvirtmod", "libvirt"))
    except (ImportError, OSError) as exc:
        raise Unavailable(f"libvirt's Python binding is not installed (python3-libvirt): {exc}") from exc
    # libvirt prints every error on stderr unless a handler takes them; they are raised anyway.
    module.registerErrorHandler(lambda _ctx, _err: None, None)
    return module


class LibvirtPlatform(NoCloudResources):
    """Platform driver over the domains of one libvirt connection."""

    def __init__(self, uri: str = DEFAULT_URI, scratch_dir: str | Path = "/var/tmp/cairn-scratch",
                 shutdown_seconds: float = 120.0) -> None:
        self.uri = uri
        self.scratch_dir = str(scratch_dir)
        self.shutdown_seconds = shutdown_seconds
        self.libvirt = import_libvirt()
        self._conn: Any = None
        self._lock = threading.Lock()

    # -- connection and lookup ---------------------------------------------------------

    def connection(self) -> Any:
        with self._lock:
            if self._conn is not None:
                try:
                    if self._conn.isAlive():
                        return self._conn
                except self.libvirt.libvirtError:
                    pass
            try:
                self._conn = self.libvirt.open(self.uri)
            except self.libvirt.libvirtError as exc:
                raise Unavailable(f"libvirt at {self.uri} cannot be reached: {exc.get_error_message()}") from exc
            return self._conn

    def _error(self, exc: Any, what: str) -> CairnError:
        return Unavailable(f"{what}: {exc.get_error_message()}")

    def _lookup(self, id_or_name: str) -> Any | None:
        conn = self.connection()
        try:
            try:
                uuid.UUID(id_or_name)
                return conn.lookupByUUIDString(id_or_name)
            except ValueError:
                return conn.lookupByName(id_or_name)
        except self.libvirt.libvirtError as exc:
            if exc.get_error_code() == self.libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise self._error(exc, f"looking up domain {id_or_name}") from exc

    def _describe(self, domain: Any) -> tuple[DomainDescription, str]:
        try:
            xml = domain.XMLDesc(0)
        except self.libvirt.libvirtError as exc:
            raise self._error(exc, "reading a domain's description") from exc
        return describe(xml), xml

    def _info(self, domain: Any, description: DomainDescription) -> InstanceInfo:
        disks = []
        for disk in description.disks:
            if not disk.readable:
                continue
            try:
                capacity = int(domain.blockInfo(disk.target)[0])
            except self.libvirt.libvirtError as exc:
                raise self._error(exc, f"reading the size of disk {disk.target} of {description.name}") from exc
            disks.append(DiskInfo(path=disk.path, format=disk.format, size=capacity, device=disk.target))
        metadata = {"platform": "libvirt", "vcpus": str(description.vcpus),
                    "memory_mb": str(description.memory_kib // 1024),
                    "macs": ",".join(n.mac for n in description.nics if n.mac),
                    "state": "running" if domain.isActive() else "shutoff"}
        return InstanceInfo(id=description.uuid, project_id=description.project_id or "", name=description.name,
                            disks=tuple(disks), metadata=metadata)

    def find_instances(self, project_id: str, instance_ids: list[str]) -> dict[str, InstanceInfo]:
        found: dict[str, InstanceInfo] = {}
        for instance_id in instance_ids:
            try:
                uuid.UUID(instance_id)
            except ValueError:
                continue  # ids are UUIDs: a name must not reach another project's domain
            domain = self._lookup(instance_id)
            if domain is None:
                continue
            description, _ = self._describe(domain)
            if description.project_id != project_id:
                continue
            found[description.uuid] = self._info(domain, description)
        return found

    def list_domains(self, project_id: str | None = None) -> list[InstanceInfo]:
        """Every domain (with no project: those of no project too), by name."""
        try:
            domains = self.connection().listAllDomains(0)
        except self.libvirt.libvirtError as exc:
            raise self._error(exc, "listing domains") from exc
        infos = []
        for domain in domains:
            description, _ = self._describe(domain)
            if project_id is None or description.project_id == project_id:
                infos.append(self._info(domain, description))
        return sorted(infos, key=lambda i: i.name)

    def adopt(self, project_id: str, domain_ref: str) -> InstanceInfo:
        """Give a domain to a project (Cairn's owner element in its metadata)."""
        element = owner_element(project_id)
        domain = self._lookup(domain_ref)
        if domain is None:
            raise NotFound(f"domain: no domain named or with the UUID {domain_ref!r}.")
        flags = 0
        if domain.isPersistent():
            flags |= self.libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if domain.isActive():
            flags |= self.libvirt.VIR_DOMAIN_AFFECT_LIVE
        try:
            domain.setMetadata(self.libvirt.VIR_DOMAIN_METADATA_ELEMENT, element, OWNER_PREFIX, OWNER_NS, flags)
        except self.libvirt.libvirtError as exc:
            raise self._error(exc, f"writing the owner of domain {domain_ref}") from exc
        description, _ = self._describe(domain)
        return self._info(domain, description)

    def confirm(self, instance: InstanceInfo) -> None:
        domain = self._lookup(instance.id)
        if domain is None:
            raise Conflict(f"Domain {instance.name} ({instance.id}) no longer exists.")
        description, _ = self._describe(domain)
        unreadable = [d for d in description.disks if not d.readable]
        if unreadable:
            disk = unreadable[0]
            raise Conflict(f"Disk {disk.target} of instance {instance.name} is a {disk.kind} disk in {disk.format} "
                           "format; Cairn reads file and block disks in raw or qcow2 format.")
        if not description.disks:
            raise Conflict(f"Instance {instance.name} has no disk.")

    # -- snapshots -----------------------------------------------------------------------

    def capture(self, instances: list[InstanceInfo], parents: dict[str, dict[str, Any]], label: str) -> Capture:
        os.makedirs(self.scratch_dir, exist_ok=True)
        members = []
        for instance in instances:
            domain = self._lookup(instance.id)
            if domain is None:
                raise Conflict(f"Domain {instance.name} ({instance.id}) no longer exists.")
            description, _ = self._describe(domain)
            try:
                inactive = domain.XMLDesc(self.libvirt.VIR_DOMAIN_XML_INACTIVE)
            except self.libvirt.libvirtError as exc:
                raise self._error(exc, f"reading the description of {instance.name}") from exc
            info = self._info(domain, description)
            members.append(new_member(domain, info, description, inactive, parents.get(instance.id)))
        try:
            return open_capture(self.libvirt, members, self.scratch_dir, label)
        except self.libvirt.libvirtError as exc:
            raise self._error(exc, "capturing the domains") from exc

    def forget_history(self, instance_ids: list[str]) -> None:
        for instance_id in instance_ids:
            domain = self._lookup(instance_id)
            if domain is not None:
                self._drop_checkpoints(domain)

    def _drop_checkpoints(self, domain: Any) -> None:
        description, _ = self._describe(domain)
        try:
            checkpoints = domain.listAllCheckpoints()
        except self.libvirt.libvirtError as exc:
            raise self._error(exc, f"listing the checkpoints of {description.name}") from exc
        # Newest first: deleting a leaf never needs a merge into a child.
        for checkpoint in reversed(checkpoints):
            if checkpoint.getName().startswith(CHECKPOINT_PREFIX):
                delete_checkpoint(self.libvirt, domain, checkpoint, description)

    # -- restores ------------------------------------------------------------------------

    def check_inplace(self, instance: InstanceInfo, options: dict[str, Any]) -> None:
        domain = self._lookup(instance.id)
        if domain is None:
            raise Conflict(f"Instance {instance.id} no longer exists; restore it with 'oneclick' or "
                           "'selective' instead.")
        if not domain.isActive():
            return
        if not options.get("power_off"):
            raise Conflict(f"Instance {instance.name} is running; an in-place restore writes its disks, so "
                           "stop it first or ask for it with restore.options.power_off = true.")
        if not domain.isPersistent():
            raise Conflict(f"Instance {instance.name} is a transient domain: stopping it would remove it, so "
                           "it cannot be restored in place while it runs.")

    @contextmanager
    def inplace_window(self, instance: InstanceInfo, options: dict[str, Any]) -> Iterator[None]:
        """Stop the domain if it runs (power_off), let the disks be written, drop Cairn's
        checkpoints (the new disk files hold no bitmap), start it again if it ran. A
        failed restore leaves the domain stopped: its disks may be half written."""
        self.check_inplace(instance, options)
        domain = self._lookup(instance.id)
        assert domain is not None
        was_running = bool(domain.isActive())
        if was_running:
            self._stop(domain, instance.name)
        yield
        self._drop_checkpoints(domain)
        if was_running:
            try:
                domain.create()
            except self.libvirt.libvirtError as exc:
                raise self._error(exc, f"starting {instance.name} again after its restore") from exc

    def _stop(self, domain: Any, name: str) -> None:
        try:
            domain.shutdown()
        except self.libvirt.libvirtError as exc:
            log.info("graceful shutdown of %s refused (%s); destroying it", name, exc.get_error_message())
        deadline = time.monotonic() + self.shutdown_seconds
        while domain.isActive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if domain.isActive():
            try:
                domain.destroy()
            except self.libvirt.libvirtError as exc:
                raise self._error(exc, f"stopping {name}") from exc

    def restore_instance(self, project_id: str, name: str, disks: list[tuple[str, str, str]],
                         state: dict[str, Any], label: str, host: str | None,
                         options: dict[str, Any] | None = None, record: Recorder | None = None) -> InstanceInfo:
        """Define (and start, when the original was running) a new domain from the
        snapshot's description; `disks` are (device, restored path, format). The domain
        lives on this platform's libvirt host whatever `host` says."""
        xml = state.get("domain_xml")
        if not xml:
            raise Conflict(f"The snapshot keeps no domain description of {name}; restore its disks "
                           "with the local platform instead.")
        short = label[:8]
        new_name = name
        if self._lookup(new_name) is not None:
            new_name = f"{name}-restore-{short}"
        document = restored_domain_xml(xml, new_name, project_id, {d: (p, f) for d, p, f in disks}, short)
        conn = self.connection()
        try:
            domain = conn.defineXML(document)
        except self.libvirt.libvirtError as exc:
            raise self._error(exc, f"defining the restored domain {new_name}") from exc
        if state.get("running"):
            try:
                domain.create()
            except self.libvirt.libvirtError as exc:
                raise self._error(exc, f"starting the restored domain {new_name}") from exc
        description, _ = self._describe(domain)
        return self._info(domain, description)

    # -- instant restores (libvirt_instant.py) ---------------------------------------------

    supports_instant_restore = True

    def instant_restore_instance(self, project_id: str, name: str, disks: list[tuple[str, str, DiskReader]],
                                 state: dict[str, Any], label: str, host: str | None, options: dict[str, Any],
                                 record: Recorder) -> InstantRestore:
        """Define and start a new domain whose disks (device, new overlay path, reader of
        the snapshot's disk) are qcow2 overlays over NBD exports of the snapshot; the
        handle's `start_copy()` copies the snapshot into them. The domain runs whatever
        the original did."""
        exports = start_exports(disks, self.scratch_dir, label)
        try:
            info = self.restore_instance(project_id, name, [(d.device, d.overlay, "qcow2") for d in exports],
                                         {**state, "running": True}, label, host)
            domain = self._lookup(info.id)
            if domain is None:
                raise Conflict(f"The restored domain {info.name} vanished as it started.")
            return InstantRestore(self.libvirt, domain, info, exports)
        except BaseException:
            for disk in exports:
                disk.server.close()
            raise


__all__ = ["DEFAULT_URI", "LibvirtPlatform", "beside", "import_libvirt"]
