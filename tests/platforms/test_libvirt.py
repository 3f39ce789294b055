"""The libvirt platform end to end: a real guest under libvirtd (software emulation),
driven through Cairn's HTTP API.

The guest (tests/platforms/guest.py) writes random data to its disk when told over its
serial console, so each test knows which MiB it changed. Reference content is taken
from the disk while the guest is paused (`qemu-img convert -U`); the snapshot is then
taken while it stays paused, so it must equal the reference.

Limits: busybox runs no QEMU guest agent, so the freeze path is covered only by the
crash-consistent warning of a domain without agent channel.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cairn.platforms.libvirt import import_libvirt
from tests.conftest import Service, variant_service, wait_until
from tests.platforms.guest import GuestConsole, build_guest, domain_xml

MiB = 1 << 20
PROJECT = "p-libvirt"
URI = "qemu:///system"
DISK_SIZE = 64 * MiB


@dataclass
class Guest:
    domain: Any
    disk: Path
    console: GuestConsole
    socket: Path

    @property
    def id(self) -> str:
        return str(self.domain.UUIDString())


@pytest.fixture(scope="module")
def libvirt() -> Any:
    return import_libvirt()


@pytest.fixture(scope="module")
def conn(libvirt: Any) -> Iterator[Any]:
    connection = libvirt.open(URI)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def lv(sqlite_service: Service) -> Iterator[Service]:
    with variant_service(sqlite_service, platform="libvirt", libvirt_uri=URI, libvirt_shutdown_seconds=1.0) as svc:
        yield svc


def _remove_domain(libvirt: Any, domain: Any) -> None:
    try:
        if domain.isActive():
            domain.destroy()
        for checkpoint in domain.listAllCheckpoints():
            checkpoint.delete(libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY)
        domain.undefine()
    except libvirt.libvirtError:
        pass


@pytest.fixture
def make_guest(conn: Any, libvirt: Any, tmp_path: Path) -> Iterator[Any]:
    """Boots guests owned (Nova metadata) by PROJECT; removes them and every domain a
    restore made from them afterwards."""
    image = build_guest()
    made: list[Guest] = []

    def make(project: str | None = PROJECT) -> Guest:
        name = f"cairn-test-{uuid.uuid4().hex[:8]}"
        disk = tmp_path / f"{name}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), str(DISK_SIZE)], check=True)
        socket = tmp_path / f"{name}.sock"
        domain = conn.defineXML(domain_xml(name, image, disk, socket, project=project))
        domain.create()
        console = GuestConsole(socket)
        guest = Guest(domain, disk, console, socket)
        made.append(guest)
        console.wait_for("CAIRN-READY")
        return guest

    yield make
    names = {g.domain.name() for g in made}
    for guest in made:
        guest.console.close()
    for domain in conn.listAllDomains(0):
        if any(domain.name().startswith(n) for n in names):
            _remove_domain(libvirt, domain)


# -- HTTP helpers -----------------------------------------------------------------------


def _call(svc: Service, token: str, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    with svc.client(token) as client:
        response = client.request(method, f"/v1/{PROJECT}{path}", json=body)
    assert response.status_code == expect, response.text
    return response.json() if response.content else None


def _workload(svc: Service, token: str, instance_ids: list[str], parallel: bool = False) -> str:
    body: dict[str, Any] = {"name": "vms", "instances": [{"instance-id": i} for i in instance_ids]}
    if parallel:
        body["workload_type_id"] = "2ddd528d-c9b4-4d7e-8722-cc395140255a"
    workload = _call(svc, token, "POST", "/workloads", {"workload": body}, 202)["workload"]
    _wait_workload(svc, token, workload["id"])
    return str(workload["id"])


def _wait_workload(svc: Service, token: str, workload_id: str) -> dict[str, Any]:
    return wait_until(lambda: (w := _call(svc, token, "GET", f"/workloads/{workload_id}")["workload"])
                      ["status"] in ("available", "error") and w, timeout=120)


def _snapshot(svc: Service, token: str, workload_id: str, full: bool = False) -> dict[str, Any]:
    body = {"snapshot": {"name": "s", "snapshot_type": "full" if full else "incremental"}}
    snap = _call(svc, token, "POST", f"/workloads/{workload_id}", body)["snapshot"]
    done = wait_until(lambda: (s := _call(svc, token, "GET", f"/snapshots/{snap['id']}")["snapshot"])
                      ["status"] in ("available", "error") and s, timeout=120)
    assert done["status"] == "available", done["error_msg"]
    _wait_workload(svc, token, workload_id)
    return dict(done)


def _restore(svc: Service, token: str, workload_id: str, snapshot_id: str, options: dict[str, Any],
             expect: int = 202) -> dict[str, Any]:
    path = f"/workloads/{workload_id}/snapshots/{snapshot_id}/restores"
    created = _call(svc, token, "POST", path, {"restore": {"name": "r", "options": options}}, expect)
    if expect != 202:
        return dict(created)
    restore_id = created["restore"]["id"]
    done = wait_until(lambda: (r := _call(svc, token, "GET", f"{path}/{restore_id}")["restore"])
                      ["status"] in ("available", "error") and r, timeout=120)
    assert done["status"] == "available", done["error_msg"]
    _wait_workload(svc, token, workload_id)
    return dict(done)


def _bytes_read(snapshot: dict[str, Any]) -> int:
    return sum(d["bytes_read"] for i in snapshot["instances"] for d in i["vdisks"])


def _content(path: Path) -> str:
    """The guest-visible content of a qcow2 disk, read even while QEMU holds it."""
    flat = f"{path}.flat"
    subprocess.run(["qemu-img", "convert", "-U", "-q", "-O", "raw", str(path), flat], check=True)
    try:
        digest = hashlib.sha256()
        with open(flat, "rb") as handle:
            for block in iter(lambda: handle.read(4 * MiB), b""):
                digest.update(block)
        return digest.hexdigest()
    finally:
        os.unlink(flat)


def _checkpoints(domain: Any) -> list[str]:
    return sorted(c.getName() for c in domain.listAllCheckpoints())


# -- tests ------------------------------------------------------------------------------


def test_live_incremental_reads_only_the_dirty_extents_and_restores_bit_exact(
        lv: Service, make_guest: Any, conn: Any, libvirt: Any) -> None:
    token = lv.token(PROJECT)
    guest = make_guest()
    guest.console.write(0, 8)
    workload = _workload(lv, token, [guest.id])

    full = _snapshot(lv, token, workload, full=True)
    assert full["snapshot_type"] == "full"
    assert "no QEMU guest agent" in full["warning_msg"] and "crash-consistent" in full["warning_msg"]
    assert _bytes_read(full) == 8 * MiB  # the allocated extents, not the 64 MiB disk
    assert _checkpoints(guest.domain) == [f"cairn-{full['id']}"]

    guest.console.write(20, 3)
    guest.console.write(40, 1)
    guest.domain.suspend()
    reference = _content(guest.disk)
    incremental = _snapshot(lv, token, workload)
    guest.domain.resume()
    assert incremental["snapshot_type"] == "incremental"
    assert _bytes_read(incremental) == 4 * MiB  # exactly the dirty extents
    assert _checkpoints(guest.domain) == [f"cairn-{incremental['id']}"]  # the previous one is deleted

    guest.console.write(0, 2)  # the disk moves on after the snapshot
    assert _content(guest.disk) != reference

    refused = _restore(lv, token, workload, incremental["id"], {"restore_type": "inplace"}, expect=409)
    assert "running" in refused["conflictingRequest"]["message"]
    assert guest.domain.isActive()

    oneclick = _restore(lv, token, workload, incremental["id"], {"oneclickrestore": True})
    restored = conn.lookupByUUIDString(oneclick["instances"][0]["id"])
    assert restored.UUIDString() != guest.id and restored.name() != guest.domain.name()
    assert restored.isActive()
    restored_xml = restored.XMLDesc(0)
    original_mac = guest.domain.XMLDesc(0).split("<mac address='")[1][:17]
    assert original_mac not in restored_xml
    restored_disk = Path(restored_xml.split("<source file='")[1].split("'")[0])
    assert restored_disk != guest.disk and _content(restored_disk) == reference
    restored_console = GuestConsole(Path(restored_xml.split("<source mode='bind' path='")[1].split("'")[0]))
    try:
        restored_console.wait_for("CAIRN-READY")  # the restored domain boots from its restored disk
    finally:
        restored_console.close()
    assert _call(lv, token, "GET", "/workloads")  # the restored domain is the project's
    assert lv.runtime.platform.find_instances(PROJECT, [restored.UUIDString()])

    guest.console.close()
    _restore(lv, token, workload, incremental["id"], {"restore_type": "inplace", "power_off": True})
    assert guest.domain.isActive()  # started again
    assert _content(guest.disk) == reference
    assert _checkpoints(guest.domain) == []  # the restored files hold no bitmap: history dropped


def test_lost_checkpoint_falls_back_to_a_full_and_reset_removes_checkpoints(
        lv: Service, make_guest: Any, conn: Any, libvirt: Any) -> None:
    token = lv.token(PROJECT)
    guest = make_guest()
    guest.console.write(0, 2)
    workload = _workload(lv, token, [guest.id])
    first = _snapshot(lv, token, workload, full=True)
    guest.domain.checkpointLookupByName(f"cairn-{first['id']}").delete(0)

    guest.console.write(10, 1)
    fallback = _snapshot(lv, token, workload)
    assert fallback["snapshot_type"] == "full"
    assert f"Checkpoint cairn-{first['id']}" in fallback["warning_msg"] and "full" in fallback["warning_msg"]
    assert _bytes_read(fallback) == 3 * MiB  # every allocated extent
    assert _checkpoints(guest.domain) == [f"cairn-{fallback['id']}"]

    guest.console.write(12, 1)
    assert _bytes_read(_snapshot(lv, token, workload)) == 1 * MiB  # incrementals resume

    # Shut off, undefined and defined again, the domain has lost its checkpoints
    # (its qcow2 still holds the bitmap, which nothing vouches for any more).
    guest.console.close()
    guest.domain.destroy()
    description = guest.domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    guest.domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
    guest.domain = conn.defineXML(description)
    guest.domain.create()
    guest.console = GuestConsole(guest.socket)
    guest.console.wait_for("CAIRN-READY")
    guest.console.write(14, 1)
    redefined = _snapshot(lv, token, workload)
    assert redefined["snapshot_type"] == "full" and "is gone" in redefined["warning_msg"]
    assert _checkpoints(guest.domain) == [f"cairn-{redefined['id']}"]

    _call(lv, token, "POST", f"/workloads/{workload}/reset", None, 202)
    _wait_workload(lv, token, workload)
    assert _checkpoints(guest.domain) == []


def test_shut_off_domain_is_read_offline_with_its_persistent_bitmap(lv: Service, make_guest: Any) -> None:
    token = lv.token(PROJECT)
    guest = make_guest()
    guest.console.write(0, 4)
    workload = _workload(lv, token, [guest.id])
    first = _snapshot(lv, token, workload, full=True)
    guest.console.write(30, 2)
    guest.console.close()
    guest.domain.destroy()  # QEMU stores the persistent bitmap on its way out
    reference = _content(guest.disk)

    offline = _snapshot(lv, token, workload)
    assert offline["snapshot_type"] == "incremental"
    assert _bytes_read(offline) == 2 * MiB
    assert "crash-consistent" not in (offline["warning_msg"] or "")
    # no checkpoint can be made offline: the previous one stays and still covers the changes
    assert _checkpoints(guest.domain) == [f"cairn-{first['id']}"]

    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(guest.disk), str(DISK_SIZE)], check=True)
    _restore(lv, token, workload, offline["id"], {"restore_type": "inplace"})  # allowed: it is shut off
    assert not guest.domain.isActive()
    assert _content(guest.disk) == reference


def test_instances_of_other_projects_are_invisible_until_adopted(lv: Service, make_guest: Any,
                                                                  tmp_path: Path) -> None:
    token = lv.token(PROJECT)
    stranger = make_guest(project="someone-else")
    _call(lv, token, "POST", "/workloads",
          {"workload": {"name": "x", "instances": [{"instance-id": stranger.id}]}}, 400)

    config = tmp_path / "cairn.conf"
    config.write_text(f"[DEFAULT]\nplatform = libvirt\nlibvirt_uri = {URI}\ndata_dir = {tmp_path}\n")
    cairn = str(Path(sys.executable).with_name("cairn"))
    out = subprocess.run([cairn, "--config-file", str(config), "instance", "adopt", "--project", PROJECT,
                          "--domain", stranger.domain.name()], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == stranger.id
    found = lv.runtime.platform.find_instances(PROJECT, [stranger.id])[stranger.id]
    assert found.name == stranger.domain.name()
    assert [(d.device, d.format, d.size) for d in found.disks] == [("vda", "qcow2", DISK_SIZE)]
    assert found.metadata["vcpus"] == "1" and found.metadata["memory_mb"] == "256"
    listed = subprocess.run([cairn, "--config-file", str(config), "instance", "list", "--project", PROJECT],
                            capture_output=True, text=True, check=True).stdout
    assert stranger.id in listed and "running" in listed


def test_parallel_workload_captures_its_domains_as_one_group(lv: Service, make_guest: Any) -> None:
    token = lv.token(PROJECT)
    first, second = make_guest(), make_guest()
    first.console.write(0, 1)
    second.console.write(5, 2)
    workload = _workload(lv, token, [first.id, second.id], parallel=True)
    snap = _snapshot(lv, token, workload, full=True)
    for guest in (first, second):
        assert f"{guest.domain.name()} has no QEMU guest agent" in snap["warning_msg"]
        assert _checkpoints(guest.domain) == [f"cairn-{snap['id']}"]
    assert {i["id"]: _bytes_read({"instances": [i]}) for i in snap["instances"]} == {
        first.id: 1 * MiB, second.id: 2 * MiB}


def test_unreachable_libvirt_is_unavailable_naming_the_uri(tmp_path: Path) -> None:
    from cairn.errors import Unavailable
    from cairn.platforms.libvirt import LibvirtPlatform

    uri = f"qemu:///system?socket={tmp_path}/no-such.sock"
    with pytest.raises(Unavailable) as refused:
        LibvirtPlatform(uri).find_instances(PROJECT, [str(uuid.uuid4())])
    assert uri in refused.value.message


def test_unknown_platform_is_refused_naming_the_option(tmp_path: Path) -> None:
    from cairn.config import load_settings
    from cairn.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        load_settings(environ={"CAIRN_PLATFORM": "vmware", "CAIRN_DATA_DIR": str(tmp_path)})
    assert refused.value.field == "platform" and "vmware" in refused.value.message
