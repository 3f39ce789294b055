"""Cairn against Cinder's own backup, on the development OpenStack: the same server, the
same 1 GiB volume, one run.

    .venv/bin/python bench/openstack.py [--size 1G] [--changed 1] [--workdir /var/tmp/cairn-bench]

As root, with the development cloud installed (`scripts/setup.sh`; the bench starts it
with `scripts/openstack-dev.sh start`, which also runs cinder-backup with Cinder's posix
backup driver into `<state>/cinder/backups`). One run:

1. **Server and volume.** A server of project `cairn-alpha` booted from `cairn-guest`
   (flavor `cairn.tiny`, network `cairn-net`), and a new Cinder volume of `--size` whose
   file on the NFS export (qcow2: the development Cinder's `nfs_qcow2_volumes`) is given
   the cached ext4 image of bench/disk_image.py (this machine's /usr, 70% of the disk):
   real files, not random bytes.
2. **Cinder full**: `volume backup create` of the volume (detached: the posix driver reads
   an attached NFS volume only through a temporary snapshot Nova must assist); time from
   the request to the backup `available`.
3. **Cairn full**: the volume is attached; `cairn serve` with `platform = openstack`
   protects the server (its root disk and the volume) and takes a full snapshot; time
   from `POST /workloads/{id}` to the snapshot `available`.
4. **Changes**: `--changed` percent of the volume is rewritten (1 MiB random writes at
   seeded places, into the detached volume's file through qemu-nbd, so that its dirty
   bitmap sees them as it sees a guest's writes).
5. **Cinder incremental** (`--incremental`) and **Cairn incremental**, as in 2 and 3.
6. **Cinder restore** of the incremental backup into a new volume (to `available`), and
   **Cairn oneclick restore** of the incremental snapshot (to the restore `available`:
   new volumes written and a new server created on them). Both restored volumes are
   compared with the source volume, bit for bit, as the guest sees them.
7. **Cairn instant restore** of the same snapshot (`"instant": true`): the time to the
   new server running on the snapshot, and to its data copied into its volumes (the
   restore `available`); its volume is compared with the source too.

"Stored" is the bytes the backups occupy: the posix driver's container directory, and
Cairn's backup target directory (packs, indexes, manifests, catalog). Ratios are Cairn's
figure over Cinder's: below 1 is Cairn faster or smaller. Cairn's figures include the
root disk (a small qcow2 over the image) and, for the restore, a server boot.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's directory comes first on the path, and this file would
# shadow openstacksdk's `openstack` package: the project's root takes its place.
sys.path[0] = str(ROOT)
import httpx  # noqa: E402
import openstack  # noqa: E402

from bench.disk_image import build_image, format_size, parse_size, scatter_writes  # noqa: E402
from cairn.engine.qemu import NbdExport  # noqa: E402
from cairn.platforms.disk_probe import probe_disk  # noqa: E402
from cairn.platforms.libvirt import import_libvirt  # noqa: E402

CAIRN = str(Path(sys.executable).with_name("cairn"))
STATE = Path(os.environ.get("CAIRN_OPENSTACK_STATE", "/var/tmp/cairn-openstack"))
EXPORT = STATE / "nfs-export"
BACKUPS = STATE / "cinder" / "backups"
MiB = 1 << 20
GiB = 1 << 30


def wait(what: str, check: Callable[[], Any], timeout: float = 900, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)
    return value


def connect(clouds: dict[str, Any], name: str) -> Any:
    auth = clouds[name]["auth"]
    return openstack.connect(auth_url=auth["auth_url"], username=auth["username"], password=auth["password"],
                             project_name=auth["project_name"], user_domain_name="Default",
                             project_domain_name="Default", region_name="RegionOne",
                             load_envvars=False, load_yaml_config=False)


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def digest(path: Path, size: int) -> str:
    """sha256 of the first `size` bytes of a disk as the guest sees it (a qcow2 volume file
    is read as raw through qemu-img), zero-padded where it ends before `size`."""
    if probe_disk(str(path))[0] != "raw":
        flat = path.with_name(f".{path.name}.bench-flat")
        subprocess.run(["qemu-img", "convert", "-U", "-q", "-O", "raw", str(path), str(flat)], check=True)
        try:
            return digest(flat, size)
        finally:
            flat.unlink()
    hashed = hashlib.sha256()
    left = size
    with open(path, "rb") as handle:
        while left and (block := handle.read(min(left, 8 * MiB))):
            hashed.update(block)
            left -= len(block)
    zeros = bytes(8 * MiB)
    while left:
        hashed.update(zeros[:min(left, len(zeros))])
        left -= min(left, len(zeros))
    return hashed.hexdigest()


def fill_volume(volume_file: Path, content: Path) -> None:
    """Write the raw image `content` into a volume's file, in the file's own format."""
    fmt = probe_disk(str(volume_file))[0]
    subprocess.run(["qemu-img", "convert", "-n", "-q", "-f", "raw", "-O", fmt, str(content), str(volume_file)],
                   check=True)


def copy_ranges(volume_file: Path, content: Path, ranges: list[list[int]]) -> None:
    """Copy `ranges` of the raw image `content` into a volume's file; a qcow2 file is
    written through qemu-nbd, so that its persistent dirty bitmaps record the writes."""
    fmt = probe_disk(str(volume_file))[0]
    with open(content, "rb") as source:
        if fmt == "raw":
            with open(volume_file, "r+b") as out:
                for offset, length in ranges:
                    out.seek(offset)
                    out.write(os.pread(source.fileno(), length, offset))
                os.fsync(out.fileno())
            return
        export = NbdExport(str(volume_file), fmt, readonly=False)
        try:
            for offset, length in ranges:
                export.client.pwrite(os.pread(source.fileno(), length, offset), offset)
            export.client.flush()
        finally:
            export.close()


def server_status(conn: Any, server_id: str, status: str) -> bool:
    return bool(conn.compute.get_server(server_id).status == status)


def server_gone(conn: Any, server_id: str) -> bool:
    return conn.compute.find_server(server_id, ignore_missing=True) is None


def backup_gone(conn: Any, backup_id: str) -> bool:
    try:  # Cinder refuses to find backups by name filter, as find_backup would
        conn.block_storage.get_backup(backup_id)
    except openstack.exceptions.NotFoundException:
        return True
    return False


def volume_settled(conn: Any, volume_id: str) -> bool:
    """Gone (a restored boot volume may go with its server) or no longer attached."""
    found = conn.block_storage.find_volume(volume_id, ignore_missing=True)
    return found is None or found.status in ("available", "error")


def volume_status(conn: Any, volume_id: str, status: str, failures: tuple[str, ...] = ("error",)) -> Any:
    def reached() -> Any:
        volume = conn.block_storage.get_volume(volume_id)
        if volume.status in failures:
            raise SystemExit(f"volume {volume_id} went to {volume.status}")
        return volume.status == status and volume
    return wait(f"volume {volume_id} {status}", reached)


class CinderBackup:
    """Cinder's `volume backup` of one volume, timed."""

    def __init__(self, conn: Any, volume_id: str) -> None:
        self.conn = conn
        self.volume_id = volume_id
        self.backups: list[str] = []

    def backup(self, incremental: bool) -> float:
        started = time.perf_counter()
        made = self.conn.block_storage.create_backup(volume_id=self.volume_id, name=f"bench-{len(self.backups)}",
                                                     is_incremental=incremental)
        self.backups.append(made.id)
        self._backup_available(made.id)
        return time.perf_counter() - started

    def restore(self) -> tuple[float, str]:
        started = time.perf_counter()
        answer = self.conn.block_storage.restore_backup(self.backups[-1], name="bench-cinder-restored")
        volume_id = answer["volume_id"]
        volume_status(self.conn, volume_id, "available", ("error", "error_restoring"))
        elapsed = time.perf_counter() - started
        self._backup_available(self.backups[-1])
        return elapsed, volume_id

    def _backup_available(self, backup_id: str) -> None:
        def reached() -> bool:
            backup = self.conn.block_storage.get_backup(backup_id)
            if backup.status == "error":
                raise SystemExit(f"Cinder backup failed: {backup.fail_reason}")
            return bool(backup.status == "available")
        wait(f"backup {backup_id}", reached)

    def stored(self) -> int:
        """Bytes of this volume's backups in the posix driver's directory (one container each)."""
        return sum(tree_bytes(BACKUPS / self.conn.block_storage.get_backup(b).container) for b in self.backups)

    def delete(self) -> None:
        for backup_id in reversed(self.backups):  # incrementals before what they depend on
            self.conn.block_storage.delete_backup(backup_id, ignore_missing=True)
            wait(f"backup {backup_id} deleted", partial(backup_gone, self.conn, backup_id))


