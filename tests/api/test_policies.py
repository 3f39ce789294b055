"""Workload policies: CRUD, assignment, and their effect on workloads' schedules."""

from __future__ import annotations

from typing import Any

from tests.api.test_workloads import create_workload, show, wait_status
from tests.conftest import Service

GOLD = {"interval": "4", "retention_policy_type": "Number of days to retain Snapshots",
        "retention_policy_value": "7", "fullbackup_interval": "2"}


def admin_client(api: Service) -> Any:
    return api.client(api.token("admin", "root", roles=("admin",)))


def make_policy(api: Service, **values: str) -> dict[str, Any]:
    with admin_client(api) as client:
        response = client.post("/v1/admin/workload_policy", json={"workload_policy": {
            "display_name": "gold", "display_description": "every 4h", "metadata": {"tier": "1"},
            "field_values": {**GOLD, **values}}})
    assert response.status_code == 200, response.text
    return response.json()["policy"]


def assign(api: Service, policy_id: str, add: list[str] = (), remove: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    with admin_client(api) as client:
        response = client.post(f"/v1/admin/workload_policy/{policy_id}/assign",
                               json={"policy": {"add_projects": list(add), "remove_projects": list(remove)}})
    assert response.status_code == 200, response.text
    return response.json()


def test_create_and_show_policy(api: Service) -> None:
    policy = make_policy(api)
    assert list(policy) == ["id", "name", "description", "field_values", "policy_assignments",
                            "metadata", "created_at"]
    assert policy["name"] == "gold" and policy["description"] == "every 4h"
    assert {f["policy_field_name"]: f["value"] for f in policy["field_values"]} == GOLD
    with admin_client(api) as client:
        assert client.get(f"/v1/admin/workload_policy/{policy['id']}").json()["policy"] == policy
        assert [p["id"] for p in client.get("/v1/admin/workload_policy").json()["policy_list"]] == [policy["id"]]


def test_policy_needs_all_four_valid_field_values(api: Service) -> None:
    with admin_client(api) as client:
        missing = client.post("/v1/admin/workload_policy", json={"workload_policy": {
            "display_name": "x", "field_values": {"interval": "4"}}})
        bad = client.post("/v1/admin/workload_policy", json={"workload_policy": {
            "display_name": "x", "field_values": {**GOLD, "interval": "0"}}})
        assert client.get("/v1/admin/workload_policy").json()["policy_list"] == []
    assert missing.status_code == 400 and "field_values.retention_policy_type" in missing.text
    assert bad.status_code == 400 and "field_values.interval" in bad.text


def test_assignment_and_assigned_list(api: Service) -> None:
    policy = make_policy(api)
    result = assign(api, policy["id"], add=["p1", "p2"])
    assert result["failed_ids"] == []
    assert result["policy"]["policy_assignments"] == [{"project_id": "p1", "policy_name": "gold"},
                                                      {"project_id": "p2", "policy_name": "gold"}]
    with api.client(api.token("p1")) as client:
        mine = client.get("/v1/p1/workload_policy/assigned/p1")
        theirs = client.get("/v1/p1/workload_policy/assigned/p2")
    assert mine.json() == {"policies": [{"policy_id": policy["id"], "policy_name": "gold"}]}
    assert theirs.status_code == 403


def test_workload_takes_the_policys_values_over_its_own(api: Service) -> None:
    policy = make_policy(api)
    assign(api, policy["id"], add=["p1"])
    token = api.token("p1")
    created = create_workload(api, token, [api.add_instance()], metadata={"policy_id": policy["id"]},
                              jobschedule={"interval": "12", "retention_policy_value": "99"})
    schedule = show(api, token, created["id"])["jobschedule"]
    assert schedule["interval"] == "4" and schedule["retention_policy_value"] == "7"
    assert schedule["retention_policy_type"] == "Number of days to retain Snapshots"
    assert schedule["fullbackup_interval"] == "2"
    assert show(api, token, created["id"])["metadata"]["policy_id"] == policy["id"]


def test_unassigned_policy_is_refused(api: Service) -> None:
    policy = make_policy(api)
    token = api.token("p1")
    with api.client(token) as client:
        response = client.post("/v1/p1/workloads", json={"workload": {
            "name": "w", "instances": [{"instance-id": api.add_instance()}],
            "metadata": {"policy_id": policy["id"]}}})
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"] == f"Policy {policy['id']} is not assigned to project p1"


def test_project_with_policies_must_name_one(api: Service) -> None:
    policy = make_policy(api)
    assign(api, policy["id"], add=["p1"])
    with api.client(api.token("p1")) as client:
        response = client.post("/v1/p1/workloads", json={"workload": {
            "name": "w", "instances": [{"instance-id": api.add_instance()}]}})
    assert response.status_code == 400
    assert policy["id"] in response.json()["badRequest"]["message"]


def test_update_and_delete_are_refused_while_a_workload_uses_the_policy(api: Service) -> None:
    policy = make_policy(api)
    assign(api, policy["id"], add=["p1"])
    token = api.token("p1")
    created = create_workload(api, token, [api.add_instance()], metadata={"policy_id": policy["id"]})
    with admin_client(api) as client:
        update = client.put(f"/v1/admin/workload_policy/{policy['id']}",
                            json={"policy": {"display_name": "silver"}})
        delete = client.delete(f"/v1/admin/workload_policy/{policy['id']}")
    assert update.status_code == 409 and delete.status_code == 409
    assert assign(api, policy["id"], remove=["p1"])["failed_ids"] == ["p1"]
    wait_status(api, token, created["id"], "available")
    with api.client(token) as client:
        client.delete(f"/v1/p1/workloads/{created['id']}")
    from tests.conftest import wait_until
    with admin_client(api) as client:
        wait_until(lambda: client.put(f"/v1/admin/workload_policy/{policy['id']}",
                                      json={"policy": {"display_name": "silver",
                                                       "field_values": {"interval": "8"}}}).status_code == 200)
        shown = client.get(f"/v1/admin/workload_policy/{policy['id']}").json()["policy"]
        assert shown["name"] == "silver"
        assert {f["policy_field_name"]: f["value"] for f in shown["field_values"]}["interval"] == "8"
        assert client.delete(f"/v1/admin/workload_policy/{policy['id']}").status_code == 202
        assert client.get(f"/v1/admin/workload_policy/{policy['id']}").status_code == 404
