"""Backup targets: placement by free space, an admin's choice, the nfs_share filter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cairn.config import TargetSettings
from tests.api.test_workloads import create_workload, show, wait_status
from tests.conftest import Service, variant_service


@pytest.fixture
def two_targets(tmp_path: Path) -> tuple[TargetSettings, TargetSettings]:
    return (TargetSettings("nfs1", tmp_path / "nfs1", export="192.0.2.10:/exports/one"),
            TargetSettings("nfs2", tmp_path / "nfs2", export="192.0.2.11:/exports/two"))


def test_workloads_go_where_there_is_most_space_or_where_an_admin_says(
        api: Service, two_targets: tuple[TargetSettings, TargetSettings], tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting tmpfs targets of different sizes needs root")
    import subprocess
    for target, size in zip(two_targets, ("8m", "64m"), strict=True):
        assert target.path is not None
        target.path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target.path)], check=True)
    try:
        member = api.token("p1")
        admin = api.token("admin", "root", roles=("admin",))
        with variant_service(api, targets=two_targets) as multi:
            roomy = create_workload(multi, member, [multi.add_instance("p1")], name="roomy")
            chosen = create_workload(multi, admin, [multi.add_instance("p1")], name="chosen",
                                     metadata={"backup_media_target": "192.0.2.10:/exports/one"})
            with multi.client(member) as client:
                refused = client.post("/v1/p1/workloads", json={"workload": {
                    "name": "x", "instances": [{"instance-id": multi.add_instance("p1")}],
                    "metadata": {"backup_media_target": "nfs1"}}})
                assert refused.status_code == 403
                assert "backup_media_target" not in show(multi, member, roomy["id"])["metadata"]
                on_two = client.get("/v1/p1/workloads", params={"nfs_share": "192.0.2.11:/exports/two"})
                on_one = client.get("/v1/p1/workloads", params={"nfs_share": "nfs1"})
                nowhere = client.get("/v1/p1/workloads", params={"nfs_share": "198.51.100.1:/none"})
            assert [w["id"] for w in on_two.json()["workloads"]] == [roomy["id"]]
            assert [w["id"] for w in on_one.json()["workloads"]] == [chosen["id"]]
            assert nowhere.json()["workloads"] == []
            with multi.client(admin) as client:
                seen = client.get(f"/v1/admin/workloads/{roomy['id']}").json()["workload"]
            assert seen["metadata"]["backup_media_target"] == "192.0.2.11:/exports/two"
            with multi.client(admin) as client:
                unknown = client.post("/v1/p1/workloads", json={"workload": {
                    "name": "x", "instances": [{"instance-id": multi.add_instance("p1")}],
                    "metadata": {"backup_media_target": "nfs9"}}})
            assert unknown.status_code == 400 and "nfs9" in unknown.json()["badRequest"]["message"]
            wait_status(multi, member, roomy["id"], "available")
            wait_status(multi, member, chosen["id"], "available")
    finally:
        for target in two_targets:
            subprocess.run(["umount", "-l", str(target.path)], check=False)