class Cairn:
    """`cairn serve` with platform = openstack against the development Keystone."""

    def __init__(self, data: Path, clouds: dict[str, Any]) -> None:
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        self.data = data
        service = clouds["cairn"]["auth"]
        config = data / "cairn.conf"
        config.write_text(f"""[DEFAULT]
data_dir = {data}
platform = openstack
auth_strategy = keystone
log_level = WARNING
openstack_volume_mounts = {STATE / "nova" / "mnt"}, {STATE / "cinder" / "mnt"}
[keystone_authtoken]
auth_url = {service['auth_url']}
username = {service['username']}
password = {service['password']}
project_name = {service['project_name']}
region_name = RegionOne
interface = public
""")
        port = free_port()
        with open(data / "serve.log", "wb") as log:
            self.server = subprocess.Popen([CAIRN, "serve", "--config-file", str(config), "--host", "127.0.0.1",
                                            "--port", str(port)], stdout=subprocess.DEVNULL, stderr=log)
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(timeout=120)
        wait("cairn serve", self._answers, timeout=120)

    def _answers(self) -> bool:
        try:
            self.client.get(f"{self.url}/")
            return True
        except httpx.TransportError:
            return False

    def call(self, token: str, project: str, method: str, path: str, body: Any = None) -> Any:
        response = self.client.request(method, f"{self.url}/v1/{project}{path}", json=body,
                                       headers={"X-Auth-Token": token})
        if response.status_code >= 400:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def workload(self, token: str, project: str, server_id: str) -> str:
        made = self.call(token, project, "POST", "/workloads",
                         {"workload": {"name": "bench", "instances": [{"instance-id": server_id}]}})["workload"]
        self.wait_workload(token, project, made["id"])
        return str(made["id"])

    def wait_workload(self, token: str, project: str, workload_id: str) -> None:
        def available() -> bool:
            status = self.call(token, project, "GET", f"/workloads/{workload_id}")["workload"]["status"]
            if status == "error":
                raise SystemExit("the workload went to error")
            return bool(status == "available")
        wait("the workload", available)

    def snapshot(self, token: str, project: str, workload_id: str, kind: str) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        made = self.call(token, project, "POST", f"/workloads/{workload_id}",
                         {"snapshot": {"name": kind, "snapshot_type": kind}})["snapshot"]
        body = wait("the snapshot", lambda: (s := self.call(token, project, "GET", f"/snapshots/{made['id']}")
                                              ["snapshot"])["status"] in ("available", "error") and s,
                    interval=0.05)
        elapsed = time.perf_counter() - started
        if body["status"] != "available":
            raise SystemExit(f"the {kind} snapshot failed: {body['error_msg']}")
        self.wait_workload(token, project, workload_id)
        return elapsed, dict(body)

    def restore(self, token: str, project: str, workload_id: str, snapshot_id: str,
                instant: bool = False) -> tuple[float, float, dict[str, Any]]:
        """A oneclick restore: (seconds to the new server running, seconds to the restore
        `available`, the restore). A full restore lists its server once it is done; an
        instant one as soon as the server is ACTIVE, while its data is still copied in."""
        started = time.perf_counter()
        path = f"/workloads/{workload_id}/snapshots/{snapshot_id}/restores"
        made = self.call(token, project, "POST", path, {"restore": {"name": "bench", "options": {
            "type": "openstack", "oneclickrestore": True, "instant": instant}}})["restore"]
        running: list[float] = []

        def finished() -> Any:
            body = self.call(token, project, "GET", f"{path}/{made['id']}")["restore"]
            if body["instances"] and not running:
                running.append(time.perf_counter() - started)
            return body["status"] in ("available", "error") and body

        body = wait("the restore", finished, interval=0.05)
        elapsed = time.perf_counter() - started
        if body["status"] != "available":
            raise SystemExit(f"the restore failed: {body['error_msg']}")
        return (running or [elapsed])[0], elapsed, dict(body)

    def stored(self) -> int:
        return tree_bytes(self.data / "targets")

    def close(self) -> None:
        self.client.close()
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(timeout=60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Row:
    label: str
    cairn_s: float
    cinder_s: float

    def line(self) -> str:
        return f"{self.label:<14}{self.cairn_s:10.2f}{self.cinder_s:10.2f}{self.cairn_s / self.cinder_s:9.2f}"


def drop_checkpoints(server_id: str) -> None:
    """Nova does not undefine a domain that has checkpoints (Cairn's): drop their metadata."""
    libvirt = import_libvirt()
    try:
        domain = libvirt.open("qemu:///system").lookupByUUIDString(server_id)
    except libvirt.libvirtError:
        return
    for checkpoint in domain.listAllCheckpoints():
        checkpoint.delete(libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G", help="the volume's size, whole GiB")
    parser.add_argument("--changed", type=float, default=1.0, help="percent of the volume rewritten")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/cairn-bench"))
    args = parser.parse_args()
    size = parse_size(args.size)
    if size % GiB:
        raise SystemExit("--size: Cinder volumes are whole GiB")
    workdir = args.workdir.resolve()
    image = build_image(workdir, size)
    subprocess.run([str(ROOT / "scripts" / "openstack-dev.sh"), "start"], check=True)
    clouds = json.loads((STATE / "clouds.yaml").read_text())["clouds"]
    conn = connect(clouds, "alpha")
    project = conn.current_project_id
    name = f"cairn-bench-{uuid.uuid4().hex[:8]}"
    server = conn.compute.create_server(name=name, image_id=conn.image.find_image("cairn-guest").id,
                                        flavor_id=conn.compute.find_flavor("cairn.tiny").id,
                                        networks=[{"uuid": conn.network.find_network("cairn-net").id}])
    volume = conn.block_storage.create_volume(size=size // GiB, name=f"{name}-data")
    cinder = CinderBackup(conn, volume.id)
    cairn: Cairn | None = None
    made_servers: list[str] = []
    made_volumes: list[str] = []
    rows: list[Row] = []
    try:
        conn.compute.wait_for_server(server, status="ACTIVE", wait=600)
        volume_status(conn, volume.id, "available")
        source = EXPORT / f"volume-{volume.id}"
        # the volume's content as a raw file: the changes are made there first, then copied in
        content = workdir / "openstack-volume.raw"
        subprocess.run(["cp", "--sparse=always", str(image.path), str(content)], check=True)
        fill_volume(source, content)

        cinder_full = cinder.backup(incremental=False)
        conn.compute.create_volume_attachment(server, volume_id=volume.id)
        volume_status(conn, volume.id, "in-use")
        cairn = Cairn(workdir / "openstack-cairn", clouds)
        token = conn.auth_token
        workload_id = cairn.workload(token, project, server.id)
        cairn_full, _ = cairn.snapshot(token, project, workload_id, "full")
        rows.append(Row("full", cairn_full, cinder_full))

        conn.compute.delete_volume_attachment(volume.id, server.id)
        volume_status(conn, volume.id, "available")
        writes = max(1, int(size * args.changed / 100) // MiB)
        copy_ranges(source, content, scatter_writes(content, count=writes))
        reference = digest(content, size)
        if digest(source, size) != reference:
            raise SystemExit("the changed volume does not hold the changed content")
        cinder_incremental = cinder.backup(incremental=True)
        conn.compute.create_volume_attachment(server, volume_id=volume.id)
        volume_status(conn, volume.id, "in-use")
        cairn_incremental, last = cairn.snapshot(token, project, workload_id, "incremental")
        rows.append(Row("incremental", cairn_incremental, cinder_incremental))

        cinder_restore, cinder_volume = cinder.restore()
        made_volumes.append(cinder_volume)
        _, cairn_restore, restored = cairn.restore(token, project, workload_id, last["id"])
        rows.append(Row("restore", cairn_restore, cinder_restore))
        instant_running, instant_done, instant = cairn.restore(token, project, workload_id, last["id"],
                                                               instant=True)
        checks = {"cinder": digest(EXPORT / f"volume-{cinder_volume}", size) == reference}
        for label, made in (("cairn", restored), ("cairn instant", instant)):
            server_id = made["instances"][0]["id"]
            made_servers.append(server_id)
            attached = [a.volume_id for a in conn.compute.volume_attachments(server_id)]
            made_volumes.extend(attached)
            # stopped first: QEMU writes the qcow2 metadata of what it copied back as the guest stops
            conn.compute.stop_server(server_id)
            wait(f"server {server_id} stopped", partial(server_status, conn, server_id, "SHUTOFF"))
            checks[label] = any(digest(EXPORT / f"volume-{v}", size) == reference for v in attached)
        stored = {"cairn": cairn.stored(), "cinder": cinder.stored()}
    finally:
        if cairn is not None:
            cairn.close()
        for server_id in [*made_servers, server.id]:
            drop_checkpoints(server_id)
            conn.compute.delete_server(server_id, ignore_missing=True)
        for server_id in [*made_servers, server.id]:
            wait(f"server {server_id} deleted", partial(server_gone, conn, server_id))
        cinder.delete()
        for volume_id in [*made_volumes, volume.id]:  # a restored boot volume may go with its server
            wait(f"volume {volume_id} detached", partial(volume_settled, conn, volume_id))
            conn.block_storage.delete_volume(volume_id, ignore_missing=True)

    print(f"volume: {format_size(size)}, {image.data_bytes / MiB:.0f} MiB of /usr files in ext4; "
          f"{writes} MiB rewritten ({args.changed:g}%); nproc {os.cpu_count()}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'':<14}{'Cairn s':>10}{'Cinder s':>10}{'ratio':>9}")
    for row in rows:
        print(row.line())
    print(f"{'stored MiB':<14}{stored['cairn'] / MiB:10.1f}{stored['cinder'] / MiB:10.1f}"
          f"{stored['cairn'] / stored['cinder']:9.2f}")
    print(f"instant restore: server running after {instant_running:.2f} s, data copied in after "
          f"{instant_done:.2f} s (the full restore: {cairn_restore:.2f} s)")
    print("restored volumes equal the source: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in checks.items()))
    if not all(checks.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
