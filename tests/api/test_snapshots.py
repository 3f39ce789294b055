"""Snapshots and restores end to end, through HTTP only, with real raw and qcow2 disks."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cairn.workloads.storage import BackupTarget
from tests.api.test_workloads import create_workload, show, wait_status
from tests.conftest import Service, wait_until

MiB = 1 << 20
SNAPSHOT_SUMMARY_KEYS = ["id", "name", "description", "workload_id", "project_id", "user_id",
                         "snapshot_type", "status", "created_at", "updated_at", "finished_at", "size",
                         "restore_size", "uploaded_size", "progress_percent", "progress_msg",
                         "error_msg", "warning_msg", "time_taken", "host", "pinned", "links"]


def sha256(path: str | Path) -> str:
    """The disk's content as a guest sees it (qcow2 is read through qemu-img)."""
    path = str(path)
    with open(path, "rb") as handle:
        is_qcow2 = handle.read(4) == b"QFI\xfb"
    if is_qcow2:
        flat = f"{path}.flat-{os.getpid()}"
        subprocess.run(["qemu-img", "convert", "-q", "-O", "raw", path, flat], check=True)
        try:
            return sha256(flat)
        finally:
            os.unlink(flat)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 * MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def scribble(path: Path, rng: random.Random, writes: int, size: int) -> None:
    """Random 64 KiB writes at random offsets of a raw file."""
    with open(path, "r+b") as handle:
        for _ in range(writes):
            handle.seek(rng.randrange(0, size - 65536))
            handle.write(rng.randbytes(65536))


def make_disks(directory: Path, rng: random.Random, size: int = 24 * MiB) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    raw = directory / "web.raw"
    with open(raw, "wb") as handle:
        handle.truncate(size)
    scribble(raw, rng, 40, size)
    seed = directory / "db-seed.raw"
    with open(seed, "wb") as handle:
        handle.truncate(size)
    scribble(seed, rng, 30, size)
    qcow2 = directory / "db.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(seed), str(qcow2)], check=True)
    seed.unlink()
    return raw, qcow2


def register(api: Service, project: str, name: str, disk: Path) -> str:
    from cairn.platforms.local import register_instance
    with api.runtime.database.unit_of_work() as session:
        return register_instance(session, project, name, [str(disk)]).id


def take_snapshot(api: Service, token: str, workload_id: str, body: dict[str, Any] | None = None,
                  params: dict[str, str] | None = None) -> dict[str, Any]:
    with api.client(token) as client:
        response = client.post(f"/v1/p1/workloads/{workload_id}", json=body, params=params)
    assert response.status_code == 200, response.text
    return response.json()["snapshot"]


def snapshot(api: Service, token: str, snapshot_id: str) -> dict[str, Any]:
    with api.client(token) as client:
        response = client.get(f"/v1/p1/snapshots/{snapshot_id}")
    assert response.status_code == 200, response.text
    return response.json()["snapshot"]


def wait_snapshot(api: Service, token: str, snapshot_id: str, status: str = "available",
                  timeout: float = 60) -> dict[str, Any]:
    return wait_until(lambda: (s := snapshot(api, token, snapshot_id))["status"] == status and s,
                      timeout=timeout)


def restore(api: Service, token: str, workload_id: str, snapshot_id: str, options: dict[str, Any]) -> dict[str, Any]:
    with api.client(token) as client:
        response = client.post(f"/v1/p1/workloads/{workload_id}/snapshots/{snapshot_id}/restores",
                               json={"restore": {"name": "r", "options": options}})
    assert response.status_code == 202, response.text
    restore_id = response.json()["restore"]["id"]

    def finished() -> Any:
        with api.client(token) as client:
            body = client.get(f"/v1/p1/workloads/{workload_id}/snapshots/{snapshot_id}/restores/{restore_id}").json()
        return body["restore"] if body["restore"]["status"] in ("available", "error", "cancelled") else None
    return wait_until(finished, timeout=60)


@pytest.fixture
def protected(api: Service, tmp_path: Path) -> dict[str, Any]:
    """A workload of two instances, one raw and one qcow2 disk, available."""
    rng = random.Random(7)
    raw, qcow2 = make_disks(tmp_path / "disks", rng)
    token = api.token("p1")
    web = register(api, "p1", "web", raw)
    db = register(api, "p1", "db", qcow2)
    created = create_workload(api, token, [web, db], jobschedule={"retention_policy_value": "3"})
    wait_status(api, token, created["id"], "available")
    return {"token": token, "workload": created["id"], "raw": raw, "qcow2": qcow2, "web": web,
            "db": db, "rng": rng}


