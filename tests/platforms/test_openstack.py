"""The `openstack` platform against a real OpenStack on this machine.

`scripts/openstack-dev.sh start` (run by the `cloud` fixture; instant when it runs
already) gives Keystone, Placement, Nova on libvirt/QEMU, Glance, Neutron and Cinder with
its NFS driver. One server of project `cairn-alpha` is booted from the guest image
(tests/platforms/guest.py's boot disk) on the shared network `cairn-net`, with one Cinder
volume attached; Cairn runs with `auth_strategy = keystone` against the same Keystone
and `platform = openstack`, and is driven over HTTP with the users' own tokens.

The guest writes random data when told over its serial console (the pseudo-terminal
Nova gives the domain), so each test knows which MiB of which disk changed. Reference
content is taken while the domain is paused, and the snapshot is taken while it stays
paused, so the backup must equal it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openstack
import pytest
from sqlalchemy import select

from cairn.auth.acting import acting_as
from cairn.config import KeystoneAuthSettings
from cairn.db.migrate import upgrade
from cairn.db.models import KeystoneTrust
from cairn.platforms.libvirt import import_libvirt
from cairn.workloads.placement import instances_routing
from tests.auth.keystone_server import issue_token
from tests.conftest import Service, make_settings, serving, wait_until
from tests.platforms.guest import PtyConsole

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("CAIRN_OPENSTACK_STATE", "/var/tmp/cairn-openstack"))
HOST = "cairn-compute-1"
MiB = 1 << 20


@dataclass
class Cloud:
    clouds: dict[str, Any]

    def auth(self, name: str) -> dict[str, Any]:
        return dict(self.clouds[name]["auth"])

    def connect(self, name: str) -> Any:
        auth = self.auth(name)
        return openstack.connect(auth_url=auth["auth_url"], username=auth["username"], password=auth["password"],
                                 project_name=auth["project_name"], user_domain_name="Default",
                                 project_domain_name="Default", region_name="RegionOne",
                                 load_envvars=False, load_yaml_config=False)

    def token(self, name: str) -> str:
        auth = self.auth(name)
        return issue_token(auth["auth_url"], auth["username"], auth["password"], auth["project_name"])


@pytest.fixture(scope="module")
def cloud() -> Cloud:
    done = subprocess.run([str(ROOT / "scripts" / "openstack-dev.sh"), "start"], capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, f"the development OpenStack did not start:\n{done.stderr[-4000:]}"
    return Cloud(json.loads((STATE / "clouds.yaml").read_text())["clouds"])


@pytest.fixture(scope="module")
def osc(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Cairn with platform = openstack, validating the development Keystone's tokens."""
    data_dir = tmp_path_factory.mktemp("cairn-openstack")
    url = f"sqlite:///{data_dir / 'cairn.sqlite'}"
    upgrade(url)
    auth = cloud.auth("cairn")
    keystone = KeystoneAuthSettings(www_authenticate_uri=auth["auth_url"], auth_url=auth["auth_url"],
                                    username=auth["username"], password=auth["password"],
                                    project_name=auth["project_name"], region_name="RegionOne",
                                    interface="public")
    settings = make_settings(data_dir, url, auth_strategy="keystone", platform="openstack", keystone=keystone,
                             libvirt_shutdown_seconds=1.0,
                             openstack_volume_mounts=(str(STATE / "nova" / "mnt"), str(STATE / "cinder" / "mnt")))
    with serving(settings, "sqlite") as service:
        yield service


@dataclass
class Server:
    id: str
    name: str
    volume_id: str
    domain: Any
    console: PtyConsole

    def disk_paths(self) -> dict[str, Path]:
        root = ET.fromstring(self.domain.XMLDesc(0))
        return {str(d.find("target").get("dev")): Path(str(d.find("source").get("file")))  # type: ignore[union-attr]
                for d in root.findall("devices/disk") if d.get("device") == "disk"}


def _wait_volume(conn: Any, volume_id: str, status: str) -> Any:
    return wait_until(lambda: (v := conn.block_storage.get_volume(volume_id)).status == status and v, timeout=120)


