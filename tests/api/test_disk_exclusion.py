"""Disk exclusion: instance metadata `exclude_boot_disk_from_backup` and disk metadata
`exclude_from_backup` leave disks out of snapshots, and the snapshot says which."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from tests.api.test_snapshots import restore, restored_disks, sha256, snapshot, take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, wait_status
from tests.conftest import Service

MiB = 1 << 20


def disks(directory: Path, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = directory / f"disk{index}.raw"
        with open(path, "wb") as handle:
            handle.truncate(4 * MiB)
            handle.seek(rng.randrange(0, 3 * MiB))
            handle.write(rng.randbytes(256 * 1024))
        paths.append(str(path))
    return paths


def register(api: Service, paths: list[str], metadata: dict[str, str] | None = None,
             excluded: list[str] | None = None) -> str:
    from cairn.platforms.local import register_instance
    with api.runtime.database.unit_of_work() as session:
        return register_instance(session, "p1", "vm", paths, metadata=metadata, excluded=excluded).id


def snap_of(api: Service, vm: str, gone: str | None = None) -> tuple[str, str, dict[str, object]]:
    token = api.token("p1")
    workload = create_workload(api, token, [vm])["id"]
    wait_status(api, token, workload, "available")
    if gone:
        os.unlink(gone)  # a disk left out need not be readable
    snap = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    wait_status(api, token, workload, "available")
    return token, workload, snapshot(api, token, snap["id"])


def test_a_disk_marked_exclude_from_backup_is_left_out_and_named(api: Service, tmp_path: Path) -> None:
    paths = disks(tmp_path / "d", 2, 1)
    vm = register(api, paths, excluded=[paths[1]])
    token, workload, detail = snap_of(api, vm)
    vdisks = detail["instances"][0]["vdisks"]  # type: ignore[index]
    assert [d["id"] for d in vdisks] == [f"{vm}-0"]
    excluded = json.loads(detail["metadata"]["excluded_disks"])  # type: ignore[index]
    assert excluded == [{"instance_id": vm, "instance_name": "vm", "path": paths[1], "device": "",
                         "reason": "disk metadata exclude_from_backup"}]
    assert detail["restore_size"] == 4 * MiB
    done = restore(api, token, workload, str(detail["id"]), {"type": "openstack", "oneclickrestore": True})
    assert done["status"] == "available", done
    restored = restored_disks(api, [i["id"] for i in done["instances"]])
    assert [sha256(p) for p in restored] == [sha256(paths[0])]


def test_the_boot_disk_is_left_out_when_the_instance_says_so_even_if_unreadable(api: Service,
                                                                                tmp_path: Path) -> None:
    paths = disks(tmp_path / "d", 3, 2)
    vm = register(api, paths, metadata={"exclude_boot_disk_from_backup": "True"})
    _token, _workload, detail = snap_of(api, vm, gone=paths[0])
    vdisks = detail["instances"][0]["vdisks"]  # type: ignore[index]
    # the kept disks keep their positions: ids and manifest keys do not shift
    assert [d["id"] for d in vdisks] == [f"{vm}-1", f"{vm}-2"]
    excluded = json.loads(detail["metadata"]["excluded_disks"])  # type: ignore[index]
    assert [(e["path"], e["reason"]) for e in excluded] == [
        (paths[0], "instance metadata exclude_boot_disk_from_backup")]


def test_no_exclusion_keeps_every_disk_and_says_nothing(api: Service, tmp_path: Path) -> None:
    paths = disks(tmp_path / "d", 2, 3)
    vm = register(api, paths, metadata={"exclude_boot_disk_from_backup": "false"})
    _token, _workload, detail = snap_of(api, vm)
    assert len(detail["instances"][0]["vdisks"]) == 2  # type: ignore[index]
    assert "excluded_disks" not in detail["metadata"]  # type: ignore[operator]


def test_the_instance_commands_set_and_clear_exclusions(tmp_path: Path) -> None:
    paths = disks(tmp_path / "d", 2, 4)
    environment = {**os.environ, "CAIRN_DATA_DIR": str(tmp_path / "data")}
    environment.pop("CAIRN_CONFIG_FILE", None)

    def cairn(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cairn", "instance", *args], capture_output=True,
                              text=True, env=environment, timeout=120)
    added = cairn("add", "--project", "p1", "--name", "vm", "--disk", paths[0], "--disk", paths[1],
                  "--exclude-disk", paths[1], "--metadata", "exclude_boot_disk_from_backup=true")
    assert added.returncode == 0, added.stderr
    vm = added.stdout.strip()
    listed = cairn("list", "--project", "p1").stdout
    assert f"{paths[1]} (raw, {4 * MiB} B, excluded from backup)" in listed
    assert f"{paths[0]} (raw, {4 * MiB} B)" in listed
    cleared = cairn("set", vm, "--include-every-disk", "--unset", "exclude_boot_disk_from_backup")
    assert cleared.returncode == 0, cleared.stderr
    assert "excluded disks: none" in cleared.stdout and "exclude_boot" not in cleared.stdout
    wrong = cairn("set", vm, "--exclude-disk", "/nowhere.raw")
    assert wrong.returncode != 0 and "exclude-disk" in wrong.stderr and "/nowhere.raw" in wrong.stderr
