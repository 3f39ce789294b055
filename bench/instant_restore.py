"""Time from a restore request to a booted guest: instant restore against a full restore.

    .venv/bin/python bench/instant_restore.py [--size 4G] [--workdir /var/tmp/cairn-bench]

As root, with libvirtd running (`scripts/start-services.sh`). One run:

1. **Disk.** The cached ext4 image of `bench/disk_image.py` (this machine's /usr up to
   70% of the disk), converted to a qcow2 file: the guest's vda.
2. **Snapshot.** The guest (tests/platforms/guest.py: Debian's cloud kernel, a busybox
   initramfs, software emulation) runs; `cairn serve` with `platform = libvirt` takes a
   full snapshot of it, and the guest is shut off.
3. **Full restore** (`oneclickrestore`): every chunk is written into a new qcow2 file,
   then the new domain is defined and started.
4. **Instant restore** (`oneclickrestore` + `instant`): the new domain starts at once on
   a qcow2 overlay backed by the snapshot over NBD, and QEMU copies the rest in.

The page cache is dropped before each restore (as root). For each: seconds from
`POST .../restores` to the restored guest printing `CAIRN-READY`
on its serial console (its init ran: the kernel booted and found its disk), and to the
restore being `available` (for the instant restore: the background copy complete, the
disk free of the target). The guest's console socket is connected as soon as QEMU
creates it, so no boot message is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.disk_image import format_size, parse_size  # noqa: E402
from bench.live import Service, bench_guest  # noqa: E402
from cairn.platforms.libvirt_domain import beside  # noqa: E402
from tests.platforms.guest import GuestConsole  # noqa: E402

MiB = 1 << 20


def drop_caches() -> None:
    """Both restores read the repository from the disk, not from what the snapshot left
    in the page cache (as root; otherwise both read it warm)."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass


def restore(service: Service, workload: str, snapshot: str, console: Path, options: dict[str, Any]
            ) -> tuple[float, float, dict[str, Any]]:
    """(seconds to the booted guest, seconds to `available`, the restore) for one restore."""
    path = f"{service.base}/workloads/{workload}/snapshots/{snapshot}/restores"
    drop_caches()
    started = time.perf_counter()
    response = service.client.post(path, json={"restore": {"name": "bench", "options": options}})
    response.raise_for_status()
    restore_id = response.json()["restore"]["id"]
    guest = GuestConsole(Path(beside(str(console), restore_id[:8])), timeout=600)
    try:
        guest.wait_for("CAIRN-READY")
        booted = time.perf_counter() - started
    finally:
        guest.close()
    body = service.wait_finished(f"{path}/{restore_id}", "restore")
    complete = time.perf_counter() - started
    if body["status"] != "available":
        raise SystemExit(f"the restore failed: {body['error_msg']}")
    service.wait_available(workload)
    return booted, complete, body


def remove_restored(libvirt: Any, conn: Any, body: dict[str, Any]) -> None:
    for instance in body["instances"]:
        domain = conn.lookupByUUIDString(instance["id"])
        xml = domain.XMLDesc(0)
        if domain.isActive():
            domain.destroy()
        domain.undefine()
        for part in xml.split("<source file='")[1:]:
            Path(part.split("'")[0]).unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4G")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/cairn-bench"))
    args = parser.parse_args()
    size = parse_size(args.size)
    figures: dict[str, tuple[float, float]] = {}
    with bench_guest(args.workdir.resolve(), size, "instant") as guest:
        image, here, domain, console_path = guest.image, guest.directory, guest.domain, guest.console_path
        service = None
        try:
            domain.create()
            console = GuestConsole(console_path)
            console.wait_for("CAIRN-READY")
            service = Service(here / "data", "libvirt")
            workload = service.workload(domain.UUIDString())
            _seconds, snapshot = service.snapshot(workload, "full")
            console.close()
            domain.destroy()  # the original is gone: what a restore is for
            for label, options in (("full restore", {"oneclickrestore": True}),
                                   ("instant restore", {"oneclickrestore": True, "instant": True})):
                booted, complete, body = restore(service, workload, snapshot["id"], console_path, options)
                figures[label] = (booted, complete)
                remove_restored(guest.libvirt, guest.conn, body)
        finally:
            if service is not None:
                service.close()

    print(f"disk: {format_size(size)} qcow2, {image.data_bytes / MiB:.0f} MiB of /usr files in ext4, "
          f"{image.allocated / MiB:.0f} MiB allocated; nproc {os.cpu_count()}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'':<18}{'to booted guest s':>19}{'to restore complete s':>23}")
    for label, (booted, complete) in figures.items():
        print(f"{label:<18}{booted:19.2f}{complete:23.2f}")
    full_boot, instant_boot = figures["full restore"][0], figures["instant restore"][0]
    print(f"instant restore: the guest booted {full_boot / instant_boot:.1f}x sooner "
          f"({instant_boot:.1f} s against {full_boot:.1f} s)")
    print(json.dumps({k: {"booted_s": round(b, 3), "complete_s": round(c, 3)} for k, (b, c) in figures.items()}))


if __name__ == "__main__":
    main()