@pytest.fixture(scope="module")
def server(cloud: Cloud) -> Iterator[Server]:
    """A server of cairn-alpha booted from the guest image on cairn-net, with a 1 GiB
    volume attached as vdb; deleted with its volume afterwards."""
    conn = cloud.connect("alpha")
    admin = cloud.connect("admin")
    image = conn.image.find_image("cairn-guest")
    flavor = conn.compute.find_flavor("cairn.tiny")
    network = conn.network.find_network("cairn-net")
    name = f"cairn-test-{uuid.uuid4().hex[:8]}"
    created = conn.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id,
                                         networks=[{"uuid": network.id}])
    volume = None
    try:
        booted = conn.compute.wait_for_server(created, status="ACTIVE", wait=300)
        volume = conn.block_storage.create_volume(size=1, name=f"{name}-data")
        _wait_volume(conn, volume.id, "available")
        conn.compute.create_volume_attachment(booted, volume_id=volume.id)
        _wait_volume(conn, volume.id, "in-use")
        domain = import_libvirt().open("qemu:///system").lookupByUUIDString(booted.id)
        # The guest printed CAIRN-READY before anyone listened: Nova's console log has it.
        wait_until(lambda: "CAIRN-READY" in (admin.compute.get_server_console_output(booted.id).get("output")
                                             or ""), timeout=180)
        pty = str(ET.fromstring(domain.XMLDesc(0)).find("devices/serial/source").get("path"))  # type: ignore[union-attr]
        console = PtyConsole(pty)
        made = Server(booted.id, name, volume.id, domain, console)
        wait_until(lambda: len(made.disk_paths()) == 2, timeout=60)
        yield made
        console.close()
    finally:
        # Nova does not undefine a domain that has checkpoints (Cairn's, of the live
        # incrementals): drop their metadata first, as a workload reset does.
        libvirt = import_libvirt()
        try:
            domain = libvirt.open("qemu:///system").lookupByUUIDString(created.id)
            for checkpoint in domain.listAllCheckpoints():
                checkpoint.delete(libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY)
        except libvirt.libvirtError:
            pass
        conn.compute.delete_server(created.id)
        try:
            conn.compute.wait_for_delete(created, wait=120)
        finally:
            if volume is not None:
                _wait_volume(conn, volume.id, "available")
                conn.block_storage.delete_volume(volume.id)


# -- helpers ------------------------------------------------------------------------------


def _call(svc: Service, token: str, project: str, method: str, path: str, body: Any = None,
          expect: int = 200) -> Any:
    with svc.client(token) as client:
        response = client.request(method, f"/v1/{project}{path}", json=body)
    assert response.status_code == expect, response.text
    return response.json() if response.content else None


def _content(path: Path) -> str:
    """The guest-visible content of a disk file (qcow2 or raw), read while QEMU holds it."""
    flat = f"{path}.{uuid.uuid4().hex[:6]}.flat"
    subprocess.run(["qemu-img", "convert", "-U", "-q", "-O", "raw", str(path), flat], check=True)
    try:
        return _digest(Path(flat))
    finally:
        os.unlink(flat)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 * MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def _format(path: Path) -> str:
    done = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], capture_output=True, text=True,
                          check=True)
    return str(json.loads(done.stdout)["format"])


def _region_is_zero(path: Path, offset_mib: int, count_mib: int) -> bool:
    flat = f"{path}.{uuid.uuid4().hex[:6]}.flat"
    subprocess.run(["qemu-img", "convert", "-U", "-q", "-O", "raw", str(path), flat], check=True)
    try:
        with open(flat, "rb") as handle:
            handle.seek(offset_mib * MiB)
            return handle.read(count_mib * MiB) == bytes(count_mib * MiB)
    finally:
        os.unlink(flat)


# -- the environment ---------------------------------------------------------------------


def test_environment_boots_a_server_from_the_image_with_a_volume_it_writes_to(
        cloud: Cloud, server: Server) -> None:
    admin = cloud.connect("admin")
    seen = admin.compute.get_server(server.id)
    assert seen.status == "ACTIVE" and seen.compute_host == HOST
    assert [a["id"] for a in seen.attached_volumes] == [server.volume_id]
    addresses = [a["addr"] for net in seen.addresses.values() for a in net]
    assert len(addresses) == 1 and addresses[0].startswith("10.77.0.")

    disks = server.disk_paths()
    assert sorted(disks) == ["vda", "vdb"]
    assert disks["vda"] == STATE / "nova" / "instances" / server.id / "disk"
    assert disks["vdb"].name == f"volume-{server.volume_id}"
    # Cinder's NFS driver makes qcow2 volume files here (nfs_qcow2_volumes): they hold dirty bitmaps.
    assert _format(disks["vdb"]) == "qcow2"
    # Nova reaches the volume through its "NFS" mount of the share, a bind mount of the export.
    assert disks["vdb"].is_relative_to(STATE / "nova" / "mnt")
    assert (STATE / "nfs-export" / f"volume-{server.volume_id}").is_file()
    serials = [d.findtext("serial") for d in ET.fromstring(server.domain.XMLDesc(0)).findall("devices/disk")]
    assert server.volume_id in serials

    assert _region_is_zero(disks["vda"], 300, 2) and _region_is_zero(disks["vdb"], 500, 2)
    server.console.write(300, 2, "vda")
    server.console.write(500, 2, "vdb")
    assert not _region_is_zero(disks["vda"], 300, 2)
    assert not _region_is_zero(disks["vdb"], 500, 2)
    attachments = admin.compute.volume_attachments(server.id)
    assert sorted(a.device for a in attachments) == ["/dev/vdb"]


