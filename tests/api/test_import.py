"""Import: a target is self-describing, so lost or database-only-deleted rows come back,
from a directory target and from a bucket on Swift's S3 API alike."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import swiftdev
from tests.api.test_snapshots import make_disks, register, restore, restored_disks, sha256, take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, show, wait_status
from tests.conftest import Service, variant_service, wait_until


@dataclass
class OnTarget:
    """A service whose workloads go to one target, and that target as a configuration
    file names it (for a `cairn` command run against a new database)."""

    service: Service
    name: str
    section: str


@pytest.fixture(params=["filesystem", "s3"])
def on_target(request: pytest.FixtureRequest, api: Service) -> Iterator[OnTarget]:
    if request.param == "filesystem":
        yield OnTarget(api, "default", f"[target:default]\npath = {api.runtime.targets.get('default').path}\n")
        return
    swiftdev.require_swift()
    swiftdev.ensure_bucket()
    prefix = f"import-{os.urandom(4).hex()}"
    try:
        with variant_service(api, targets=(swiftdev.target_settings("swift", prefix),)) as service:
            yield OnTarget(service, "swift", swiftdev.target_section("swift", prefix))
    finally:
        swiftdev.purge(prefix)


def protect(api: Service, tmp_path: Path) -> dict[str, Any]:
    raw, qcow2 = make_disks(tmp_path / "disks", random.Random(11))
    token = api.token("p1")
    created = create_workload(api, token, [register(api, "p1", "web", raw), register(api, "p1", "db", qcow2)],
                              metadata={"team": "web"})
    wait_status(api, token, created["id"], "available")
    snap = wait_snapshot(api, token, take_snapshot(api, token, created["id"])["id"])
    wait_status(api, token, created["id"], "available")
    return {"token": token, "workload": created["id"], "snapshot": snap, "raw": raw, "qcow2": qcow2}


def test_database_only_delete_then_import_brings_workload_and_snapshots_back(on_target: OnTarget,
                                                                           tmp_path: Path) -> None:
    api = on_target.service
    state = protect(api, tmp_path)
    token, workload = state["token"], state["workload"]
    expected = sorted([sha256(state["raw"]), sha256(state["qcow2"])])
    admin = api.token("admin", "root", roles=("admin",))
    with api.client(admin) as client:
        assert client.delete(f"/v1/p1/workloads/{workload}", params={"database_only": "true"}).status_code == 202
    with api.client(token) as client:
        wait_until(lambda: client.get(f"/v1/p1/workloads/{workload}").status_code == 404)
        assert client.get("/v1/p1/snapshots").json()["snapshots"] == []
    repo = api.runtime.targets.repository(on_target.name, "p1")
    assert any(key.startswith(workload) for key in repo.list_manifests())  # every byte stayed

    from cairn.clock import utcnow
    from cairn.workloads.importer import import_target
    with api.runtime.database.unit_of_work() as session:
        report = import_target(session, api.runtime.targets, on_target.name, utcnow())
    assert report.workloads == [workload] and report.snapshots == [state["snapshot"]["id"]]
    detail = show(api, token, workload)
    assert detail["status"] == "available" and detail["metadata"]["team"] == "web"
    with api.client(token) as client:
        listed = client.get("/v1/p1/snapshots").json()["snapshots"]
    assert [s["id"] for s in listed] == [state["snapshot"]["id"]]
    done = restore(api, token, workload, state["snapshot"]["id"], {"type": "openstack", "oneclickrestore": True})
    assert done["status"] == "available", done
    assert sorted(sha256(p) for p in restored_disks(api, [i["id"] for i in done["instances"]])) == expected


def test_import_into_a_new_database_with_the_command(on_target: OnTarget, tmp_path: Path) -> None:
    state = protect(on_target.service, tmp_path)
    fresh = tmp_path / "fresh"
    config = tmp_path / "cairn.conf"
    config.write_text(on_target.section)
    environment = {**os.environ, "CAIRN_DATA_DIR": str(fresh), "CAIRN_CONFIG_FILE": str(config)}
    result = subprocess.run([sys.executable, "-m", "cairn", "workload", "import", "--target", on_target.name],
                            capture_output=True, text=True, env=environment)
    assert result.returncode == 0, result.stderr
    assert f"imported workload {state['workload']}" in result.stdout
    assert f"imported snapshot {state['snapshot']['id']}" in result.stdout
    import sqlalchemy as sa
    engine = sa.create_engine(f"sqlite:///{fresh / 'cairn.sqlite'}")
    with engine.connect() as conn:
        names = conn.execute(sa.text("SELECT name, status FROM workloads")).all()
        snaps = conn.execute(sa.text("SELECT id, status FROM snapshots")).all()
    engine.dispose()
    assert [tuple(r) for r in names] == [("web", "available")]
    assert [tuple(r) for r in snaps] == [(state["snapshot"]["id"], "available")]
    again = subprocess.run([sys.executable, "-m", "cairn", "workload", "import", "--target", on_target.name],
                           capture_output=True, text=True, env=environment)
    assert "already in the database" in again.stdout and "0 workload(s)" in again.stdout
