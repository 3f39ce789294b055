"""Instant restore on the libvirt platform: a real guest under libvirtd boots on its
snapshot (served over NBD by the worker) before its data is copied, and the copy
finishes in the background; a target that goes away fails the restore clearly.

The moment is controlled, not raced: `hold_instant(at)` stops the export's reads at a
byte of the disk until the test lets them go on (tests/pausing.py).
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from cairn.platforms.libvirt_domain import beside
from tests.conftest import Service, wait_until
from tests.platforms.guest import GuestConsole
from tests.platforms.test_libvirt import (  # noqa: F401 - fixtures of the libvirt tests
    PROJECT,
    _call,
    _content,
    _snapshot,
    _wait_workload,
    _workload,
    conn,
    libvirt,
    lv,
    make_guest,
)

MiB = 1 << 20


def _start_restore(svc: Service, token: str, workload_id: str, snapshot_id: str,
                   options: dict[str, Any]) -> str:
    path = f"/workloads/{workload_id}/snapshots/{snapshot_id}/restores"
    created = _call(svc, token, "POST", path, {"restore": {"name": "r", "options": options}}, 202)
    return str(created["restore"]["id"])


def _show(svc: Service, token: str, workload_id: str, snapshot_id: str, restore_id: str) -> dict[str, Any]:
    path = f"/workloads/{workload_id}/snapshots/{snapshot_id}/restores/{restore_id}"
    return dict(_call(svc, token, "GET", path)["restore"])


def _finished(svc: Service, token: str, workload_id: str, snapshot_id: str, restore_id: str) -> dict[str, Any]:
    return dict(wait_until(lambda: (r := _show(svc, token, workload_id, snapshot_id, restore_id))
                           ["status"] in ("available", "error") and r, timeout=180))


def _disk_of(domain: Any) -> tuple[Path, bool]:
    """The domain's vda file, and whether it still has a backing store."""
    disk = ET.fromstring(domain.XMLDesc(0)).find("devices/disk")
    assert disk is not None
    source = disk.find("source")
    backing = disk.find("backingStore")
    assert source is not None
    return Path(source.get("file", "")), backing is not None and backing.find("source") is not None


def test_instant_restore_boots_before_the_copy_and_ends_free_of_the_target(
        lv: Service, make_guest: Any, conn: Any) -> None:  # noqa: F811 - the fixtures imported above
    token = lv.token(PROJECT)
    guest = make_guest()
    guest.console.write(0, 8)
    guest.console.write(40, 4)
    workload = _workload(lv, token, [guest.id])
    guest.domain.suspend()
    reference = _content(guest.disk)
    snap = _snapshot(lv, token, workload, full=True)
    guest.domain.resume()

    gate = lv.disks.hold_instant_copy()  # the guest runs on the snapshot; the copy waits
    restore_id = _start_restore(lv, token, workload, snap["id"], {"oneclickrestore": True, "instant": True})
    # the restored domain's console: connected as QEMU creates it, before the guest prints
    console = GuestConsole(Path(beside(str(guest.socket), restore_id[:8])))
    gate.wait_reached()
    # The copy has not begun, and the restored guest boots on the snapshot alone.
    running = _show(lv, token, workload, snap["id"], restore_id)
    assert running["status"] not in ("available", "error")
    assert running["progress_percent"] < 100
    [instance] = running["instances"]
    restored = conn.lookupByUUIDString(instance["id"])
    assert restored.isActive()
    overlay, backed = _disk_of(restored)
    assert backed and overlay != guest.disk
    try:
        console.wait_for("CAIRN-READY")  # booted while its data is still being copied
    finally:
        console.close()
    gate.release()

    done = _finished(lv, token, workload, snap["id"], restore_id)
    assert done["status"] == "available", done["error_msg"]
    assert done["progress_percent"] == 100
    assert done["instances"][0]["id"] == instance["id"]
    assert restored.isActive()
    assert _disk_of(restored) == (overlay, False)  # no backing left in libvirt's view
    info = subprocess.run(["qemu-img", "info", "-U", str(overlay)], capture_output=True, text=True, check=True)
    assert "backing file" not in info.stdout  # nor in the file itself
    restored.destroy()  # QEMU writes its qcow2 metadata back as it exits
    assert _content(overlay) == reference
    restored.create()  # the export is closed: the disk stands alone
    console = GuestConsole(Path(beside(str(guest.socket), restore_id[:8])))
    try:
        console.wait_for("CAIRN-READY")
    finally:
        console.close()
    _wait_workload(lv, token, workload)


def test_a_target_that_goes_away_fails_the_instant_restore_and_removes_the_instance(
        lv: Service, make_guest: Any, conn: Any) -> None:  # noqa: F811 - the fixtures imported above
    token = lv.token(PROJECT)
    guest = make_guest()
    guest.console.write(0, 4)
    guest.console.write(48, 4)  # data past the gate: the copy must fetch it
    workload = _workload(lv, token, [guest.id])
    snap = _snapshot(lv, token, workload, full=True)
    target = Path(lv.data_dir) / "targets" / "default"
    moved = target.with_name("default-away")

    gate = lv.disks.hold_instant(16 * MiB)
    restore_id = _start_restore(lv, token, workload, snap["id"], {"oneclickrestore": True, "instant": True})
    gate.wait_reached()
    [instance] = _show(lv, token, workload, snap["id"], restore_id)["instances"]
    os.rename(target, moved)
    try:
        gate.release()
        done = _finished(lv, token, workload, snap["id"], restore_id)
    finally:
        os.rename(moved, target)
    assert done["status"] == "error"
    assert "background copy stopped" in done["error_msg"], done["error_msg"]
    assert "disk vda" in done["error_msg"] and "backup target" in done["error_msg"], done["error_msg"]
    assert not [d for d in conn.listAllDomains(0) if d.UUIDString() == instance["id"]]
    assert done["instances"] == []
    assert guest.domain.isActive()  # the original is untouched
    _wait_workload(lv, token, workload)


def test_instant_restore_is_refused_for_an_inplace_restore(lv: Service, make_guest: Any) -> None:  # noqa: F811
    token = lv.token(PROJECT)
    guest = make_guest()
    workload = _workload(lv, token, [guest.id])
    snap = _snapshot(lv, token, workload, full=True)
    path = f"/workloads/{workload}/snapshots/{snap['id']}/restores"
    refused = _call(lv, token, "POST", path, {"restore": {"options": {"restore_type": "inplace", "instant": True,
                                                                       "power_off": True}}}, 400)
    assert "restore.options.instant" in str(refused)