# -- the platform ----------------------------------------------------------------------------


@dataclass
class Protected:
    """The server's workload (created with alpha's token: it has alpha's trust) and its
    first, full snapshot, with the guest-visible content of each disk it holds."""

    project: str
    token: str
    workload_id: str
    full: dict[str, Any]
    reference: dict[str, str]


def _snapshot(osc: Service, token: str, project: str, workload_id: str, full: bool) -> dict[str, Any]:
    body = {"snapshot": {"name": "s", "snapshot_type": "full" if full else "incremental"}}
    snap = _call(osc, token, project, "POST", f"/workloads/{workload_id}", body)["snapshot"]
    done = wait_until(lambda: (s := _call(osc, token, project, "GET", f"/snapshots/{snap['id']}")["snapshot"])
                      ["status"] in ("available", "error") and s, timeout=300)
    assert done["status"] == "available", done["error_msg"]
    wait_until(lambda: _call(osc, token, project, "GET", f"/workloads/{workload_id}")["workload"]["status"]
               == "available", timeout=60)
    return dict(done)


@pytest.fixture(scope="module")
def protected(cloud: Cloud, osc: Service, server: Server) -> Protected:
    project = cloud.connect("alpha").current_project_id
    token = cloud.token("alpha")
    created = _call(osc, token, project, "POST", "/workloads",
                    {"workload": {"name": "os", "instances": [{"instance-id": server.id}]}}, 202)["workload"]
    workload_id = created["id"]
    assert wait_until(lambda: _call(osc, token, project, "GET", f"/workloads/{workload_id}")["workload"]
                      ["status"] in ("available", "error"), timeout=120)
    server.console.write(100, 3, "vda")
    server.console.write(10, 2, "vdb")
    disks = server.disk_paths()
    server.domain.suspend()
    try:
        reference = {device: _content(path) for device, path in disks.items()}
        full = _snapshot(osc, token, project, workload_id, full=True)
    finally:
        server.domain.resume()
    return Protected(project, token, workload_id, full, reference)


