"""Import and orphans over HTTP (the list, the import job and its progress), and reassign
(workloads and their data move to another project), refusals included."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.api.test_snapshots import restored_disks, sha256, take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, show, wait_status
from tests.conftest import Service, wait_until

MiB = 1 << 20


@pytest.fixture
def admin(api: Service) -> str:
    return api.token("admin", "root", roles=("admin",))


def protected(api: Service, tmp_path: Path, snapshots: int = 1) -> dict[str, Any]:
    """A workload of one instance with data on its disk, and its snapshots."""
    from cairn.platforms.local import register_instance
    rng = random.Random(5)
    project = "p1"
    disk = tmp_path / "vm.raw"
    with open(disk, "wb") as handle:
        handle.truncate(8 * MiB)
    token = api.token(project, "u1")
    with api.runtime.database.unit_of_work() as session:
        vm = register_instance(session, project, "vm", [str(disk)]).id
    workload = create_workload(api, token, [vm], project=project, name="web")["id"]
    wait_status(api, token, workload, "available", project)
    taken = []
    for _ in range(snapshots):
        with open(disk, "r+b") as handle:
            handle.seek(rng.randrange(0, 7 * MiB))
            handle.write(rng.randbytes(512 * 1024))
        with api.client(token) as client:
            response = client.post(f"/v1/{project}/workloads/{workload}")
        assert response.status_code == 200, response.text
        snap = response.json()["snapshot"]["id"]
        wait_snapshot(api, token, snap)
        wait_status(api, token, workload, "available", project)
        taken.append(snap)
    return {"token": token, "workload": workload, "snapshots": taken, "disk": disk,
            "digest": hashlib.sha256(disk.read_bytes()).hexdigest()}


def delete_database_only(api: Service, admin: str, workload: str) -> None:
    with api.client(admin) as client:
        assert client.delete(f"/v1/p1/workloads/{workload}", params={"database_only": "true"}).status_code == 202
    wait_until(lambda: api.client(admin).get(f"/v1/p1/workloads/{workload}").status_code == 404)


# -- import and orphans ----------------------------------------------------------------


def test_the_import_list_and_the_import_job_bring_a_deleted_workload_back(api: Service, admin: str,
                                                                          tmp_path: Path) -> None:
    state = protected(api, tmp_path)
    workload = state["workload"]
    with api.client(admin) as client:
        assert client.get("/v1/admin/workloads/get_list/import_workloads").json() == {"workloads": []}
    delete_database_only(api, admin, workload)
    with api.client(admin) as client:
        listed = client.get("/v1/admin/workloads/get_list/import_workloads").json()["workloads"]
        assert [(w["id"], w["project_id"], w["name"], w["snapshots"], w["backup_target"]) for w in listed] == [
            (workload, "p1", "web", 1, "default")]
        assert "deleted from the database" in listed[0]["reason"]
        orphans = client.get("/v1/admin/workloads/orphan_workloads").json()["workloads"]
        assert [w["id"] for w in orphans] == [workload]
        started = client.post("/v1/admin/workloads/import_workloads", json={"workload_ids": [workload]})
        assert started.status_code == 202, started.text
        job = started.json()["import_workloads"]
        assert job["status"] == "queued" and job["progress_percent"] == 0

        def finished() -> Any:
            body = client.get(f"/v1/admin/workloads/import_workloads/{job['id']}").json()["import_workloads"]
            return body if body["status"] not in ("queued", "running") else None
        done = wait_until(finished)
    assert done["status"] == "available" and done["progress_percent"] == 100, done
    assert done["imported_workloads"] == [workload] and done["imported_snapshots"] == state["snapshots"]
    assert done["progress_msg"] == "1 workload(s), 1 snapshot(s) imported." and done["finished_at"]
    assert show(api, state["token"], workload)["status"] == "available"
    with api.client(admin) as client:
        assert client.get("/v1/admin/workloads/get_list/import_workloads").json() == {"workloads": []}
        assert client.get("/v1/admin/workloads/orphan_workloads").json() == {"workloads": []}


def test_a_workload_whose_rows_are_gone_is_an_orphan_and_imports_with_everything(api: Service, admin: str,
                                                                               tmp_path: Path) -> None:
    state = protected(api, tmp_path)
    workload = state["workload"]
    from cairn.db.models import Snapshot, Workload, WorkloadInstance
    with api.runtime.database.unit_of_work() as session:  # as with a new database
        session.execute(sa.delete(Snapshot).where(Snapshot.workload_id == workload))
        session.execute(sa.delete(WorkloadInstance).where(WorkloadInstance.workload_id == workload))
        session.execute(sa.delete(Workload).where(Workload.id == workload))
    with api.client(admin) as client:
        orphans = client.get("/v1/admin/workloads/orphan_workloads", params={"target": "default"}).json()
        assert [(w["id"], w["reason"]) for w in orphans["workloads"]] == [(workload, "not in the database")]
        job = client.post("/v1/admin/workloads/import_workloads", json={}).json()["import_workloads"]
        done = wait_until(lambda: (b := client.get(f"/v1/admin/workloads/import_workloads/{job['id']}").json()
                                   ["import_workloads"])["status"] == "available" and b)
    assert done["imported_workloads"] == [workload]
    assert wait_snapshot(api, state["token"], state["snapshots"][0])["status"] == "available"


def test_import_refusals_name_the_problem_and_start_nothing(api: Service, admin: str) -> None:
    member = api.token("p1", "u1")
    with api.client(member) as client:
        for method, path in (("GET", "/v1/p1/workloads/get_list/import_workloads"),
                             ("GET", "/v1/p1/workloads/orphan_workloads"),
                             ("POST", "/v1/p1/workloads/import_workloads")):
            refused = client.request(method, path, json={} if method == "POST" else None)
            assert refused.status_code == 403, (path, refused.text)
            assert "Policy doesn't allow workload:" in refused.json()["forbidden"]["message"]
    with api.client(admin) as client:
        unknown = client.post("/v1/admin/workloads/import_workloads", json={"target": "nowhere"})
        assert unknown.status_code == 404 and "nowhere" in unknown.text
        extra = client.post("/v1/admin/workloads/import_workloads", json={"workload_ids": [], "colour": 1})
        assert extra.status_code == 400 and "colour" in extra.text
        wrong = client.post("/v1/admin/workloads/import_workloads", json={"workload_ids": "abc"})
        assert wrong.status_code == 400 and "workload_ids" in wrong.text
        assert client.get("/v1/admin/workloads/get_list/import_workloads",
                          params={"target": "nowhere"}).status_code == 404
        missing = client.get("/v1/admin/workloads/import_workloads/8a6f3c2e-0000-4000-8000-000000000000")
        assert missing.status_code == 404 and "Import job" in missing.text
    from cairn.db.models import Job
    with api.runtime.database.reader() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == "import")) == 0


def test_an_import_of_an_id_no_target_describes_says_so(api: Service, admin: str) -> None:
    with api.client(admin) as client:
        job = client.post("/v1/admin/workloads/import_workloads",
                          json={"workload_ids": ["0b7d2c1e-1111-4111-8111-111111111111"]}).json()["import_workloads"]
        done = wait_until(lambda: (b := client.get(f"/v1/admin/workloads/import_workloads/{job['id']}").json()
                                   ["import_workloads"])["status"] == "available" and b)
    assert done["imported_workloads"] == []
    assert done["skipped"] == ["workload 0b7d2c1e-1111-4111-8111-111111111111: no backup target describes it"]


# -- reassign ----------------------------------------------------------------------------


def reassign(api: Service, token: str, body: Any, project: str = "admin") -> Any:
    with api.client(token) as client:
        return client.post(f"/v1/{project}/workloads/reasign_workloads", json=body)


def moved_to(api: Service, token: str, workload: str, project: str) -> dict[str, Any]:
    """The workload as its new project sees it, once its move has committed and it is available."""
    def arrived() -> Any:
        with api.client(token) as client:
            response = client.get(f"/v1/{project}/workloads/{workload}")
        return response.status_code == 200 and response.json()["workload"]["status"] == "available" \
            and response.json()["workload"]
    found: dict[str, Any] = wait_until(arrived)
    return found


def move(workload: str, project: str = "p2", user: str = "u2", **extra: Any) -> list[dict[str, Any]]:
    return [{"workload_ids": [workload], "migrate_cloud": False, "old_tenant_ids": [], "user_id": user,
             "new_tenant_id": project, **extra}]


def test_reassign_moves_the_workload_its_snapshots_and_its_data_to_the_new_project(
        api: Service, admin: str, tmp_path: Path) -> None:
    state = protected(api, tmp_path, snapshots=2)
    workload: str = state["workload"]
    first, second = state["snapshots"]
    old_repo = api.runtime.targets.repository("default", "p1")
    old_keys = sorted(k for k in old_repo.list_manifests() if k.startswith(workload))
    response = reassign(api, admin, move(workload))
    assert response.status_code == 200, response.text
    moved = response.json()["workloads"]
    assert moved["failed_workloads"] == []
    assert [(w["id"], w["status"], w["project_id"], w["user_id"]) for w in moved["reassigned_workloads"]] == [
        (workload, "locked", "p2", "u2")]
    other = api.token("p2", "u2")
    detail = moved_to(api, other, workload, "p2")
    assert detail["project_id"] == "p2" and detail["user_id"] == "u2"
    with api.client(state["token"]) as client:
        assert client.get(f"/v1/p1/workloads/{workload}").status_code == 404
    with api.client(other) as client:
        listed = client.get("/v1/p2/snapshots", params={"workload_id": workload}).json()["snapshots"]
    assert [(s["id"], s["project_id"]) for s in listed] == [(first, "p2"), (second, "p2")]
    new_repo = api.runtime.targets.repository("default", "p2")
    assert sorted(k for k in new_repo.list_manifests() if k.startswith(workload)) == old_keys
    # the old project's copy goes (catalog, then manifests) once the move committed
    wait_until(lambda: not [k for k in api.runtime.targets.repository("default", "p1").list_manifests()
                            if k.startswith(workload)])
    old_catalog = api.runtime.targets.get("default").catalog("p1")
    assert not list(old_catalog.list(f"workloads/{workload}"))
    new_catalog = api.runtime.targets.get("default").catalog("p2")
    assert len(list(new_catalog.list(f"workloads/{workload}/snapshots"))) == 2
    assert new_repo.verify(deep=True).ok
    done = restore_in(api, other, workload, second)
    assert [sha256(p) for p in restored_disks(api, [i["id"] for i in done["instances"]])] == [state["digest"]]


def restore_in(api: Service, token: str, workload: str, snapshot_id: str) -> dict[str, Any]:
    with api.client(token) as client:
        response = client.post(f"/v1/p2/workloads/{workload}/snapshots/{snapshot_id}/restores",
                               json={"restore": {"name": "r", "options": {"type": "openstack",
                                                                          "oneclickrestore": True}}})
        assert response.status_code == 202, response.text
        restore_id = response.json()["restore"]["id"]
        return wait_until(lambda: (r := client.get(f"/v1/p2/restores/{restore_id}").json()["restore"])["status"]
                          in ("available", "error") and r, timeout=60)


def test_reassign_within_the_project_changes_only_the_user(api: Service, admin: str, tmp_path: Path) -> None:
    state = protected(api, tmp_path)
    response = reassign(api, admin, move(state["workload"], project="p1", user="u9"))
    assert response.json()["workloads"]["reassigned_workloads"][0]["status"] == "available"
    assert show(api, state["token"], state["workload"])["user_id"] == "u9"


def test_reassign_by_old_project_moves_all_its_workloads(api: Service, admin: str, tmp_path: Path) -> None:
    state = protected(api, tmp_path)
    body = [{"workload_ids": [], "old_tenant_ids": ["p1"], "user_id": "u2", "new_tenant_id": "p3",
             "migrate_cloud": False}]
    assert reassign(api, admin, body).json()["workloads"]["reassigned_workloads"][0]["id"] == state["workload"]
    assert moved_to(api, api.token("p3", "u2"), state["workload"], "p3")["user_id"] == "u2"


def test_a_failed_move_leaves_the_workload_where_it_was(api: Service, admin: str, tmp_path: Path) -> None:
    state = protected(api, tmp_path)
    workload = state["workload"]
    # the new project's repository cannot be made: a file stands where its directory goes
    blocker = api.runtime.settings.data_dir / "targets" / "default" / "projects" / "p2"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory")
    assert reassign(api, admin, move(workload)).status_code == 200
    wait_until(lambda: show(api, state["token"], workload)["status"] == "available")
    from cairn.db.models import Job
    with api.runtime.database.reader() as session:
        state_, error = session.execute(sa.select(Job.state, Job.error).where(Job.kind == "reassign")).one()
    assert state_ == "failed" and error
    with api.client(state["token"]) as client:
        assert client.get(f"/v1/p1/snapshots/{state['snapshots'][0]}").json()["snapshot"]["project_id"] == "p1"
    assert [k for k in api.runtime.targets.repository("default", "p1").list_manifests() if k.startswith(workload)]


def test_reassign_refusals(api: Service, admin: str, tmp_path: Path) -> None:
    member = api.token("p1", "u1")
    refused = reassign(api, member, move("x"), project="p1")
    assert refused.status_code == 403 and "workload:reassign_workloads" in refused.text
    cloud = reassign(api, admin, move("x", migrate_cloud=True))
    assert cloud.status_code == 400 and "migrate_cloud" in cloud.json()["badRequest"]["message"]
    lacking = reassign(api, admin, [{"workload_ids": ["x"], "user_id": "u2"}])
    assert lacking.status_code == 400 and "new_tenant_id" in lacking.text
    assert reassign(api, admin, []).status_code == 400
    twice = reassign(api, admin, move("x") + move("x"))
    assert twice.status_code == 400 and "named twice" in twice.text
    unknown = reassign(api, admin, move("8a6f3c2e-0000-4000-8000-000000000000"))
    assert unknown.status_code == 200
    assert unknown.json()["workloads"]["failed_workloads"] == [
        {"id": "8a6f3c2e-0000-4000-8000-000000000000",
         "error": "Workload 8a6f3c2e-0000-4000-8000-000000000000 could not be found."}]
    # a workload busy with a job is not moved, and says why
    state = protected(api, tmp_path)
    api.disks.hold(str(state["disk"]), at=1 * MiB)
    snap = take_snapshot(api, state["token"], state["workload"])
    try:
        busy = reassign(api, admin, move(state["workload"])).json()["workloads"]
        assert busy["reassigned_workloads"] == []
        assert "is locked" in busy["failed_workloads"][0]["error"]
    finally:
        api.disks.release_all()
    wait_snapshot(api, state["token"], snap["id"])
