"""Under Keystone, a workload whose project Keystone no longer knows is orphaned, and a
reassign to a project Keystone does not know is refused."""

from __future__ import annotations

from typing import Any

from tests.auth.keystone_server import KeystoneServer
from tests.conftest import Service, wait_until


def test_a_workload_of_a_deleted_project_is_an_orphan_and_no_workload_moves_to_an_unknown_project(
        keystone: KeystoneServer, keystone_cairn: Service) -> None:
    keystone_cairn.reset_tables()
    admin_client = keystone.admin_client()
    gamma = admin_client.projects.create("gamma-orphans", "default")
    root = keystone.users["root"].token()
    vm = keystone_cairn.add_instance(gamma.id, "vm-gamma")
    with keystone_cairn.client(root) as client:
        created = client.post(f"/v1/{gamma.id}/workloads",
                              json={"workload": {"name": "g", "instances": [{"instance-id": vm}]}})
        assert created.status_code == 202, created.text
        workload = created.json()["workload"]["id"]

        def status() -> Any:
            return client.get(f"/v1/{gamma.id}/workloads/{workload}").json()["workload"]["status"]
        wait_until(lambda: status() == "available")
        beta = keystone.users["root"].project_id
        assert client.get(f"/v1/{beta}/workloads/orphan_workloads").json() == {"workloads": []}
        unknown = client.post(f"/v1/{beta}/workloads/reasign_workloads", json=[{
            "workload_ids": [workload], "new_tenant_id": "0123456789abcdef0123456789abcdef",
            "user_id": "someone", "old_tenant_ids": [], "migrate_cloud": False}])
        assert unknown.status_code == 400
        assert unknown.json()["badRequest"]["message"] == (
            "new_tenant_id: project 0123456789abcdef0123456789abcdef does not exist.")
        assert status() == "available"  # nothing was written
        admin_client.projects.delete(gamma.id)
        orphans = client.get(f"/v1/{beta}/workloads/orphan_workloads").json()["workloads"]
        assert [(w["id"], w["reason"]) for w in orphans] == [(workload, f"project {gamma.id} is gone")]