def test_snapshots_of_a_server_with_a_volume_full_then_incremental_read_only_dirty_extents(
        cloud: Cloud, osc: Service, server: Server, protected: Protected) -> None:
    alpha = cloud.auth("alpha")
    project = protected.project
    token = protected.token
    assert instances_routing(osc.runtime.platform, project, [server.id]) == {"worker": HOST}
    workload_id = protected.workload_id

    def workload() -> dict[str, Any]:
        return dict(_call(osc, token, project, "GET", f"/workloads/{workload_id}")["workload"])

    def snapshot(full: bool) -> dict[str, Any]:
        return _snapshot(osc, token, project, workload_id, full)

    assert workload()["status"] == "available", workload()
    assert workload()["instances"][0]["name"] == server.name

    full = protected.full
    assert full["snapshot_type"] == "full"
    [instance] = full["instances"]
    assert instance["id"] == server.id and instance["name"] == server.name
    assert instance["flavor"] == {"id": cloud.connect("admin").compute.find_flavor("cairn.tiny").id,
                                  "name": "cairn.tiny", "vcpus": 1, "ram": 192, "disk": 1, "ephemeral": 0,
                                  "swap": 0}
    [nic] = instance["nics"]
    assert nic["ip_address"].startswith("10.77.0.") and nic["network"]["name"] == "cairn-net"
    assert nic["network"]["subnet"]["cidr"] == "10.77.0.0/24"
    [group] = instance["security_group"]
    assert group["name"] == "default" and any(r["direction"] == "ingress" for r in group["rules"])
    by_device = {d["label"]: d for d in instance["vdisks"]}
    assert sorted(by_device) == ["vda", "vdb"]
    assert by_device["vda"]["disk_kind"] == "root" and by_device["vda"]["volume_id"] is None
    assert by_device["vdb"]["volume_id"] == server.volume_id and by_device["vdb"]["volume_size"] == 1
    assert by_device["vdb"]["volume_type"] == "nfs1" and by_device["vdb"]["backend"] == "nfs1"
    assert by_device["vdb"]["bootable"] is False and by_device["vdb"]["volume_mountpoint"] == "/dev/vdb"
    assert instance["image"]["name"] == "cairn-guest"

    # What a restore needs is in the snapshot's catalog on the target too.
    catalog = next((osc.data_dir / "targets" / "default" / "projects" / project).rglob(f"{full['id']}.json"))
    described = json.loads(catalog.read_text())["instances"][0]["platform"]["openstack"]
    assert described["flavor"]["ram"] == 192 and described["server"]["host"] == HOST
    assert described["ports"][0]["fixed_ips"][0]["ip_address"] == nic["ip_address"]
    assert {d["device"]: d["kind"] for d in described["disks"]} == {"vda": "root", "vdb": "volume"}

    server.console.write(200, 1, "vda")
    server.console.write(40, 2, "vdb")
    disks = server.disk_paths()
    server.domain.suspend()
    try:
        reference = {device: _content(path) for device, path in disks.items()}
        incremental = snapshot(full=False)
    finally:
        server.domain.resume()
    assert incremental["snapshot_type"] == "incremental"
    read = {d["label"]: d["bytes_read"] for d in incremental["instances"][0]["vdisks"]}
    # exactly the dirty extents of each disk: the qcow2 root disk and the qcow2 volume
    assert read == {"vda": 1 * MiB, "vdb": 2 * MiB}

    # The backup holds the disks as they were, bit for bit.
    catalog = next((osc.data_dir / "targets" / "default" / "projects" / project).rglob(f"{incremental['id']}.json"))
    repository = osc.runtime.targets.repository("default", project)
    for vdisk in json.loads(catalog.read_text())["instances"][0]["vdisks"]:
        out = osc.data_dir / f"check-{vdisk['device']}.raw"
        repository.restore(vdisk["manifest_key"], out)
        assert _digest(out) == reference[vdisk["device"]], vdisk["device"]
        out.unlink()
    assert alpha["project_name"] == "cairn-alpha"


def test_another_project_can_neither_see_nor_add_the_server(cloud: Cloud, osc: Service, server: Server) -> None:
    beta_project = cloud.connect("beta").current_project_id
    token = cloud.token("beta")
    for instance_id in (server.id, str(uuid.uuid4()), "not-a-uuid"):
        refused = _call(osc, token, beta_project, "POST", "/workloads",
                        {"workload": {"name": "theirs", "instances": [{"instance-id": instance_id}]}}, 400)
        assert refused["badRequest"]["message"] == f"Instance {instance_id} could not be found."
    assert _call(osc, token, beta_project, "GET", "/workloads")["workloads"] == []
    # Asked for beta without a caller (a job), the service user's view is checked the same way.
    assert osc.runtime.platform.find_instances(beta_project, [server.id]) == {}
    alpha_project = cloud.connect("alpha").current_project_id
    assert list(osc.runtime.platform.find_instances(alpha_project, [server.id])) == [server.id]
    time.sleep(0)


def test_a_job_acting_through_the_workloads_trust_reads_nova_as_its_user(
        cloud: Cloud, osc: Service, server: Server, protected: Protected) -> None:
    """Jobs get the workload's trust as their acting user (`ActingJob`); the platform's
    reads then go through a trust-scoped session of the trustor, in the trust's project."""
    with osc.runtime.database.reader() as session:
        [keystone_trust_id] = session.scalars(select(KeystoneTrust.keystone_trust_id).where(
            KeystoneTrust.workload_id == protected.workload_id))
    assert osc.runtime.trusts.keystone is not None
    acting = osc.runtime.trusts.keystone.act(keystone_trust_id)
    platform = osc.runtime.platform
    alice = cloud.connect("alpha").current_user_id
    beta_project = cloud.connect("beta").current_project_id
    with acting_as(acting):
        connection = platform.inner.caller_connection(protected.project)  # type: ignore[attr-defined]
        assert connection.session.get_user_id() == alice
        assert connection.session.get_project_id() == protected.project
        assert platform.inner.caller_connection(beta_project) is None  # type: ignore[attr-defined]
        assert list(platform.find_instances(protected.project, [server.id])) == [server.id]
        assert platform.find_instances(beta_project, [server.id]) == {}


# -- restores through the OpenStack APIs -----------------------------------------------------