def test_full_then_incremental_then_oneclick_restore_is_bit_exact(api: Service, protected: dict[str, Any]) -> None:
    token, workload = protected["token"], protected["workload"]
    raw, qcow2 = protected["raw"], protected["qcow2"]
    with api.disks.holding(raw, 0) as gate:  # the snapshot runs until the test has looked
        first = take_snapshot(api, token, workload, {"snapshot": {"name": "first", "description": "d"}})
        assert list(first) == SNAPSHOT_SUMMARY_KEYS
        assert first["status"] == "creating" and first["snapshot_type"] == "full"
        gate.wait_reached()
        assert show(api, token, workload)["status"] == "locked"
    first = wait_snapshot(api, token, first["id"])
    assert first["restore_size"] == 2 * 24 * MiB and 0 < first["size"] <= first["restore_size"]
    assert first["progress_percent"] == 100 and first["uploaded_size"] == first["size"]
    assert [len(i["vdisks"]) for i in first["instances"]] == [1, 1]
    assert {d["format"] for i in first["instances"] for d in i["vdisks"]} == {"raw", "qcow2"}
    wait_status(api, token, workload, "available")
    at_first = {"raw": sha256(raw), "qcow2": sha256(qcow2)}

    scribble(raw, protected["rng"], 5, 24 * MiB)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 2M", str(qcow2)], check=True)
    second = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    assert second["snapshot_type"] == "incremental"
    assert second["size"] < first["size"] / 2
    at_second = {"raw": sha256(raw), "qcow2": sha256(qcow2)}
    assert at_second != at_first
    wait_status(api, token, workload, "available")

    done = restore(api, token, workload, first["id"], {"type": "openstack", "oneclickrestore": True})
    assert done["status"] == "available", done
    assert done["restore_type"] == "oneclick" and len(done["instances"]) == 2
    restored = restored_disks(api, [i["id"] for i in done["instances"]])
    assert sorted(sha256(p) for p in restored) == sorted(at_first.values())
    assert all(os.path.dirname(p) == os.path.dirname(raw) for p in restored)
    detail = show(api, token, workload)
    assert detail["storage_usage"]["full"] == {"snap_count": 1, "usage": first["size"]}
    assert detail["storage_usage"]["incremental"] == {"snap_count": 1, "usage": second["size"]}


def restored_disks(api: Service, instance_ids: list[str]) -> list[str]:
    from cairn.db.models import Instance
    with api.runtime.database.reader() as session:
        return [d["path"] for iid in instance_ids for d in session.get_one(Instance, iid).disks]


def test_inplace_restore_writes_the_original_disks_back(api: Service, protected: dict[str, Any]) -> None:
    token, workload, raw = protected["token"], protected["workload"], protected["raw"]
    snap = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    wait_status(api, token, workload, "available")
    before = sha256(raw)
    scribble(raw, protected["rng"], 10, 24 * MiB)
    assert sha256(raw) != before
    done = restore(api, token, workload, snap["id"], {"type": "openstack", "restore_type": "inplace",
                   "openstack": {"instances": [{"id": protected["web"], "include": True},
                                               {"id": protected["db"], "include": False}]}})
    assert done["status"] == "available", done
    assert done["instances"] == [{"id": protected["web"], "name": "web", "status": "available"}]
    assert sha256(raw) == before


def test_selective_restore_takes_chosen_instances_under_chosen_names(api: Service, protected: dict[str, Any]) -> None:
    token, workload = protected["token"], protected["workload"]
    snap = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    wait_status(api, token, workload, "available")
    done = restore(api, token, workload, snap["id"], {"type": "openstack", "restore_type": "selective",
                   "openstack": {"instances": [{"id": protected["db"], "include": True, "name": "db-copy"},
                                               {"id": protected["web"], "include": False}]}})
    assert done["status"] == "available", done
    assert [i["name"] for i in done["instances"]] == ["db-copy"]
    assert [sha256(p) for p in restored_disks(api, [done["instances"][0]["id"]])] == [sha256(protected["qcow2"])]


