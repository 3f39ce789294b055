"""The Workloads resource, checked against the seed document's examples and API.md."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Service, wait_until

SERIAL = "f82ce76f-17fe-438b-aa37-7a023058e50d"
PARALLEL = "2ddd528d-c9b4-4d7e-8722-cc395140255a"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# The seed's list view, show view and jobschedule keys, in the seed's order.
SUMMARY_KEYS = ["project_id", "user_id", "id", "name", "snapshots_info", "description",
                "workload_type_id", "status", "created_at", "updated_at", "scheduler_trust", "links"]
DETAIL_KEYS = ["created_at", "updated_at", "id", "user_id", "project_id", "availability_zone",
               "workload_type_id", "name", "description", "interval", "storage_usage", "instances",
               "metadata", "jobschedule", "status", "error_msg", "links", "scheduler_trust",
               "encryption", "secret_uuid"]
JOBSCHEDULE_KEYS = {"retention_policy_type", "end_date", "start_time", "interval", "enabled",
                    "retention_policy_value", "timezone", "start_date", "fullbackup_interval",
                    "appliance_timezone", "global_jobscheduler"}


def create_workload(api: Service, token: str, instance_ids: list[str], project: str = "p1",
                    **fields: Any) -> dict[str, Any]:
    body = {"workload": {"name": "web", "instances": [{"instance-id": i} for i in instance_ids], **fields}}
    with api.client(token) as client:
        response = client.post(f"/v1/{project}/workloads", json=body)
    assert response.status_code == 202, response.text
    return response.json()["workload"]


def show(api: Service, token: str, workload_id: str, project: str = "p1") -> dict[str, Any]:
    with api.client(token) as client:
        response = client.get(f"/v1/{project}/workloads/{workload_id}")
    assert response.status_code == 200, response.text
    return response.json()["workload"]


def wait_status(api: Service, token: str, workload_id: str, status: str, project: str = "p1") -> dict[str, Any]:
    return wait_until(lambda: (w := show(api, token, workload_id, project))["status"] == status and w)


@pytest.fixture
def member(api: Service) -> str:
    return api.token("p1", "u1")


def test_create_answers_202_creating_with_the_seed_summary_shape(api: Service, member: str) -> None:
    vm = api.add_instance("p1", "cirros-4")
    created = create_workload(api, member, [vm], description="API description")
    assert list(created) == SUMMARY_KEYS
    assert created["status"] == "creating"
    assert created["project_id"] == "p1" and created["user_id"] == "u1"
    assert created["workload_type_id"] == SERIAL
    assert created["snapshots_info"] == "" and created["scheduler_trust"] is None
    assert TIMESTAMP.match(created["created_at"]) and TIMESTAMP.match(created["updated_at"])
    assert created["links"] == [
        {"rel": "self", "href": f"{api.url}/v1/p1/workloads/{created['id']}"},
        {"rel": "bookmark", "href": f"{api.url}/p1/workloads/{created['id']}"},
    ]


def test_workload_becomes_available_with_the_seed_show_shape(api: Service, member: str) -> None:
    vm1 = api.add_instance("p1", "cirros-4", size=3 << 30)
    vm2 = api.add_instance("p1", "cirros-3", size=3 << 30)
    created = create_workload(api, member, [vm1, vm2], metadata={"meta": "data"},
                              jobschedule={"start_time": "3:00 PM", "interval": "5",
                                           "timezone": "UTC+2", "enabled": False,
                                           "retention_policy_value": "10",
                                           "start_date": "10/27/2020", "end_date": "12/27/2030"})
    detail = wait_status(api, member, created["id"], "available")
    assert list(detail) == DETAIL_KEYS
    assert detail["availability_zone"] == "nova" and detail["interval"] is None
    assert detail["storage_usage"] == {"usage": 0, "full": {"snap_count": 0, "usage": 0},
                                       "incremental": {"snap_count": 0, "usage": 0}}
    assert detail["instances"] == [{"id": vm1, "name": "cirros-4", "metadata": {}},
                                   {"id": vm2, "name": "cirros-3", "metadata": {}}]
    assert detail["metadata"] == {"meta": "data", "hostnames": "[]", "preferredgroup": "[]",
                                  "workload_approx_backup_size": "6"}
    schedule = detail["jobschedule"]
    assert set(schedule) == JOBSCHEDULE_KEYS  # disabled: no nextrun
    assert schedule["start_time"] == "3:00 PM" and schedule["timezone"] == "UTC+2"
    assert schedule["enabled"] is False and schedule["interval"] == "5"
    assert schedule["retention_policy_value"] == "10" and schedule["fullbackup_interval"] == "-1"
    assert schedule["end_date"] == "12/27/2030" and schedule["start_date"] == "10/27/2020"
    assert schedule["appliance_timezone"] == "UTC" and schedule["global_jobscheduler"] is True
    assert detail["error_msg"] is None and detail["scheduler_trust"] is None


def test_enabled_schedule_shows_nextrun_in_seconds(api: Service, member: str) -> None:
    # started in the past, so the next hourly fire time is less than an hour away
    created = create_workload(api, member, [api.add_instance()], jobschedule={
        "interval": "1hr", "start_date": "01/01/2026", "start_time": "00:30"})
    schedule = show(api, member, created["id"])["jobschedule"]
    assert schedule["enabled"] is True
    assert isinstance(schedule["nextrun"], int) and 0 < schedule["nextrun"] <= 3600


def test_workload_with_an_unreadable_disk_ends_in_error_naming_it(api: Service, member: str) -> None:
    vm = api.add_instance()
    with api.runtime.database.reader() as session:
        from cairn.db.models import Instance
        disk = session.get_one(Instance, vm).disks[0]["path"]
    import os
    os.remove(disk)
    created = create_workload(api, member, [vm])
    detail = wait_status(api, member, created["id"], "error")
    assert disk in detail["error_msg"]


def test_list_is_newest_first_and_detail_lists_details(api: Service, member: str) -> None:
    first = create_workload(api, member, [api.add_instance()], name="first")
    second = create_workload(api, member, [api.add_instance()], name="second")
    with api.client(member) as client:
        listed = client.get("/v1/p1/workloads").json()["workloads"]
        detailed = client.get("/v1/p1/workloads/detail").json()["workloads"]
    assert [w["id"] for w in listed] == [second["id"], first["id"]]
    assert all(list(w) == SUMMARY_KEYS for w in listed)
    assert [w["id"] for w in detailed] == [second["id"], first["id"]]
    assert all(list(w) == DETAIL_KEYS for w in detailed)


def test_list_pages_with_limit_and_marker(api: Service, member: str) -> None:
    ids = [create_workload(api, member, [api.add_instance()], name=f"w{i}")["id"] for i in range(5)]
    newest_first = list(reversed(ids))
    with api.client(member) as client:
        page1 = client.get("/v1/p1/workloads", params={"limit": 2}).json()["workloads"]
        page2 = client.get("/v1/p1/workloads", params={"limit": 2, "marker": page1[-1]["id"]}).json()["workloads"]
        page3 = client.get("/v1/p1/workloads", params={"limit": 2, "marker": page2[-1]["id"]}).json()["workloads"]
        bad = client.get("/v1/p1/workloads", params={"marker": "no-such-id"})
    assert [w["id"] for w in page1 + page2 + page3] == newest_first
    assert bad.status_code == 400 and "marker" in bad.json()["badRequest"]["message"]


def test_tenant_sees_only_its_own_project(api: Service, member: str) -> None:
    mine = create_workload(api, member, [api.add_instance("p1")])
    other_token = api.token("p2", "u2")
    theirs = create_workload(api, other_token, [api.add_instance("p2")], project="p2")
    with api.client(member) as client:
        listed = client.get("/v1/p1/workloads").json()["workloads"]
        peek = client.get(f"/v1/p1/workloads/{theirs['id']}")
        cross = client.get("/v1/p2/workloads")
    assert [w["id"] for w in listed] == [mine["id"]]
    assert peek.status_code == 404 and theirs["id"] in peek.json()["itemNotFound"]["message"]
    assert cross.status_code == 400
    assert cross.json() == {"badRequest": {"code": 400, "message": "Malformed request url"}}


def test_all_workloads_lists_every_project_for_admins_only(api: Service, member: str) -> None:
    mine = create_workload(api, member, [api.add_instance("p1")])
    create_workload(api, api.token("p2", "u2"), [api.add_instance("p2")], project="p2")
    admin = api.token("admin", "root", roles=("admin",))
    with api.client(member) as client:
        own = client.get("/v1/p1/workloads", params={"all_workloads": "true"}).json()["workloads"]
        refused = client.get("/v1/p1/workloads", params={"project_id": "p2"})
    with api.client(admin) as client:
        everything = client.get("/v1/admin/workloads", params={"all_workloads": "True"}).json()["workloads"]
        only_p2 = client.get("/v1/admin/workloads", params={"project_id": "p2"}).json()["workloads"]
    assert [w["id"] for w in own] == [mine["id"]]
    assert refused.status_code == 403
    assert refused.json()["forbidden"]["message"] == \
        "Policy doesn't allow workload:get_all_tenants to be performed."
    assert sorted(w["project_id"] for w in everything) == ["p1", "p2"]
    assert [w["project_id"] for w in only_p2] == ["p2"]


def test_admin_may_act_on_another_projects_workload(api: Service, member: str) -> None:
    created = create_workload(api, member, [api.add_instance("p1")])
    admin = api.token("admin", "root", roles=("admin",))
    wait_status(api, member, created["id"], "available")
    with api.client(admin) as client:
        shown = client.get(f"/v1/p1/workloads/{created['id']}")
        renamed = client.put(f"/v1/p1/workloads/{created['id']}", json={"workload": {"name": "by-admin"}})
    assert shown.status_code == 200 and renamed.status_code == 202
    assert show(api, member, created["id"])["name"] == "by-admin"


def test_instance_of_another_live_workload_is_a_conflict(api: Service, member: str) -> None:
    vm = api.add_instance()
    create_workload(api, member, [vm], name="owner")
    with api.client(member) as client:
        response = client.post("/v1/p1/workloads", json={"workload": {
            "name": "thief", "instances": [{"instance-id": vm}]}})
    assert response.status_code == 409
    assert response.json()["conflictingRequest"]["message"] == \
        f"Instance {vm} is already part of workload 'owner'"


def test_unknown_instance_or_one_of_another_project_is_not_found(api: Service, member: str) -> None:
    foreign = api.add_instance("p2")
    for instance_id in ("no-such-instance", foreign):
        with api.client(member) as client:
            response = client.post("/v1/p1/workloads", json={"workload": {
                "name": "w", "instances": [{"instance-id": instance_id}]}})
        assert response.status_code == 400
        assert response.json()["badRequest"]["message"] == f"Instance {instance_id} could not be found."


def test_modify_changes_fields_and_replaces_instances(api: Service, member: str) -> None:
    vm1, vm2 = api.add_instance(name="a"), api.add_instance(name="b")
    created = create_workload(api, member, [vm1], metadata={"keep": "me"})
    wait_status(api, member, created["id"], "available")
    with api.client(member) as client:
        response = client.put(f"/v1/p1/workloads/{created['id']}", json={"workload": {
            "name": "renamed", "description": "new", "instances": [{"instance-id": vm2}],
            "metadata": {"meta": "data"}, "jobschedule": {"interval": "6 hrs", "enabled": "False"}}})
    assert response.status_code == 202
    assert response.content == b"" and response.headers["content-length"] == "0"
    detail = show(api, member, created["id"])
    assert detail["name"] == "renamed" and detail["description"] == "new"
    assert [i["id"] for i in detail["instances"]] == [vm2]
    assert detail["metadata"]["keep"] == "me" and detail["metadata"]["meta"] == "data"
    assert detail["jobschedule"]["interval"] == "6" and detail["jobschedule"]["enabled"] is False
    # vm1 was released: another workload may take it now
    create_workload(api, member, [vm1], name="second")


def test_modify_is_refused_while_creating_or_locked(api: Service, member: str) -> None:
    created = create_workload(api, member, [api.add_instance()])
    wait_status(api, member, created["id"], "available")
    from cairn.db.models import Workload
    with api.runtime.database.unit_of_work() as session:
        session.get_one(Workload, created["id"]).status = "locked"
    with api.client(member) as client:
        response = client.put(f"/v1/p1/workloads/{created['id']}", json={"workload": {"name": "x"}})
    assert response.status_code == 409
    assert "'locked'" in response.json()["conflictingRequest"]["message"]
    assert show(api, member, created["id"])["name"] == "web"


def test_delete_is_soft_and_the_workload_is_never_listed_again(api: Service, member: str) -> None:
    vm = api.add_instance()
    created = create_workload(api, member, [vm])
    wait_status(api, member, created["id"], "available")
    with api.client(member) as client:
        response = client.delete(f"/v1/p1/workloads/{created['id']}")
        assert response.status_code == 202 and response.content == b""
        wait_until(lambda: client.get(f"/v1/p1/workloads/{created['id']}").status_code == 404)
        assert client.get("/v1/p1/workloads").json()["workloads"] == []
    from cairn.db.models import Workload
    with api.runtime.database.reader() as session:
        row = session.get_one(Workload, created["id"])
        assert row.deleted and row.status == "deleted" and row.deleted_at is not None
    create_workload(api, member, [vm], name="reuses-the-instance")


def test_database_only_delete_is_admin_only(api: Service, member: str) -> None:
    created = create_workload(api, member, [api.add_instance()])
    wait_status(api, member, created["id"], "available")
    with api.client(member) as client:
        refused = client.delete(f"/v1/p1/workloads/{created['id']}", params={"database_only": "true"})
    assert refused.status_code == 403
    admin = api.token("admin", "root", roles=("admin",))
    with api.client(admin) as client:
        assert client.delete(f"/v1/p1/workloads/{created['id']}",
                             params={"database_only": "True"}).status_code == 202
    with api.client(member) as client:
        wait_until(lambda: client.get(f"/v1/p1/workloads/{created['id']}").status_code == 404)


def test_unlock_makes_any_state_available(api: Service, member: str) -> None:
    created = create_workload(api, member, [api.add_instance()])
    wait_status(api, member, created["id"], "available")
    from cairn.db.models import Workload
    with api.runtime.database.unit_of_work() as session:
        row = session.get_one(Workload, created["id"])
        row.status, row.error_msg = "locked", "stuck"
    with api.client(member) as client:
        response = client.post(f"/v1/p1/workloads/{created['id']}/unlock")
    assert response.status_code == 202 and response.content == b""
    detail = show(api, member, created["id"])
    assert detail["status"] == "available" and detail["error_msg"] is None


def test_reset_goes_through_resetting_to_available(api: Service, member: str) -> None:
    created = create_workload(api, member, [api.add_instance()])
    wait_status(api, member, created["id"], "available")
    with api.client(member) as client:
        response = client.post(f"/v1/p1/workloads/{created['id']}/reset")
    assert response.status_code == 202 and response.content == b""
    wait_status(api, member, created["id"], "available")
    import sqlalchemy as sa

    from cairn.db.models import Job
    with api.runtime.database.reader() as session:
        states = session.scalars(sa.select(Job.state).where(
            Job.workload_id == created["id"], Job.kind == "workload_reset")).all()
    assert states == ["succeeded"]


@pytest.mark.parametrize("action", ["reset", "delete"])
def test_reset_and_delete_are_refused_while_locked(api: Service, member: str, action: str) -> None:
    created = create_workload(api, member, [api.add_instance()])
    wait_status(api, member, created["id"], "available")
    from cairn.db.models import Workload
    with api.runtime.database.unit_of_work() as session:
        session.get_one(Workload, created["id"]).status = "locked"
    with api.client(member) as client:
        if action == "reset":
            response = client.post(f"/v1/p1/workloads/{created['id']}/reset")
        else:
            response = client.delete(f"/v1/p1/workloads/{created['id']}")
    assert response.status_code == 409
    assert "'locked'" in response.json()["conflictingRequest"]["message"]
    assert show(api, member, created["id"])["status"] == "locked"


def test_every_response_carries_the_request_id_twice(api: Service, member: str) -> None:
    with api.client(member) as client:
        for response in (client.get("/v1/p1/workloads"), client.get("/v1/p1/workloads/nope"),
                         client.post("/v1/p1/workloads", json={})):
            assert REQUEST_ID.match(response.headers["x-compute-request-id"])
            assert response.headers["x-openstack-request-id"] == response.headers["x-compute-request-id"]
    with api.client(None) as client:
        assert REQUEST_ID.match(client.get("/v1/p1/workloads").headers["x-compute-request-id"])


def test_workload_types_are_serial_and_parallel(api: Service, member: str) -> None:
    with api.client(member) as client:
        listed = client.get("/v1/p1/workload_types").json()["workload_types"]
        one = client.get(f"/v1/p1/workload_types/{PARALLEL}").json()["workload_type"]
        missing = client.get("/v1/p1/workload_types/nope")
    assert {t["id"]: t["name"] for t in listed} == {SERIAL: "Serial", PARALLEL: "Parallel"}
    assert list(one) == ["id", "name", "description", "is_public", "status", "metadata", "links"]
    assert one["name"] == "Parallel" and one["is_public"] is True
    assert missing.status_code == 404


def test_parallel_type_is_accepted_and_unknown_type_refused(api: Service, member: str) -> None:
    created = create_workload(api, member, [api.add_instance()], workload_type_id=PARALLEL)
    assert created["workload_type_id"] == PARALLEL
    with api.client(member) as client:
        response = client.post("/v1/p1/workloads", json={"workload": {
            "name": "w", "workload_type_id": "nope", "instances": [{"instance-id": api.add_instance()}]}})
    assert response.status_code == 400
    assert "workload_type_id" in response.json()["badRequest"]["message"]


def test_public_endpoint_setting_builds_links(service: Service) -> None:
    from cairn.api.views import Links
    links = Links("https://backup.example.com:8780/")
    assert links("p", "workloads", "w") == [
        {"rel": "self", "href": "https://backup.example.com:8780/v1/p/workloads/w"},
        {"rel": "bookmark", "href": "https://backup.example.com:8780/p/workloads/w"}]