def _restore(osc: Service, protected: Protected, options: dict[str, Any], expect: int = 202,
             wait: bool = True) -> dict[str, Any]:
    path = f"/workloads/{protected.workload_id}/snapshots/{protected.full['id']}/restores"
    created = _call(osc, protected.token, protected.project, "POST", path,
                    {"restore": {"name": "r", "options": {"type": "openstack", **options}}}, expect)
    if expect != 202 or not wait:
        return dict(created)
    restore_id = created["restore"]["id"]
    done = wait_until(lambda: (r := _call(osc, protected.token, protected.project, "GET", f"/restores/{restore_id}")
                               ["restore"])["status"] in ("available", "error", "cancelled") and r, timeout=600)
    wait_until(lambda: _call(osc, protected.token, protected.project, "GET",
                             f"/workloads/{protected.workload_id}")["workload"]["status"] == "available", timeout=60)
    return dict(done)


def _restored_volumes(conn: Any, restore_id: str) -> list[Any]:
    """The project's volumes that carry the restore's mark."""
    return [v for v in conn.block_storage.volumes() if (v.metadata or {}).get("cairn_restore_id") == restore_id]


def _delete_restored(conn: Any, server_id: str, volume_ids: list[str]) -> None:
    """Delete a restored server, its ports (Cairn made them: Nova keeps them) and volumes."""
    ports = [p.id for p in conn.network.ports(device_id=server_id)]
    conn.compute.delete_server(server_id)
    conn.compute.wait_for_delete(conn.compute.get_server(server_id), wait=180)
    for port_id in ports:
        conn.network.delete_port(port_id, ignore_missing=True)
    for volume_id in volume_ids:
        _wait_volume(conn, volume_id, "available")
        conn.block_storage.delete_volume(volume_id)


def _volume_gone(conn: Any, volume_id: str) -> bool:
    try:
        conn.block_storage.get_volume(volume_id)
    except openstack.exceptions.NotFoundException:
        return True
    return False


def _volume_devices(conn: Any, server_id: str) -> dict[str, str]:
    """device (`vda`) → volume id of a server's attachments."""
    return {a.device.rsplit("/", 1)[-1]: a.volume_id for a in conn.compute.volume_attachments(server_id)}


def test_oneclick_restore_makes_an_active_server_booted_from_new_volumes_that_hold_the_data(
        cloud: Cloud, osc: Service, server: Server, protected: Protected) -> None:
    conn = cloud.connect("alpha")
    original = conn.compute.get_server(server.id)
    done = _restore(osc, protected, {"oneclickrestore": True})
    assert done["status"] == "available", done["error_msg"]
    [made] = done["instances"]
    assert made["id"] != server.id and made["name"] == server.name
    restored = conn.compute.get_server(made["id"])
    devices = _volume_devices(conn, restored.id)
    try:
        assert restored.status == "ACTIVE" and restored.project_id == protected.project
        assert restored.flavor["original_name"] == "cairn.tiny"
        assert restored.metadata == original.metadata
        assert [g["name"] for g in restored.security_groups] == ["default"]
        assert not restored.image  # it boots from the restored root volume
        # new volumes of the original sizes and type, on the original network with a new port
        assert sorted(devices) == ["vda", "vdb"] and server.volume_id not in devices.values()
        for volume_id in devices.values():
            volume = conn.block_storage.get_volume(volume_id)
            assert volume.size == 1 and volume.volume_type == "nfs1"
        assert conn.block_storage.get_volume(devices["vda"]).is_bootable
        [port] = conn.network.ports(device_id=restored.id)
        [original_port] = conn.network.ports(device_id=server.id)
        assert port.network_id == original_port.network_id and port.id != original_port.id
        assert port.security_group_ids == original_port.security_group_ids
        # bit for bit: the volume files hold the disks as the snapshot took them
        for device, volume_id in devices.items():
            restored_file = STATE / "nfs-export" / f"volume-{volume_id}"
            assert _format(restored_file) == "qcow2", device  # written in the format Cinder made it in
            assert _content(restored_file) == protected.reference[device], device
    finally:
        _delete_restored(conn, restored.id, list(devices.values()))