def test_keep_three_after_five_snapshots_keeps_the_newest_three_and_frees_space(
        api: Service, protected: dict[str, Any]) -> None:
    token, workload, raw = protected["token"], protected["workload"], protected["raw"]
    ids = []
    added = []
    for _ in range(5):
        scribble(raw, protected["rng"], 20, 24 * MiB)
        snap = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
        wait_status(api, token, workload, "available")
        ids.append(snap["id"])
        added.append(snap["size"])
        if len(ids) == 3:
            at_oldest_kept = sha256(raw)
    with api.client(token) as client:
        listed = client.get("/v1/p1/snapshots", params={"workload_id": workload}).json()["snapshots"]
    assert [s["id"] for s in listed] == ids[-3:]
    # Without garbage collection the target would hold every byte ever added.
    assert repo_bytes(api) < 0.8 * sum(added)
    assert show(api, token, workload)["storage_usage"]["usage"] == sum(added[-3:])
    from cairn.db.models import Snapshot
    with api.runtime.database.reader() as session:
        gone = [(row.deleted, row.deleted_reason or "")
                for row in (session.get_one(Snapshot, sid) for sid in ids[:2])]
    assert all(deleted and "newest 3" in reason for deleted, reason in gone)
    assert api.runtime.targets.repository("default", "p1").verify(deep=True).ok
    # the oldest kept snapshot restores on its own though everything before it is gone
    done = restore(api, token, workload, ids[-3], {"type": "openstack", "oneclickrestore": True})
    assert done["status"] == "available", done
    assert sha256(restored_disks(api, [done["instances"][0]["id"]])[0]) == at_oldest_kept


def repo_bytes(api: Service) -> int:
    default = api.runtime.targets.get("default")
    assert isinstance(default, BackupTarget)
    root = default.project_dir("p1") / "repo"
    return sum(f.stat().st_blocks * 512 for f in root.rglob("*") if f.is_file())


def test_delete_snapshot_then_workload(api: Service, protected: dict[str, Any]) -> None:
    token, workload = protected["token"], protected["workload"]
    snap = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    wait_status(api, token, workload, "available")
    with api.client(token) as client:
        refused = client.delete(f"/v1/p1/workloads/{workload}")
        assert refused.status_code == 409
        assert refused.json()["conflictingRequest"]["message"] == \
            "This workload contains snapshots. Delete all its snapshots first."
        assert client.delete(f"/v1/p1/snapshots/{snap['id']}").status_code == 202
        wait_until(lambda: client.get(f"/v1/p1/snapshots/{snap['id']}").status_code == 404)
        wait_status(api, token, workload, "available")
        assert client.delete(f"/v1/p1/workloads/{workload}").status_code == 202
        wait_until(lambda: client.get(f"/v1/p1/workloads/{workload}").status_code == 404)
    default = api.runtime.targets.get("default")
    assert isinstance(default, BackupTarget)
    catalog = default.project_dir("p1") / "workloads" / workload
    assert not any(p.is_file() for p in catalog.rglob("*")) if catalog.exists() else True


def test_reset_makes_the_next_snapshot_full(api: Service, protected: dict[str, Any]) -> None:
    token, workload = protected["token"], protected["workload"]
    wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    wait_status(api, token, workload, "available")
    assert take_snapshot_type(api, token, workload) == "incremental"
    with api.client(token) as client:
        assert client.post(f"/v1/p1/workloads/{workload}/reset").status_code == 202
    wait_status(api, token, workload, "available")
    assert take_snapshot_type(api, token, workload) == "full"
    assert take_snapshot_type(api, token, workload, {"snapshot": {"snapshot_type": "full"}}) == "full"
    assert take_snapshot_type(api, token, workload) == "incremental"


def take_snapshot_type(api: Service, token: str, workload: str, body: dict[str, Any] | None = None) -> str:
    snap = wait_snapshot(api, token, take_snapshot(api, token, workload, body)["id"])
    wait_status(api, token, workload, "available")
    return str(snap["snapshot_type"])


def test_snapshot_refused_while_locked_and_list_filters(api: Service, protected: dict[str, Any]) -> None:
    token, workload = protected["token"], protected["workload"]
    with api.disks.holding(protected["raw"], 0) as gate:  # the first snapshot runs meanwhile
        first = take_snapshot(api, token, workload)
        gate.wait_reached()
        with api.client(token) as client:
            busy = client.post(f"/v1/p1/workloads/{workload}")
    assert busy.status_code == 409
    assert "'available' state to take a snapshot" in busy.json()["conflictingRequest"]["message"]
    wait_snapshot(api, token, first["id"])
    with api.client(token) as client:
        available = client.get("/v1/p1/snapshots", params={"status": "available"}).json()["snapshots"]
        assert [s["id"] for s in available] == [first["id"]]
        assert client.get("/v1/p1/snapshots", params={"status": "error"}).json()["snapshots"] == []
        assert client.get("/v1/p1/snapshots", params={"date_from": "2999-01-01T00:00:00"}).json()["snapshots"] == []
        bad = client.get("/v1/p1/snapshots", params={"date_to": "yesterday"})
        assert bad.status_code == 400 and "date_to" in bad.json()["badRequest"]["message"]
        everyone = client.get("/v1/p1/snapshots", params={"all": "true"}).json()["snapshots"]
        assert [s["id"] for s in everyone] == [first["id"]]  # a member's `all` is their own project
