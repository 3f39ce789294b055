"""Point-in-time views of libvirt domains: live through libvirt's backup API (pull
mode, checkpoints), offline through a read-only `qemu-nbd`.

Live (a running or paused domain), for a group of domains taken together:

1. each domain's guest filesystems are frozen through the QEMU guest agent when the
   domain has an agent channel (a failed freeze, or no agent, leaves the snapshot
   crash-consistent and says so in a warning);
2. `virDomainBackupBegin` starts a pull-mode backup of every readable disk and, in the
   same step, creates the checkpoint `cairn-<snapshot id>` (a persistent dirty bitmap
   in each qcow2 disk); an incremental names the previous snapshot's checkpoint per
   disk (`backupmode='incremental'`);
3. the filesystems are thawed: the backup's export is a point-in-time view (copy
   before write into a scratch qcow2), so the guest runs on while Cairn reads;
4. each disk is read over NBD (libnbd, a Unix socket in a private directory): a full
   reads the extents `base:allocation` reports as data; an incremental gives the engine
   the extents of `qemu:dirty-bitmap:backup-<disk>` as its changed ranges, so only the
   chunks they touch are read;
5. closing the capture ends the backup job; committing it deletes every other
   `cairn-` checkpoint of the domain, discarding it deletes the new one.

An incremental falls back to a full (with a warning) when the previous checkpoint is
gone (domain redefined, checkpoint deleted), the disks differ from the previous
snapshot's (disk added, removed or replaced), or libvirt refuses the incremental (a
bitmap lost or inconsistent): never a wrong incremental. Raw disks cannot hold bitmaps:
they are read in full (the engine then stores only the chunks that changed).

Offline (a shut-off domain): libvirt cannot make checkpoints of inactive domains, so
the disks are read as they are, each qcow2 through `qemu-nbd --read-only`; when the
previous snapshot's checkpoint bitmap is in the qcow2, only its dirty extents are
changed ranges, and that checkpoint stays the domain's (nothing wrote since).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

from cairn.engine.qemu import NBD_STATE_DIRTY, NBD_STATE_HOLE, NBD_STATE_ZERO, NbdClient, NbdExport, image_info
from cairn.engine.sources import Extent, open_source
from cairn.errors import CairnError, Unavailable
from cairn.platforms.base import Capture, DiskInfo, DiskView, InstanceInfo, InstanceView
from cairn.platforms.libvirt_domain import DomainDescription, describe

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "cairn-"


def checkpoint_name(label: str) -> str:
    return f"{CHECKPOINT_PREFIX}{label}"


def _data(flags: int) -> bool:
    return not flags & (NBD_STATE_HOLE | NBD_STATE_ZERO)


def _dirty(flags: int) -> bool:
    return bool(flags & NBD_STATE_DIRTY)


class NbdDiskSource:
    """One disk read over NBD, the engine's `Source`: its data extents (`base:allocation`)
    and, given a dirty-bitmap context, the ranges changed since that bitmap began."""

    def __init__(self, client: NbdClient, kind: str, bitmap_context: str | None,
                 owner: NbdClient | NbdExport | None = None) -> None:
        """`owner` is closed with the source (the `qemu-nbd` serving it); default the client."""
        self.kind = kind
        self.path = client.path
        self.size = client.size
        self._client = client
        self._owner = owner or client
        try:
            self._extents = [Extent(o, n) for o, n in client.extents("base:allocation", _data)]
            self.dirty = client.extents(bitmap_context, _dirty) if bitmap_context is not None else None
        except BaseException:
            self.close()
            raise

    @classmethod
    def live(cls, socket_path: str, export: str, label: str, bitmap_context: str | None) -> NbdDiskSource:
        """A disk of a running domain's backup job (libvirt's NBD server, export `vda`...)."""
        contexts = ("base:allocation",) + ((bitmap_context,) if bitmap_context is not None else ())
        return cls(NbdClient(label, socket_path, export=export, meta_contexts=contexts), "nbd", bitmap_context)

    @classmethod
    def offline(cls, path: str, bitmap: str) -> NbdDiskSource:
        """A shut-off domain's qcow2 disk served by a read-only `qemu-nbd`, with the changed
        ranges of its persistent bitmap `bitmap`."""
        context = f"qemu:dirty-bitmap:{bitmap}"
        export = NbdExport(path, "qcow2", readonly=True, bitmap=bitmap,
                           meta_contexts=("base:allocation", context))
        return cls(export.client, "qcow2", context, owner=export)

    def data_extents(self) -> list[Extent]:
        return list(self._extents)

    def read_into(self, buf: memoryview, offset: int) -> None:
        self._client.pread_into(buf, offset)

    def close(self) -> None:
        self._owner.close()


def qcow2_bitmaps(path: str) -> set[str]:
    info = image_info(path)
    data = (info.get("format-specific") or {}).get("data") or {}
    return {b.get("name", "") for b in data.get("bitmaps") or []}


@dataclass
class _Member:
    """One domain of a capture and what was done to it."""

    domain: Any
    instance: InstanceInfo
    description: DomainDescription
    state: dict[str, Any]
    parent: dict[str, Any] | None
    incremental_from: str | None = None
    checkpoint: str | None = None
    frozen: bool = False
    job_started: bool = False
    socket_dir: str | None = None
    sources: list[Any] = field(default_factory=list)


class LibvirtCapture(Capture):
    """The views of a group of domains; see the module docstring for the steps."""

    def __init__(self, libvirt: Any, members: list[_Member], scratch_dir: str, label: str) -> None:
        super().__init__([])
        self.libvirt = libvirt
        self.members = members
        self.scratch_dir = scratch_dir
        self.label = label

    # -- taking the views ----------------------------------------------------------

    def start(self) -> None:
        live = [m for m in self.members if m.domain.isActive()]
        offline = [m for m in self.members if m not in live]
        for member in live:
            self._end_stale_backup(member)
            self._plan_incremental(member)
        self._freeze(live)
        try:
            for member in live:
                self._begin(member)
        finally:
            self._thaw(live)
        for member in live:
            self.views.append(self._live_view(member))
        for member in offline:
            self.views.append(self._offline_view(member))

    def _warn(self, message: str) -> None:
        self.warnings.append(message)

    def _qcow2_disks(self, member: _Member) -> list[str]:
        return [d.target for d in member.description.disks if d.readable and d.format == "qcow2"]

    def _end_stale_backup(self, member: _Member) -> None:
        """A pull-mode job outlives the process that began it: one left by a worker that
        died (its export under this scratch directory) would block every later backup."""
        try:
            current = member.domain.backupGetXMLDesc(0)
        except self.libvirt.libvirtError:
            return  # no backup job: the usual case
        if f"{self.scratch_dir}/cairn-backup-" in current:
            log.warning("ending a backup job of %s left by an earlier snapshot", member.instance.name)
            try:
                member.domain.abortJob()
            except self.libvirt.libvirtError as exc:
                log.warning("ending it failed: %s", exc.get_error_message())

    def _plan_incremental(self, member: _Member) -> None:
        """Decide whether the previous checkpoint can be trusted for an incremental."""
        parent = member.parent
        if parent is None or not parent.get("checkpoint"):
            return
        previous = parent["checkpoint"]
        name = member.instance.name
        current = {d.target: d.path for d in member.description.disks if d.readable}
        if parent.get("disks") != current:
            self._warn(f"The disks of {name} changed since the previous snapshot: a full snapshot was taken.")
            return
        try:
            member.domain.checkpointLookupByName(previous)
        except self.libvirt.libvirtError:
            self._warn(f"Checkpoint {previous} of {name} is gone (domain redefined or checkpoint deleted): "
                       "a full snapshot was taken.")
            return
        member.incremental_from = previous

    def _freeze(self, members: list[_Member]) -> None:
        for member in members:
            name = member.instance.name
            if not member.description.has_agent:
                self._warn(f"{name} has no QEMU guest agent: its disks are crash-consistent.")
                continue
            try:
                member.domain.fsFreeze()
                member.frozen = True
            except self.libvirt.libvirtError as exc:
                self._warn(f"The guest filesystems of {name} could not be frozen "
                           f"({exc.get_error_message()}): its disks are crash-consistent.")

    def _thaw(self, members: list[_Member]) -> None:
        for member in members:
            if member.frozen:
                try:
                    member.domain.fsThaw()
                    member.frozen = False
                except self.libvirt.libvirtError as exc:
                    self._warn(f"The guest filesystems of {member.instance.name} could not be thawed: "
                               f"{exc.get_error_message()}.")

    def _backup_xml(self, member: _Member, incremental: str | None) -> tuple[str, str]:
        member.socket_dir = member.socket_dir or tempfile.mkdtemp(prefix="cairn-backup-", dir=self.scratch_dir)
        socket_path = os.path.join(member.socket_dir, "nbd.sock")
        disks = []
        checkpointed = []
        for disk in member.description.disks:
            if not disk.readable:
                disks.append(f"<disk name={quoteattr(disk.target)} backup='no'/>")
                continue
            scratch = os.path.join(member.socket_dir, f"scratch-{disk.target}.qcow2")
            mode = "backupmode='full'"
            if disk.format == "qcow2":
                checkpointed.append(f"<disk name={quoteattr(disk.target)} checkpoint='bitmap'/>")
                if incremental is not None:
                    mode = f"backupmode='incremental' incremental={quoteattr(incremental)}"
            disks.append(f"<disk name={quoteattr(disk.target)} backup='yes' type='file' {mode}>"
                         f"<scratch file={quoteattr(scratch)}/></disk>")
        backup = (f"<domainbackup mode='pull'><server transport='unix' socket={quoteattr(socket_path)}/>"
                  f"<disks>{''.join(disks)}</disks></domainbackup>")
        checkpoint = ""
        if checkpointed:
            checkpoint = (f"<domaincheckpoint><name>{checkpoint_name(self.label)}</name>"
                          f"<disks>{''.join(checkpointed)}</disks></domaincheckpoint>")
        return backup, checkpoint

    def _begin(self, member: _Member) -> None:
        backup, checkpoint = self._backup_xml(member, member.incremental_from)
        try:
            member.domain.backupBegin(backup, checkpoint or None, 0)
        except self.libvirt.libvirtError as exc:
            if member.incremental_from is None:
                raise Unavailable(f"libvirt could not start a backup of {member.instance.name}: "
                                  f"{exc.get_error_message()}") from exc
            self._warn(f"libvirt refused an incremental of {member.instance.name} since checkpoint "
                       f"{member.incremental_from} ({exc.get_error_message()}): a full snapshot was taken.")
            member.incremental_from = None
            backup, checkpoint = self._backup_xml(member, None)
            try:
                member.domain.backupBegin(backup, checkpoint or None, 0)
            except self.libvirt.libvirtError as again:
                raise Unavailable(f"libvirt could not start a backup of {member.instance.name}: "
                                  f"{again.get_error_message()}") from again
        member.job_started = True
        member.checkpoint = checkpoint_name(self.label) if checkpoint else None

    def _live_view(self, member: _Member) -> InstanceView:
        assert member.socket_dir is not None
        socket_path = os.path.join(member.socket_dir, "nbd.sock")
        view = InstanceView(member.instance, [], state=member.state,
                            full=member.parent is not None and member.incremental_from is None)
        disks_by_target = {d.device: d for d in member.instance.disks}
        for disk in member.description.disks:
            # a disk left out of the instance (excluded from backup) is not read
            if not disk.readable or disk.target not in disks_by_target:
                continue
            incremental = member.incremental_from is not None and disk.format == "qcow2"
            context = f"qemu:dirty-bitmap:backup-{disk.target}" if incremental else None
            source = NbdDiskSource.live(socket_path, disk.target, disk.path, context)
            member.sources.append(source)
            view.disks.append(DiskView(disks_by_target[disk.target], source, source.dirty))
        member.state["checkpoint"] = member.checkpoint
        return view

    def _offline_view(self, member: _Member) -> InstanceView:
        parent = member.parent or {}
        previous = parent.get("checkpoint")
        current = {d.target: d.path for d in member.description.disks if d.readable}
        usable = bool(previous) and parent.get("disks") == current
        if previous and not usable:
            self._warn(f"The disks of {member.instance.name} changed since the previous snapshot: "
                       "a full snapshot was taken.")
        if usable:
            try:
                member.domain.checkpointLookupByName(previous)
            except self.libvirt.libvirtError:
                usable = False
                self._warn(f"Checkpoint {previous} of {member.instance.name} is gone: a full snapshot was taken.")
        disks_by_target = {d.device: d for d in member.instance.disks}
        view = InstanceView(member.instance, [], state=member.state)
        bitmap_used = False
        for disk in member.description.disks:
            if not disk.readable or disk.target not in disks_by_target:
                continue
            info: DiskInfo = disks_by_target[disk.target]
            source: Any
            changed = None
            if usable and disk.format == "qcow2" and previous in qcow2_bitmaps(disk.path):
                source = NbdDiskSource.offline(disk.path, previous)
                changed = source.dirty
                bitmap_used = True
            else:
                if usable and disk.format == "qcow2":
                    self._warn(f"The bitmap {previous} is missing from {disk.path}: that disk was read in full.")
                source = open_source(disk.path)
            member.sources.append(source)
            view.disks.append(DiskView(info, source, changed))
        view.full = bool(previous) and not bitmap_used
        # No checkpoint can be made offline; the previous one still covers every write
        # since, so it stays this domain's (its bitmap is a superset of the changes).
        member.state["checkpoint"] = previous if bitmap_used else None
        return view

    # -- ending ----------------------------------------------------------------------

    def close(self) -> None:
        for member in self.members:
            for source in member.sources:
                try:
                    source.close()
                except CairnError as exc:
                    log.warning("closing a disk of %s: %s", member.instance.name, exc.message)
            member.sources = []
            if member.job_started:
                try:
                    member.domain.abortJob()  # how a pull-mode backup ends
                except self.libvirt.libvirtError as exc:
                    log.warning("ending the backup job of %s: %s", member.instance.name, exc.get_error_message())
                member.job_started = False
            if member.socket_dir is not None:
                shutil.rmtree(member.socket_dir, ignore_errors=True)
                member.socket_dir = None

    def commit(self) -> None:
        for member in self.members:
            keep = member.state.get("checkpoint")
            for checkpoint in member.domain.listAllCheckpoints():
                name = checkpoint.getName()
                if name.startswith(CHECKPOINT_PREFIX) and name != keep:
                    delete_checkpoint(self.libvirt, member.domain, checkpoint, member.description)

    def discard(self) -> None:
        for member in self.members:
            if member.checkpoint is None:
                continue
            try:
                checkpoint = member.domain.checkpointLookupByName(member.checkpoint)
            except self.libvirt.libvirtError:
                continue
            delete_checkpoint(self.libvirt, member.domain, checkpoint, member.description)


def delete_checkpoint(libvirt: Any, domain: Any, checkpoint: Any, description: DomainDescription) -> None:
    """Delete a checkpoint: through QEMU while the domain runs (bitmaps merged into the
    parent checkpoint's), else its metadata and then its bitmaps with `qemu-img`
    (libvirt cannot delete checkpoints of inactive domains)."""
    from cairn.engine.qemu import run_tool

    name = checkpoint.getName()
    try:
        if domain.isActive():
            checkpoint.delete(0)
            return
        checkpoint.delete(libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY)
    except libvirt.libvirtError as exc:
        log.warning("deleting checkpoint %s of %s: %s", name, description.name, exc.get_error_message())
        return
    for disk in description.disks:
        if disk.readable and disk.format == "qcow2":
            try:
                if name in qcow2_bitmaps(disk.path):
                    run_tool(["qemu-img", "bitmap", "--remove", disk.path, name],
                             f"removing bitmap {name} from {disk.path}")
            except CairnError as exc:
                log.warning("removing bitmap %s of %s: %s", name, disk.path, exc.message)


def open_capture(libvirt: Any, members: list[_Member], scratch_dir: str, label: str) -> LibvirtCapture:
    capture = LibvirtCapture(libvirt, members, scratch_dir, label)
    try:
        capture.start()
    except BaseException:
        capture.close()
        capture.discard()
        raise
    return capture


def new_member(domain: Any, instance: InstanceInfo, description: DomainDescription, xml: str,
               parent: dict[str, Any] | None) -> _Member:
    state = {"domain_xml": xml, "running": bool(domain.isActive()),
             "disks": {d.target: d.path for d in description.disks if d.readable}, "checkpoint": None}
    return _Member(domain, instance, description, state, parent)


__all__ = ["LibvirtCapture", "checkpoint_name", "delete_checkpoint", "describe", "new_member", "open_capture"]