def test_selective_restore_with_a_new_name_another_flavor_and_a_network_mapping(
        cloud: Cloud, osc: Service, server: Server, protected: Protected) -> None:
    admin = cloud.connect("admin")
    conn = cloud.connect("alpha")
    tag = uuid.uuid4().hex[:8]
    flavor = admin.compute.create_flavor(name=f"cairn-restore-{tag}", vcpus=1, ram=256, disk=1)
    network = admin.network.create_network(name=f"cairn-restore-{tag}", provider_network_type="flat",
                                           provider_physical_network=f"restore{tag}", shared=True)
    subnet = admin.network.create_subnet(network_id=network.id, cidr="10.78.0.0/24", ip_version=4,
                                         enable_dhcp=False)
    [original_port] = conn.network.ports(device_id=server.id)
    name = f"restored-{tag}"
    restored = None
    devices: dict[str, str] = {}
    try:
        options = {"restore_type": "selective", "openstack": {
            "instances": [{"id": server.id, "include": True, "name": name, "flavor": {"id": flavor.id},
                           "vdisks": [{"id": server.volume_id, "new_volume_type": "nfs1"}, {"id": f"{server.id}-0"}]}],
            "networks_mapping": {"networks": [{"snapshot_network": {"id": original_port.network_id},
                                               "target_network": {"id": network.id, "subnet": {"id": subnet.id}}}]}}}
        done = _restore(osc, protected, options)
        assert done["status"] == "available", done["error_msg"]
        assert [i["name"] for i in done["instances"]] == [name]
        restored = conn.compute.get_server(done["instances"][0]["id"])
        devices = _volume_devices(conn, restored.id)
        assert restored.status == "ACTIVE" and restored.name == name
        assert restored.flavor["original_name"] == flavor.name and restored.flavor["ram"] == 256
        [port] = conn.network.ports(device_id=restored.id)
        assert port.network_id == network.id and port.fixed_ips[0]["subnet_id"] == subnet.id
        assert port.fixed_ips[0]["ip_address"].startswith("10.78.0.")
        assert _content(STATE / "nfs-export" / f"volume-{devices['vdb']}") == protected.reference["vdb"]
    finally:
        if restored is not None:
            _delete_restored(conn, restored.id, list(devices.values()))
        admin.network.delete_network(network.id)
        admin.compute.delete_flavor(flavor.id)


def test_selective_restore_without_the_boot_disk_boots_the_image_and_restores_the_volume(
        cloud: Cloud, osc: Service, server: Server, protected: Protected) -> None:
    conn = cloud.connect("alpha")
    name = f"no-root-{uuid.uuid4().hex[:8]}"
    options = {"restore_type": "selective", "openstack": {"instances": [
        {"id": server.id, "include": True, "name": name, "restore_boot_disk": False}]}}
    done = _restore(osc, protected, options)
    restored = None
    devices: dict[str, str] = {}
    try:
        assert done["status"] == "available", done["error_msg"]
        restored = conn.compute.get_server(done["instances"][0]["id"])
        devices = _volume_devices(conn, restored.id)
        assert restored.status == "ACTIVE" and restored.name == name
        # the root disk comes from the original image; only the volume was written
        assert restored.image["id"] == conn.image.find_image("cairn-guest").id
        assert [v.id for v in _restored_volumes(conn, done["id"])] == [devices["vdb"]]
        assert "vda" not in devices
        assert _content(STATE / "nfs-export" / f"volume-{devices['vdb']}") == protected.reference["vdb"]
    finally:
        if restored is not None:
            _delete_restored(conn, restored.id, list(devices.values()))


def test_restore_that_fails_after_its_server_is_made_leaves_no_server_volume_or_port(
        cloud: Cloud, osc: Service, server: Server, protected: Protected) -> None:
    conn = cloud.connect("alpha")
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    gate = osc.disks.hold_made(name)
    options = {"restore_type": "selective", "openstack": {"instances": [{"id": server.id, "name": name}]}}
    restore_id = _restore(osc, protected, options, wait=False)["restore"]["id"]
    gate.wait_reached(timeout=300)
    [made] = list(conn.compute.servers(name=name))
    assert made.status == "ACTIVE"
    assert len(_restored_volumes(conn, restore_id)) == 2
    assert list(conn.network.ports(device_id=made.id))
    gate.fail("the test failed this restore with its server made")
    done = wait_until(lambda: (r := _call(osc, protected.token, protected.project, "GET", f"/restores/{restore_id}")
                               ["restore"])["status"] in ("available", "error") and r, timeout=120)
    assert done["status"] == "error" and "the test failed this restore" in done["error_msg"]
    # the clean-up job deletes the server, then its ports and volumes
    wait_until(lambda: not list(conn.compute.servers(name=name)) and not _restored_volumes(conn, restore_id)
               and not list(conn.network.ports(name=f"cairn-restore-{restore_id[:8]}-{name}-0")), timeout=300)
    assert conn.compute.find_server(made.id, ignore_missing=True) is None
    wait_until(lambda: _call(osc, protected.token, protected.project, "GET",
                             f"/workloads/{protected.workload_id}")["workload"]["status"] == "available", timeout=60)


