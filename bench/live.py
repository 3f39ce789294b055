"""Live changed-block tracking against reading the whole disk: the same 4 GiB disk
backed up by the `libvirt` platform (a running guest, checkpoints, dirty bitmaps over
NBD) and by the `local` platform (no change map: every data extent read and hashed).

    .venv/bin/python bench/live.py [--size 4G] [--changed 1] [--workdir /var/tmp/cairn-bench]

As root, with libvirtd running (`scripts/start-services.sh`). One run:

1. **Disk.** The cached ext4 image of `bench/disk_image.py` (this machine's /usr up to
   70% of the disk), converted to a qcow2 file: the guest's vda.
2. **local full**: `cairn serve` with the local platform backs the file up while the
   guest is shut off.
3. **libvirt full**: the guest (tests/platforms/guest.py: Debian's cloud kernel and a
   busybox initramfs, software emulation) is started; `cairn serve` with
   `platform = libvirt` takes a full snapshot of the running domain.
4. **Changes.** The guest rewrites `--changed` percent of the disk: 1 MiB writes of
   random data at distinct, seeded, MiB-aligned offsets, each synced.
5. **libvirt incremental** of the running domain.
6. **local incremental**: the guest is shut off and the local platform backs up the same
   file again.

Each time is wall time from `POST /workloads/{id}` to the snapshot being `available`,
polled every 20 ms; "read" is the snapshot's `bytes_read`. Printed: the four figures
side by side and the targets (live incremental reads ≤ 2% of the disk and takes ≤ 10%
of the live full's time), PASS or FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.disk_image import DiskImage, build_image, format_size, parse_size  # noqa: E402
from cairn.platforms.libvirt import import_libvirt  # noqa: E402
from tests.platforms.guest import GuestConsole, build_guest, domain_xml  # noqa: E402

CAIRN = str(Path(sys.executable).with_name("cairn"))
MiB = 1 << 20
PROJECT = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """`cairn serve` on its own data directory, and an HTTP client for one project."""

    def __init__(self, data: Path, platform: str) -> None:
        shutil.rmtree(data, ignore_errors=True)
        self.env = {**os.environ, "CAIRN_DATA_DIR": str(data), "CAIRN_LOG_LEVEL": "WARNING",
                    "CAIRN_PLATFORM": platform}
        self.token = self.run("token", "create", "--project", PROJECT, "--user", "bench")
        port = free_port()
        self.server = subprocess.Popen([CAIRN, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                       env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}/v1/{PROJECT}"
        self.client = httpx.Client(headers={"X-Auth-Token": self.token}, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client.get(f"{self.base}/workloads")
                return
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def run(self, *args: str) -> str:
        return subprocess.run([CAIRN, *args], check=True, capture_output=True, text=True,
                              env=self.env).stdout.strip()

    def workload(self, instance: str) -> str:
        response = self.client.post(f"{self.base}/workloads", json={"workload": {
            "name": "bench", "instances": [{"instance-id": instance}]}})
        response.raise_for_status()
        workload = str(response.json()["workload"]["id"])
        self.wait_available(workload)
        return workload

    def wait_available(self, workload: str) -> None:
        while (status := self.client.get(f"{self.base}/workloads/{workload}").json()["workload"]["status"]) \
                != "available":
            if status == "error":
                raise SystemExit("the workload went to error")
            time.sleep(0.05)

    def snapshot(self, workload: str, kind: str) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        response = self.client.post(f"{self.base}/workloads/{workload}",
                                    json={"snapshot": {"name": kind, "snapshot_type": kind}})
        response.raise_for_status()
        snapshot_id = response.json()["snapshot"]["id"]
        body = self.wait_finished(f"{self.base}/snapshots/{snapshot_id}", "snapshot")
        elapsed = time.perf_counter() - started
        if body["status"] != "available":
            raise SystemExit(f"the {kind} snapshot failed: {body['error_msg']}")
        self.wait_available(workload)
        return elapsed, body

    def wait_finished(self, url: str, kind: str) -> dict[str, Any]:
        """Poll a snapshot or restore (`kind`) at `url` every 20 ms until it is available
        or in error; its body."""
        while True:
            body: dict[str, Any] = self.client.get(url).json()[kind]
            if body["status"] in ("available", "error"):
                return body
            time.sleep(0.02)

    def close(self) -> None:
        self.client.close()
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(timeout=60)


@dataclass
class BenchGuest:
    """The test guest defined in libvirt on a qcow2 copy of the benchmark's disk image."""

    image: DiskImage
    directory: Path  # the run's own directory: the disk, the console socket, data dirs
    disk: Path
    console_path: Path
    libvirt: Any
    conn: Any
    domain: Any


