"""Faults during snapshots: cancel, unlock, a disk that fails mid-read, a full target,
and the whole service killed mid-snapshot. Each ends with the target verifying and the
earlier snapshots restoring bit for bit.

A test that acts while a snapshot runs holds its disk's reading at a byte
(`tests/pausing.py`), acts once the read waits there, and then lets it go on: the
snapshot cannot finish before the test acts, however fast the machine."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cairn.config import TargetSettings
from tests import swiftdev
from tests.api.test_snapshots import (
    MiB,
    register,
    restore,
    restored_disks,
    sha256,
    snapshot,
    take_snapshot,
    wait_snapshot,
)
from tests.api.test_workloads import create_workload, show, wait_status
from tests.conftest import Service, free_port, variant_service, wait_until
from tests.pausing import DiskGate, FileGate

BIG = 96 * MiB
#: where a held snapshot stops reading: past the first 32 MiB pack, so that a cancelled
#: or failed snapshot has written data the target must treat as garbage
HELD_AT = 40 * MiB


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A disk image of incompressible data; copied, never modified."""
    path = tmp_path_factory.mktemp("noise") / "noise.raw"
    fill_with_noise(path, BIG)
    return path


def fill_with_noise(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        for _ in range(size // (16 * MiB)):
            handle.write(os.urandom(16 * MiB))


def big_workload(api: Service, noise: Path, directory: Path, token: str, size: int = BIG) -> tuple[str, Path]:
    """A workload of one instance whose disk is the first `size` bytes of `noise`."""
    directory.mkdir(parents=True, exist_ok=True)
    disk = directory / "big.raw"
    with open(noise, "rb") as source, open(disk, "wb") as handle:
        handle.write(source.read(size))
    created = create_workload(api, token, [register(api, "p1", "big", disk)])
    wait_status(api, token, created["id"], "available")
    return created["id"], disk


def held_snapshot(api: Service, token: str, workload: str, gate: DiskGate,
                  params: dict[str, str] | None = None) -> str:
    """Take a snapshot and return its id once its disk read waits at `gate`: the
    snapshot is running, and stays so until the gate is released."""
    running = take_snapshot(api, token, workload, params=params)
    gate.wait_reached()
    assert snapshot(api, token, running["id"])["status"] == "executing"
    assert show(api, token, workload)["status"] == "locked"
    return str(running["id"])


def ended(api: Service, token: str, snapshot_id: str) -> dict[str, Any]:
    return wait_until(lambda: (s := snapshot(api, token, snapshot_id))["status"]
                      in ("available", "error", "cancelled") and s, timeout=120)


def verify_ok(api: Service, target: str = "default") -> None:
    report = api.runtime.targets.repository(target, "p1").verify(deep=True)
    assert report.ok, report


def test_cancel_ends_a_running_snapshot_cancelled_and_leaves_nothing(
        api: Service, noise: Path, tmp_path: Path) -> None:
    token = api.token()
    workload, disk = big_workload(api, noise, tmp_path, token)
    with api.disks.holding(disk, HELD_AT) as gate:
        running = held_snapshot(api, token, workload, gate)
        with api.client(token) as client:
            assert client.post(f"/v1/p1/snapshots/{running}/cancel").status_code == 200
        api.jobs.wait_cancel_seen(running)
    cancelled = ended(api, token, running)
    assert cancelled["status"] == "cancelled" and cancelled["error_msg"] is None
    wait_status(api, token, workload, "available")
    repo = api.runtime.targets.repository("default", "p1")
    assert [k for k in repo.list_manifests() if running in k] == []
    verify_ok(api)
    wait_snapshot(api, token, take_snapshot(api, token, workload)["id"], "available", timeout=120)


def test_unlock_during_a_snapshot_cancels_it(api: Service, noise: Path, tmp_path: Path) -> None:
    token = api.token()
    workload, disk = big_workload(api, noise, tmp_path, token)
    with api.disks.holding(disk, HELD_AT) as gate:
        running = held_snapshot(api, token, workload, gate)
        with api.client(token) as client:
            assert client.post(f"/v1/p1/workloads/{workload}/unlock").status_code == 202
        assert show(api, token, workload)["status"] == "available"
        api.jobs.wait_cancel_seen(running)
    assert ended(api, token, running)["status"] == "cancelled"
    wait_status(api, token, workload, "available")
    verify_ok(api)


def test_disk_failing_mid_snapshot_errors_naming_it_and_keeps_earlier_snapshots(
        api: Service, noise: Path, tmp_path: Path) -> None:
    token = api.token()
    workload, disk = big_workload(api, noise, tmp_path, token)
    first = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"], timeout=120)
    wait_status(api, token, workload, "available")
    original = sha256(disk)
    with api.disks.holding(disk, HELD_AT) as gate:
        running = held_snapshot(api, token, workload, gate, params={"full": "1"})
        os.truncate(disk, 16 * MiB)  # the disk is cut short under the read
    failed = ended(api, token, running)
    assert failed["status"] == "error"
    assert str(disk) in failed["error_msg"]
    wait_status(api, token, workload, "available")
    verify_ok(api)
    done = restore(api, token, workload, first["id"], {"type": "openstack", "oneclickrestore": True})
    assert done["status"] == "available", done
    assert [sha256(p) for p in restored_disks(api, [done["instances"][0]["id"]])] == [original]


@pytest.fixture
def small_target(tmp_path: Path) -> Any:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small-target"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_target_running_out_of_space_fails_cleanly(api: Service, noise: Path, small_target: Path,
                                                   tmp_path: Path) -> None:
    token = api.token()
    disks = tmp_path / "disks"
    disks.mkdir()
    disk = disks / "grow.raw"
    with open(noise, "rb") as source, open(disk, "wb") as handle:
        handle.write(source.read(24 * MiB))
        handle.truncate(96 * MiB)
    target = TargetSettings("small", small_target)
    with variant_service(api, targets=(target,)) as tight:
        created = create_workload(tight, token, [register(tight, "p1", "grow", disk)])
        wait_status(tight, token, created["id"], "available")
        first = wait_snapshot(tight, token, take_snapshot(tight, token, created["id"])["id"])
        wait_status(tight, token, created["id"], "available")
        before = sha256(disk)
        with open(noise, "rb") as source, open(disk, "r+b") as handle:
            source.seek(24 * MiB)
            handle.seek(24 * MiB)
            handle.write(source.read(64 * MiB))
        failed = wait_snapshot(tight, token, take_snapshot(tight, token, created["id"])["id"], "error",
                               timeout=120)
        assert "space" in failed["error_msg"].lower()
        assert show(tight, token, created["id"])["status"] == "available"
        verify_ok(tight, "small")
        done = restore(tight, token, created["id"], first["id"], {"type": "openstack", "oneclickrestore": True})
        assert done["status"] == "available", done
        assert [sha256(p) for p in restored_disks(tight, [done["instances"][0]["id"]])] == [before]


def cairn(data_dir: Path, *args: str) -> str:
    environment = {**os.environ, "CAIRN_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "cairn", *args], check=True, capture_output=True,
                          text=True, env=environment).stdout.strip()


PAUSING_ROLE = str(Path(__file__).parents[1] / "pausing_role.py")


def start_serve(data_dir: Path, port: int, hold: tuple[Path, int, Path] | None = None) -> subprocess.Popen[bytes]:
    """`cairn serve` on `port`; with `hold` (disk, byte, gate directory), one whose first
    snapshot of that disk stops reading at that byte (tests/pausing_role.py)."""
    environment = {**os.environ, "CAIRN_DATA_DIR": str(data_dir), "CAIRN_JOB_LEASE_SECONDS": "3",
                   "CAIRN_LOG_LEVEL": "WARNING"}
    program = [sys.executable, "-m", "cairn"]
    if hold is not None:
        disk, at, gate = hold
        environment.update({"CAIRN_TEST_HOLD_DISK": str(disk), "CAIRN_TEST_HOLD_AT": str(at),
                            "CAIRN_TEST_HOLD_DIR": str(gate)})
        program = [sys.executable, PAUSING_ROLE]
    process = subprocess.Popen([*program, "serve", "--host", "127.0.0.1", "--port", str(port)],
                               env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: _answers(port), timeout=60, interval=0.1)
    return process


def _answers(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2)
        return True
    except httpx.HTTPError:
        return False


def test_service_killed_mid_snapshot_is_recovered_after_restart(noise: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    disk = tmp_path / "big.raw"
    shutil.copyfile(noise, disk)
    token = cairn(data_dir, "token", "create", "--project", "p1", "--user", "u1")
    instance = cairn(data_dir, "instance", "add", "--project", "p1", "--name", "big", "--disk", str(disk))
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1/p1"
    headers = {"X-Auth-Token": token}
    gate = tmp_path / "gate"
    gate.mkdir()
    server = start_serve(data_dir, port, hold=(disk, HELD_AT, gate))
    try:
        workload = httpx.post(f"{base}/workloads", headers=headers, json={"workload": {
            "name": "w", "instances": [{"instance-id": instance}]}}).json()["workload"]["id"]
        wait_until(lambda: httpx.get(f"{base}/workloads/{workload}", headers=headers)
                   .json()["workload"]["status"] == "available")
        snap = httpx.post(f"{base}/workloads/{workload}", headers=headers).json()["snapshot"]["id"]
        FileGate.wait_reached(gate)  # the snapshot is reading its disk, and stays there
        assert httpx.get(f"{base}/snapshots/{snap}", headers=headers).json()["snapshot"]["status"] == "executing"
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        server = start_serve(data_dir, port)
        ended = wait_until(lambda: (s := httpx.get(f"{base}/snapshots/{snap}", headers=headers)
                                    .json()["snapshot"])["status"] == "error" and s, timeout=60)
        assert "lease expired" in ended["error_msg"]
        assert httpx.get(f"{base}/workloads/{workload}", headers=headers).json()["workload"]["status"] == "available"
        verified = subprocess.run([sys.executable, "-m", "cairn", "repo", "verify", "--deep",
                                   str(data_dir / "targets" / "default" / "projects" / "p1" / "repo")],
                                  capture_output=True, text=True)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        again = httpx.post(f"{base}/workloads/{workload}", headers=headers).json()["snapshot"]["id"]
        wait_until(lambda: httpx.get(f"{base}/snapshots/{again}", headers=headers)
                   .json()["snapshot"]["status"] == "available", timeout=120)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)


def test_progress_moves_while_a_snapshot_runs(api: Service, noise: Path, tmp_path: Path) -> None:
    token = api.token()
    workload, disk = big_workload(api, noise, tmp_path, token)
    seen: list[int] = []
    with api.disks.holding(disk, HELD_AT) as gate:
        running = held_snapshot(api, token, workload, gate)
        # the chunks before the gate are copied and reported while the read waits there
        midway = wait_until(lambda: (s := snapshot(api, token, running))["progress_percent"] > 0 and s)
        assert midway["status"] == "executing" and 0 < midway["progress_percent"] < 100
        seen.append(midway["progress_percent"])
    while (body := snapshot(api, token, running))["status"] not in ("available", "error"):
        seen.append(body["progress_percent"])
    assert body["status"] == "available" and body["progress_percent"] == 100
    seen.append(body["progress_percent"])
    assert seen == sorted(seen)  # it never goes back
    wait_status(api, token, workload, "available")


@pytest.fixture
def own_swift(tmp_path: Path) -> Iterator[swiftdev.PrivateSwift]:
    """A Swift this test may stop and start (the shared one stays up for the others)."""
    with swiftdev.PrivateSwift(tmp_path / "swift") as swift:
        swiftdev.ensure_bucket(endpoint=swift.endpoint)
        yield swift


def test_swift_stopped_mid_snapshot_errors_and_a_later_snapshot_succeeds(
        api: Service, noise: Path, tmp_path: Path, own_swift: swiftdev.PrivateSwift) -> None:
    token = api.token()
    target = swiftdev.target_settings("swift", "cairn", endpoint=own_swift.endpoint)
    with variant_service(api, targets=(target,)) as service:
        # Past the first pack and the gate, and no more: every byte crosses HTTP twice.
        workload, disk = big_workload(service, noise, tmp_path / "disks", token, size=48 * MiB)
        first = wait_snapshot(service, token, take_snapshot(service, token, workload)["id"], timeout=120)
        wait_status(service, token, workload, "available")
        original = sha256(disk)
        fill_with_noise(disk, 48 * MiB)  # new data: the next snapshot has packs to upload
        with service.disks.holding(disk, HELD_AT) as gate:
            running = held_snapshot(service, token, workload, gate)
            own_swift.stop()  # the object store goes away under the running snapshot
        failed = ended(service, token, running)
        assert failed["status"] == "error", failed
        assert own_swift.endpoint in failed["error_msg"] and "cannot talk to" in failed["error_msg"], \
            failed["error_msg"]
        assert show(service, token, workload)["status"] == "available", "the workload is not left locked"

        own_swift.start()
        verify_ok(service, "swift")
        done = restore(service, token, workload, first["id"], {"type": "openstack", "oneclickrestore": True})
        assert done["status"] == "available", done
        assert [sha256(p) for p in restored_disks(service, [done["instances"][0]["id"]])] == [original]
        wait_status(service, token, workload, "available")
        later = wait_snapshot(service, token, take_snapshot(service, token, workload)["id"], timeout=120)
        assert later["status"] == "available"
        wait_status(service, token, workload, "available")