def test_clean_up_finds_a_volume_and_a_port_recorded_before_their_ids_were_known(
        cloud: Cloud, osc: Service, protected: Protected) -> None:
    """A worker that died between Cinder's or Neutron's answer and the record of the id:
    the clean-up finds the resource by the name and mark recorded before it was made."""
    conn = cloud.connect("alpha")
    label = str(uuid.uuid4())
    name = f"orphan-{label[:8]}"
    volume = conn.block_storage.create_volume(size=1, name=name, metadata={"cairn_restore_id": label})
    port = conn.network.create_port(network_id=conn.network.find_network("cairn-net").id, name=name)
    _wait_volume(conn, volume.id, "available")
    for kind in ("port", "volume"):
        osc.runtime.platform.remove_created({"openstack": kind, "project_id": protected.project, "restore": label,
                                             "name": name})
    assert conn.network.find_port(port.id, ignore_missing=True) is None
    wait_until(lambda: _volume_gone(conn, volume.id), timeout=60)


@pytest.mark.parametrize(("field", "instance", "mapping"), [
    ("restore.options.openstack.networks_mapping.networks.target_network", {},
     {"networks": [{"snapshot_network": {"id": "N"}, "target_network": {"id": str(uuid.uuid4())}}]}),
    ("restore.options.openstack.instances.flavor", {"flavor": {"id": "no-such-flavor"}}, None),
    ("restore.options.openstack.instances.vdisks.new_volume_type",
     {"vdisks": [{"id": "V", "new_volume_type": "no-such-type"}]}, None),
])
def test_mapping_to_a_missing_network_flavor_or_volume_type_is_a_400_naming_the_field_and_creates_nothing(
        cloud: Cloud, osc: Service, server: Server, protected: Protected, field: str, instance: dict[str, Any],
        mapping: dict[str, Any] | None) -> None:
    conn = cloud.connect("alpha")
    volumes = {v.id for v in conn.block_storage.volumes()}
    servers = {s.id for s in conn.compute.servers()}
    entry = {"id": server.id, "include": True, **instance}
    for disk in entry.get("vdisks", []):
        disk["id"] = server.volume_id
    openstack_options: dict[str, Any] = {"instances": [entry]}
    if mapping is not None:
        mapping["networks"][0]["snapshot_network"]["id"] = conn.network.find_network("cairn-net").id
        openstack_options["networks_mapping"] = mapping
    before = _call(osc, protected.token, protected.project, "GET", "/restores")["restores"]
    refused = _restore(osc, protected, {"restore_type": "selective", "openstack": openstack_options}, expect=400)
    assert refused["badRequest"]["message"].startswith(f"{field}: ")
    assert _call(osc, protected.token, protected.project, "GET", "/restores")["restores"] == before
    assert {v.id for v in conn.block_storage.volumes()} == volumes
    assert {s.id for s in conn.compute.servers()} == servers


def test_inplace_restore_stops_the_server_through_nova_writes_its_disks_and_starts_it(
        cloud: Cloud, osc: Service, server: Server, protected: Protected) -> None:
    conn = cloud.connect("alpha")
    server.console.write(600, 2, "vda")
    server.console.write(700, 2, "vdb")
    disks = server.disk_paths()
    assert _content(disks["vda"]) != protected.reference["vda"]
    done = _restore(osc, protected, {"restore_type": "inplace"})
    assert done["status"] == "available", done["error_msg"]
    assert [i["id"] for i in done["instances"]] == [server.id]
    assert conn.compute.get_server(server.id).status == "ACTIVE"
    domain = import_libvirt().open("qemu:///system").lookupByUUIDString(server.id)
    assert domain.isActive()
    assert domain.listAllCheckpoints() == []  # the new files hold no bitmap: history dropped
    for device, path in disks.items():
        assert _content(path) == protected.reference[device], device
    assert _volume_devices(conn, server.id) == {"vdb": server.volume_id}


def _backing(path: Path) -> str | None:
    done = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout).get("backing-filename")