@contextmanager
def bench_guest(workdir: Path, size: int, run: str) -> Iterator[BenchGuest]:
    """The guest of tests/platforms/guest.py, shut off, on `run`'s own copy of the cached
    image of `size`; destroyed and undefined (its checkpoints' metadata first) at the end."""
    image = build_image(workdir, size)
    directory = workdir / run
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    disk = directory / "vda.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(image.path), str(disk)], check=True)
    libvirt = import_libvirt()
    conn = libvirt.open("qemu:///system")
    console_path = directory / "console.sock"
    domain = conn.defineXML(domain_xml(f"cairn-bench-{uuid.uuid4().hex[:8]}", build_guest(), disk, console_path,
                                       project=PROJECT))
    try:
        yield BenchGuest(image, directory, disk, console_path, libvirt, conn, domain)
    finally:
        if domain.isActive():
            domain.destroy()
        for checkpoint in domain.listAllCheckpoints():
            checkpoint.delete(libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY)
        domain.undefine()
        conn.close()


def bytes_read(snapshot: dict[str, Any]) -> int:
    return sum(d["bytes_read"] for i in snapshot["instances"] for d in i["vdisks"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4G")
    parser.add_argument("--changed", type=float, default=1.0, help="percent of the disk the guest rewrites")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/cairn-bench"))
    args = parser.parse_args()
    size = parse_size(args.size)
    figures: dict[str, tuple[float, int]] = {}
    with bench_guest(args.workdir.resolve(), size, "live") as guest:
        image, live, disk, domain = guest.image, guest.directory, guest.disk, guest.domain
        local = libvirt_service = None
        try:
            local = Service(live / "local-data", "local")
            local_workload = local.workload(local.run("instance", "add", "--project", PROJECT, "--name", "vda",
                                                      "--disk", str(disk)))
            seconds, body = local.snapshot(local_workload, "full")
            figures["local full"] = (seconds, bytes_read(body))

            domain.create()
            console = GuestConsole(guest.console_path)
            console.wait_for("CAIRN-READY")
            libvirt_service = Service(live / "libvirt-data", "libvirt")
            live_workload = libvirt_service.workload(domain.UUIDString())
            seconds, body = libvirt_service.snapshot(live_workload, "full")
            figures["libvirt full"] = (seconds, bytes_read(body))

            writes = max(1, int(size * args.changed / 100) // MiB)
            rng = random.Random(20)
            for offset in sorted(rng.sample(range(size // MiB), writes)):
                console.write(offset, 1)
            seconds, body = libvirt_service.snapshot(live_workload, "incremental")
            figures["libvirt incremental"] = (seconds, bytes_read(body))
            if body["snapshot_type"] != "incremental":
                raise SystemExit(f"the live incremental fell back to a full: {body['warning_msg']}")

            console.close()
            domain.destroy()
            seconds, body = local.snapshot(local_workload, "incremental")
            figures["local incremental"] = (seconds, bytes_read(body))
        finally:
            for service in (local, libvirt_service):
                if service is not None:
                    service.close()

    print(f"disk: {format_size(size)} qcow2, {image.data_bytes / MiB:.0f} MiB of /usr files in ext4; "
          f"guest rewrote {writes} MiB ({args.changed:g}%); nproc {os.cpu_count()}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'':<22}{'wall s':>9}{'read MiB':>11}{'read % of disk':>16}")
    for label, (seconds, read) in figures.items():
        print(f"{label:<22}{seconds:9.2f}{read / MiB:11.1f}{100 * read / size:16.2f}")
    inc_s, inc_read = figures["libvirt incremental"]
    full_s, _ = figures["libvirt full"]
    local_inc_s, local_inc_read = figures["local incremental"]
    read_pct = 100 * inc_read / size
    time_pct = 100 * inc_s / full_s
    print(f"live incremental vs local incremental: {local_inc_s / inc_s:.1f}x faster, "
          f"{local_inc_read / max(inc_read, 1):.0f}x fewer bytes read")
    print(f"target: live incremental reads <= 2% of the disk: {read_pct:.2f}%  "
          f"{'PASS' if read_pct <= 2 else 'FAIL'}")
    print(f"target: live incremental takes <= 10% of the live full's time: {time_pct:.1f}%  "
          f"{'PASS' if time_pct <= 10 else 'FAIL'}")
    print(json.dumps({k: {"seconds": round(s, 3), "bytes_read": r} for k, (s, r) in figures.items()}))


if __name__ == "__main__":
    main()
