"""Instant restore on libvirt: the restored domain boots before its data is copied.

For each disk, the snapshot is exported read-only over NBD from this process
(`nbd_server.NbdServer` over a `SnapshotReader`), and the restored disk is a new qcow2
overlay whose backing file is that export (`nbd+unix:///?socket=...`, format raw). The
domain is defined on the overlays and started at once: every read of a cluster not yet
in the overlay goes to the snapshot. Then QEMU's block-stream job (`virDomainBlockPull`,
no base) copies the backing's data into the overlay while the guest runs, one disk after
the other (`start_copy` says why), skipping the snapshot's zero chunks (the export
reports them as holes; the overlay reads zeros there), and when it completes QEMU drops
the backing file from the overlay's header: the disk no longer depends on the target,
and the export is closed.

`progress()` reads each job's cursor (`virDomainGetBlockJobInfo`). A job that ended
while the disk still has its backing failed: the export's first read failure (the
target went away, a damaged chunk) says why. QEMU only writes into the overlay what it
read and verified, and a failed read is an I/O error, never zeros, so what was copied is
never wrong; the domain cannot go on without the rest, and `abandon()` removes it.

Limits: the export lives in the worker process that runs the restore; if that process
dies before the copy completes, the domain's uncopied reads fail until it is removed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from cairn.errors import Unavailable
from cairn.platforms.base import DiskReader, InstanceInfo, StreamProgress
from cairn.platforms.nbd_server import NbdServer

log = logging.getLogger(__name__)

# How long a finished job's disk may still show its backing before that counts as a
# failure: libvirt updates the domain's description as it processes the job's end.
SETTLE_SECONDS = 5.0


@dataclass
class ExportedDisk:
    """One disk of an instant restore: its device in the domain, the overlay over the
    export, the export, and the snapshot disk's size."""

    device: str
    overlay: str
    server: NbdServer
    size: int
    ended_at: float | None = None


def create_overlay(path: str, backing_url: str, size: int) -> None:
    """A new qcow2 file at `path` backed by the raw NBD export `backing_url`."""
    proc = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", backing_url, "-u",
                           path, str(size)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise Unavailable(f"creating the overlay {path}: {proc.stderr.strip()}")


def start_exports(disks: list[tuple[str, str, DiskReader]], socket_dir: str, label: str) -> list[ExportedDisk]:
    """One NBD export and one overlay per (device, overlay path, reader)."""
    os.makedirs(socket_dir, exist_ok=True)
    made: list[ExportedDisk] = []
    try:
        for device, overlay, reader in disks:
            server = NbdServer(reader, os.path.join(socket_dir, f"nbd-{label[:8]}-{device}.sock"), device)
            made.append(ExportedDisk(device, overlay, server, reader.size))
            create_overlay(overlay, server.url, reader.size)
    except BaseException:
        for disk in made:
            disk.server.close()
        raise
    return made


class InstantRestore:
    """A restored domain running on NBD-backed overlays, and the copy into them."""

    def __init__(self, libvirt: Any, domain: Any, info: InstanceInfo, disks: list[ExportedDisk]) -> None:
        self.libvirt = libvirt
        self.domain = domain
        self.instance = info
        self.disks = disks
        self._waiting: list[ExportedDisk] = []  # disks whose copy has not begun

    def start_copy(self) -> None:
        """Copy the disks one after the other: QEMU 7.2 (Debian 12) crashed, segfault in
        its block layer, every time two block-stream jobs of one domain ended together
        (two disks over NBD, whether or not a qcow2 file sat between overlay and export);
        one at a time, never. `progress` starts the next disk when one is done."""
        self._waiting = list(self.disks)
        self._start_next()

    def _start_next(self) -> None:
        if not self._waiting:
            return
        disk = self._waiting.pop(0)
        try:
            self.domain.blockPull(disk.device, 0, 0)
        except self.libvirt.libvirtError as exc:
            raise Unavailable(f"starting the background copy of disk {disk.device} of "
                              f"{self.instance.name}: {exc.get_error_message()}") from exc

    def _backed(self) -> set[str]:
        """The devices whose disk still has a backing file."""
        root = ET.fromstring(self.domain.XMLDesc(0))
        backed = set()
        for element in root.iterfind("devices/disk"):
            target = element.find("target")
            backing = element.find("backingStore")
            if target is not None and backing is not None and backing.find("source") is not None:
                backed.add(target.get("dev", ""))
        return backed

    def progress(self) -> StreamProgress:
        copied = total = 0
        complete = True
        failure = None
        running = False
        try:
            backed = self._backed()
            for disk in self.disks:
                total += disk.size
                if disk in self._waiting:
                    complete = False
                    continue
                info = self.domain.blockJobInfo(disk.device, 0)
                if info:
                    end = int(info.get("end") or 0)
                    copied += disk.size * int(info.get("cur") or 0) // end if end else 0
                    complete = False
                    running = True
                    continue
                if disk.device not in backed:
                    copied += disk.size
                    continue
                complete = False
                now = time.monotonic()
                disk.ended_at = disk.ended_at or now
                if disk.server.failure is not None or now - disk.ended_at > SETTLE_SECONDS:
                    why = disk.server.failure or "QEMU's copy job ended before the disk was copied"
                    failure = failure or (f"disk {disk.device}: reading the snapshot from the backup target "
                                          f"failed: {why}")
            if failure is None and not running and self._waiting:
                self._start_next()
        except self.libvirt.libvirtError as exc:
            raise Unavailable(f"reading the background copy of {self.instance.name}: "
                              f"{exc.get_error_message()}") from exc
        return StreamProgress(copied, total, complete and failure is None, failure)

    def close(self) -> None:
        """The copy is complete: the exports are no longer read."""
        for disk in self.disks:
            disk.server.close()

    def stop_copy(self) -> None:
        """Abort the copy jobs still running (what they copied stays, and is right)."""
        for disk in self.disks:
            try:
                if self.domain.blockJobInfo(disk.device, 0):
                    self.domain.blockJobAbort(disk.device, 0)
            except self.libvirt.libvirtError:
                pass

    def abandon(self) -> None:
        """Remove the domain (its disks cannot be completed) and stop the exports."""
        self.stop_copy()
        try:
            if self.domain.isActive():
                self.domain.destroy()
            self.domain.undefine()
        except self.libvirt.libvirtError as exc:
            log.warning("could not remove the instantly restored domain %s: %s", self.instance.name,
                        exc.get_error_message())
        self.close()