def test_instant_restore_boots_a_server_on_the_snapshot_then_copies_it_into_its_volumes(
        cloud: Cloud, osc: Service, server: Server, protected: Protected) -> None:
    conn = cloud.connect("alpha")
    admin = cloud.connect("admin")
    gate = osc.disks.hold_instant_copy()  # the server runs on the snapshot; the copy waits
    restore_id = _restore(osc, protected, {"oneclickrestore": True, "instant": True}, wait=False)["restore"]["id"]
    restored_id = None
    devices: dict[str, str] = {}
    try:
        gate.wait_reached(timeout=300)
        running = _call(osc, protected.token, protected.project, "GET", f"/restores/{restore_id}")["restore"]
        assert running["status"] not in ("available", "error") and running["progress_percent"] < 100
        [made] = running["instances"]
        restored_id = made["id"]
        restored = conn.compute.get_server(restored_id)
        devices = _volume_devices(conn, restored_id)
        assert restored.status == "ACTIVE" and sorted(devices) == ["vda", "vdb"]
        files = {device: STATE / "nfs-export" / f"volume-{volume_id}" for device, volume_id in devices.items()}
        for device, path in files.items():  # each volume reads through to the snapshot
            assert _backing(path) == f"{path.name}.{restore_id}", device
        # booted from its restored root volume before a byte of it was copied in
        wait_until(lambda: "CAIRN-READY" in (admin.compute.get_server_console_output(restored_id).get("output")
                                             or ""), timeout=180)
        gate.release()

        done = wait_until(lambda: (r := _call(osc, protected.token, protected.project, "GET",
                                              f"/restores/{restore_id}")["restore"])["status"]
                          in ("available", "error") and r, timeout=600)
        assert done["status"] == "available", done["error_msg"]
        assert done["progress_percent"] == 100 and [i["id"] for i in done["instances"]] == [restored_id]
        for device, path in files.items():  # the volumes stand alone, as Cinder made them
            assert _backing(path) is None, device
            assert not Path(f"{path}.{restore_id}").exists(), device
        conn.compute.stop_server(restored_id)  # QEMU writes its qcow2 metadata back as the guest stops
        wait_until(lambda: conn.compute.get_server(restored_id).status == "SHUTOFF", timeout=180)
        for device, path in files.items():
            assert _content(path) == protected.reference[device], device
        wait_until(lambda: _call(osc, protected.token, protected.project, "GET", f"/workloads/{protected.workload_id}")
                   ["workload"]["status"] == "available", timeout=60)
    finally:
        gate.release()
        if restored_id is not None:
            _delete_restored(conn, restored_id, list(devices.values()))


def test_a_target_that_goes_away_fails_the_instant_restore_and_its_clean_up_deletes_what_it_made(
        cloud: Cloud, osc: Service, server: Server, protected: Protected) -> None:
    conn = cloud.connect("alpha")
    name = f"instant-{uuid.uuid4().hex[:8]}"
    target = osc.data_dir / "targets" / "default"
    moved = target.with_name("default-away")
    gate = osc.disks.hold_instant(64 * MiB)  # the first disk's export stops there: the data at 100 MiB is past it
    options = {"restore_type": "selective", "instant": True,
               "openstack": {"instances": [{"id": server.id, "include": True, "name": name}]}}
    restore_id = _restore(osc, protected, options, wait=False)["restore"]["id"]
    try:
        gate.wait_reached(timeout=300)
        [made] = list(conn.compute.servers(name=name))
        middles = list((STATE / "nfs-export").glob(f"volume-*.{restore_id}"))
        assert len(middles) == 2
        os.rename(target, moved)
        try:
            gate.release()
            done = wait_until(lambda: (r := _call(osc, protected.token, protected.project, "GET",
                                                  f"/restores/{restore_id}")["restore"])["status"]
                              in ("available", "error") and r, timeout=300)
        finally:
            os.rename(moved, target)
    finally:
        gate.release()
    assert done["status"] == "error" and "background copy stopped" in done["error_msg"], done["error_msg"]
    assert "backup target" in done["error_msg"] and done["instances"] == []
    # the clean-up job deletes the server, its ports, its volumes and the files between them and the snapshot
    wait_until(lambda: not list(conn.compute.servers(name=name)) and not _restored_volumes(conn, restore_id)
               and not list(conn.network.ports(name=f"cairn-restore-{restore_id[:8]}-{name}-0")), timeout=300)
    assert conn.compute.find_server(made.id, ignore_missing=True) is None
    assert not [m for m in middles if m.exists()]
    assert conn.compute.get_server(server.id).status == "ACTIVE"  # the original is untouched
    wait_until(lambda: _call(osc, protected.token, protected.project, "GET", f"/workloads/{protected.workload_id}")
               ["workload"]["status"] == "available", timeout=60)
