"""Project quotas over HTTP: the types, an admin's CRUD of allowed quotas, refusals, and
enforcement on workload create, modify and snapshot, exactly under concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from cairn import __version__
from tests.api.test_snapshots import take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, wait_status
from tests.conftest import BACKENDS, Service
from tests.scheduler.test_scheduler import first_fire, make_scheduler, schedule, settle, snapshots  # noqa: F401

TYPES = {"Workloads": "2d5ef0d5-a1f0-4a36-9f1b-0b2f9a0c1a01", "Snapshots": "2d5ef0d5-a1f0-4a36-9f1b-0b2f9a0c1a02",
         "VMs": "2d5ef0d5-a1f0-4a36-9f1b-0b2f9a0c1a03", "Volumes": "2d5ef0d5-a1f0-4a36-9f1b-0b2f9a0c1a04",
         "Storage": "2d5ef0d5-a1f0-4a36-9f1b-0b2f9a0c1a05"}


def admin(api: Service) -> httpx.Client:
    return api.client(api.token("admin", "root", roles=("admin",)))


def set_quota(api: Service, type_name: str, allowed: int, watermark: int | None = None,
              project: str = "p1") -> dict[str, Any]:
    item: dict[str, Any] = {"quota_type_id": TYPES[type_name], "project_id": project, "allowed_value": allowed}
    if watermark is not None:
        item["high_watermark"] = watermark
    with admin(api) as client:
        response = client.post(f"/v1/admin/project_allowed_quotas/{project}", json={"allowed_quotas": [item]})
    assert response.status_code == 200, response.text
    [quota] = response.json()["allowed_quotas"]
    return quota


def post_workload(api: Service, token: str, instances: list[str], name: str = "web") -> httpx.Response:
    with api.client(token) as client:
        return client.post("/v1/p1/workloads", json={"workload": {
            "name": name, "instances": [{"instance-id": i} for i in instances]}})


def assert_over(response: httpx.Response, type_name: str) -> None:
    assert response.status_code == 413, response.text
    message = response.json()["overLimit"]["message"]
    assert message.startswith(f"{type_name} quota exceeded: project p1"), message


def test_the_five_quota_types_are_listed(api: Service) -> None:
    with admin(api) as client:
        response = client.get("/v1/admin/project_quota_types")
    assert response.status_code == 200
    types = response.json()["quota_types"]
    assert {t["display_name"]: t["id"] for t in types} == TYPES
    assert all(set(t) == {"id", "display_name", "display_description", "status"} for t in types)


def test_create_list_show_update_delete_an_allowed_quota(api: Service) -> None:
    quota = set_quota(api, "Workloads", 1, 1)
    assert quota == {"id": quota["id"], "project_id": "p1", "quota_type_id": TYPES["Workloads"],
                     "allowed_value": 1, "high_watermark": 1, "version": __version__,
                     "quota_type_name": "Workloads"}
    with admin(api) as client:
        assert client.get("/v1/admin/project_allowed_quotas/p1").json() == {"allowed_quotas": [quota]}
        assert client.get("/v1/admin/project_allowed_quotas/p2").json() == {"allowed_quotas": []}
        assert client.get(f"/v1/admin/project_allowed_quota/{quota['id']}").json() == {"allowed_quotas": quota}
        updated = client.put(f"/v1/admin/update_allowed_quota/{quota['id']}", json={"allowed_quotas": {
            "project_id": "p1", "allowed_value": 2, "high_watermark": 2}})
        assert updated.status_code == 202, updated.text
        assert updated.json() == {"allowed_quotas": [{**quota, "allowed_value": 2, "high_watermark": 2}]}
        assert client.get(f"/v1/admin/project_allowed_quota/{quota['id']}").json()["allowed_quotas"][
            "allowed_value"] == 2
        deleted = client.delete(f"/v1/admin/project_allowed_quotas/{quota['id']}")
        assert deleted.status_code == 202 and deleted.content == b""
        assert client.get("/v1/admin/project_allowed_quotas/p1").json() == {"allowed_quotas": []}
        assert client.get(f"/v1/admin/project_allowed_quota/{quota['id']}").status_code == 404


def test_a_member_may_not_call_any_quota_endpoint(api: Service) -> None:
    quota = set_quota(api, "VMs", 3)
    member = api.token("p1", "u1")
    calls = [("GET", "/project_quota_types", None), ("GET", "/project_allowed_quotas/p1", None),
             ("POST", "/project_allowed_quotas/p1", {"allowed_quotas": [
                 {"quota_type_id": TYPES["Workloads"], "allowed_value": 9}]}),
             ("GET", f"/project_allowed_quota/{quota['id']}", None),
             ("PUT", f"/update_allowed_quota/{quota['id']}", {"allowed_quotas": {"allowed_value": 9}}),
             ("DELETE", f"/project_allowed_quotas/{quota['id']}", None)]
    with api.client(member) as client:
        for method, path, body in calls:
            response = client.request(method, f"/v1/p1{path}", json=body)
            assert response.status_code == 403, (method, path, response.text)
            assert "Policy doesn't allow workload:" in response.json()["forbidden"]["message"]
    with admin(api) as client:  # nothing was written
        assert client.get("/v1/admin/project_allowed_quotas/p1").json()["allowed_quotas"] == [quota]


@pytest.mark.parametrize(("item", "field"), [
    ({"quota_type_id": "nope", "allowed_value": 1}, "allowed_quotas.0.quota_type_id"),
    ({"quota_type_id": TYPES["VMs"], "allowed_value": -1}, "allowed_quotas.0.allowed_value"),
    ({"quota_type_id": TYPES["VMs"], "allowed_value": "many"}, "allowed_quotas.0.allowed_value"),
    ({"quota_type_id": TYPES["VMs"], "allowed_value": 2, "high_watermark": 3}, "allowed_quotas.0.high_watermark"),
    ({"quota_type_id": TYPES["VMs"], "allowed_value": 2, "project_id": "p2"}, "allowed_quotas.0.project_id"),
    ({"quota_type_id": TYPES["VMs"], "allowed_value": 2, "colour": "red"}, "allowed_quotas.0.colour"),
    ({"allowed_value": 2}, "allowed_quotas.0.quota_type_id"),
])
def test_a_bad_quota_field_is_a_400_naming_it_and_writes_nothing(api: Service, item: dict[str, Any],
                                                                 field: str) -> None:
    with admin(api) as client:
        response = client.post("/v1/admin/project_allowed_quotas/p1", json={"allowed_quotas": [item]})
        assert response.status_code == 400, response.text
        assert response.json()["badRequest"]["message"].startswith(field), response.text
        assert client.get("/v1/admin/project_allowed_quotas/p1").json()["allowed_quotas"] == []


def test_a_second_quota_of_a_type_conflicts_and_unknown_ids_are_404(api: Service) -> None:
    set_quota(api, "Snapshots", 5)
    with admin(api) as client:
        again = client.post("/v1/admin/project_allowed_quotas/p1", json={"allowed_quotas": [
            {"quota_type_id": TYPES["VMs"], "allowed_value": 1},
            {"quota_type_id": TYPES["Snapshots"], "allowed_value": 1}]})
        assert again.status_code == 409 and "Snapshots" in again.json()["conflictingRequest"]["message"]
        assert len(client.get("/v1/admin/project_allowed_quotas/p1").json()["allowed_quotas"]) == 1  # all or none
        missing = "00000000-0000-4000-8000-000000000000"
        for response in (client.get(f"/v1/admin/project_allowed_quota/{missing}"),
                         client.put(f"/v1/admin/update_allowed_quota/{missing}",
                                    json={"allowed_quotas": {"allowed_value": 1}}),
                         client.delete(f"/v1/admin/project_allowed_quotas/{missing}")):
            assert response.status_code == 404
            assert missing in response.json()["itemNotFound"]["message"]
        quota = client.get("/v1/admin/project_allowed_quotas/p1").json()["allowed_quotas"][0]
        below = client.put(f"/v1/admin/update_allowed_quota/{quota['id']}",
                           json={"allowed_quotas": {"high_watermark": 6}})
        assert below.status_code == 400 and "allowed_quotas.high_watermark" in below.text


def test_workloads_quota_refuses_the_next_create_until_raised_or_removed(api: Service) -> None:
    token = api.token("p1", "u1")
    quota = set_quota(api, "Workloads", 1, 1)
    vms = [api.add_instance(name=f"vm{n}") for n in range(3)]
    wait_status(api, token, create_workload(api, token, [vms[0]])["id"], "available")
    refused = post_workload(api, token, [vms[1]])
    assert_over(refused, "Workloads")
    assert quota["id"] in refused.json()["overLimit"]["message"]
    with admin(api) as client:
        client.put(f"/v1/admin/update_allowed_quota/{quota['id']}", json={"allowed_quotas": {"allowed_value": 2}})
    assert post_workload(api, token, [vms[1]]).status_code == 202
    assert_over(post_workload(api, token, [vms[2]]), "Workloads")
    with admin(api) as client:
        client.delete(f"/v1/admin/project_allowed_quotas/{quota['id']}")
    assert post_workload(api, token, [vms[2]]).status_code == 202
    with api.client(token) as client:
        assert len(client.get("/v1/p1/workloads").json()["workloads"]) == 3


def test_vms_and_volumes_quotas_hold_on_create_and_modify(api: Service) -> None:
    token = api.token("p1", "u1")
    vms_quota = set_quota(api, "VMs", 2)
    a, b, c = (api.add_instance(name=n) for n in "abc")
    workload = create_workload(api, token, [a])["id"]
    wait_status(api, token, workload, "available")
    with api.client(token) as client:
        grown = client.put(f"/v1/p1/workloads/{workload}", json={"workload": {"instances": [
            {"instance-id": a}, {"instance-id": b}]}})
        assert grown.status_code == 202, grown.text
        too_many = client.put(f"/v1/p1/workloads/{workload}", json={"workload": {"instances": [
            {"instance-id": i} for i in (a, b, c)]}})
        assert_over(too_many, "VMs")
        swapped = client.put(f"/v1/p1/workloads/{workload}", json={"workload": {"instances": [
            {"instance-id": a}, {"instance-id": c}]}})  # the same count: allowed
        assert swapped.status_code == 202, swapped.text
        assert [i["id"] for i in client.get(f"/v1/p1/workloads/{workload}").json()["workload"]["instances"]] == [a, c]
    assert_over(post_workload(api, token, [b], name="second"), "VMs")
    set_quota(api, "Volumes", 3)
    two_disks = api.add_instance(name="d", disks=2)
    with api.client(token) as client:  # VMs still 2 of 2: shrink first, then the disks count
        assert client.put(f"/v1/p1/workloads/{workload}", json={"workload": {"instances": [
            {"instance-id": a}]}}).status_code == 202
    assert_over(post_workload(api, token, [two_disks, b], name="third"), "VMs")
    assert post_workload(api, token, [two_disks], name="third").status_code == 202  # 1 + 2 disks of 3
    assert_over(post_workload(api, token, [b], name="fourth"), "VMs")
    with admin(api) as client:
        client.put(f"/v1/admin/update_allowed_quota/{vms_quota['id']}", json={"allowed_quotas": {"allowed_value": 9}})
    assert_over(post_workload(api, token, [b], name="fourth"), "Volumes")  # a fourth disk of 3


def test_snapshots_and_storage_quotas_refuse_a_snapshot(api: Service) -> None:
    token = api.token("p1", "u1")
    workload = create_workload(api, token, [api.add_instance(size=4 << 20)])["id"]
    wait_status(api, token, workload, "available")
    quota = set_quota(api, "Snapshots", 1)
    wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    wait_status(api, token, workload, "available")
    with api.client(token) as client:
        refused = client.post(f"/v1/p1/workloads/{workload}", json={"snapshot": {"name": "two"}})
        assert_over(refused, "Snapshots")
        assert len(client.get("/v1/p1/snapshots").json()["snapshots"]) == 1
        assert client.get(f"/v1/p1/workloads/{workload}").json()["workload"]["status"] == "available"
    with admin(api) as client:
        client.delete(f"/v1/admin/project_allowed_quotas/{quota['id']}")
    set_quota(api, "Storage", 0)
    with api.client(token) as client:
        assert_over(client.post(f"/v1/p1/workloads/{workload}"), "Storage")


def test_a_scheduled_snapshot_over_quota_ends_error_with_the_quota_message(
        api: Service, first_fire: datetime) -> None:  # noqa: F811
    token = api.token("p1", "u1")
    workload = create_workload(api, token, [api.add_instance()], jobschedule=schedule(first_fire))["id"]
    wait_status(api, token, workload, "available")
    quota = set_quota(api, "Snapshots", 0)
    scheduler = make_scheduler(api)
    assert scheduler.tick(first_fire) == 1
    settle(api)
    [failed] = snapshots(api, workload)
    assert failed.status == "error" and failed.name == "jobscheduler"
    assert failed.error_msg is not None and failed.error_msg.startswith("Snapshots quota exceeded: project p1")
    assert quota["id"] in failed.error_msg
    with api.client(token) as client:
        shown = client.get(f"/v1/p1/snapshots/{failed.id}").json()["snapshot"]
        assert shown["status"] == "error" and shown["error_msg"] == failed.error_msg
        assert client.get(f"/v1/p1/workloads/{workload}").json()["workload"]["status"] == "available"
    with admin(api) as client:
        client.delete(f"/v1/admin/project_allowed_quotas/{quota['id']}")
    assert scheduler.tick(first_fire + timedelta(hours=1)) == 1  # the failed one took no unit
    settle(api)
    assert [s.status for s in snapshots(api, workload)] == ["error", "available"]


class Meeting:
    """The quota guard's hook: holds each request just before it locks the quotas until
    `parties` requests are there, so that they are all inside their transactions (their
    first reads done) when the first of them checks."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=30)
        self.met = 0

    def __call__(self, _project_id: str) -> None:
        self.barrier.wait()
        self.met += 1


# SQLite has one writer at a time (a second request waits for the first's whole unit of
# work), so two requests cannot both be inside their transactions there.
SERVERS = [b for b in BACKENDS if b != "sqlite"]


@pytest.mark.parametrize("service", SERVERS, indirect=True)
def test_two_creates_racing_for_the_last_workload_one_wins(api: Service) -> None:
    token = api.token("p1", "u1")
    set_quota(api, "Workloads", 2)
    wait_status(api, token, create_workload(api, token, [api.add_instance(name="first")])["id"], "available")
    vms = [api.add_instance(name=f"racer{n}") for n in range(2)]
    meeting = Meeting(2)
    api.runtime.quotas.before_lock = meeting
    try:
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda n: post_workload(api, token, [vms[n]], name=f"racer{n}"), range(2)))
    finally:
        api.runtime.quotas.before_lock = None
    assert meeting.met == 2
    assert sorted(r.status_code for r in answers) == [202, 413], [r.text for r in answers]
    assert_over(next(r for r in answers if r.status_code == 413), "Workloads")
    with api.client(token) as client:
        names = sorted(w["name"] for w in client.get("/v1/p1/workloads").json()["workloads"])
    winner = next(r for r in answers if r.status_code == 202).json()["workload"]["name"]
    assert names == sorted(["web", winner])


@pytest.mark.parametrize("service", SERVERS, indirect=True)
def test_two_snapshots_racing_for_the_last_unit_one_wins(api: Service) -> None:
    token = api.token("p1", "u1")
    workloads = [create_workload(api, token, [api.add_instance(name=f"vm{n}")], name=f"w{n}")["id"]
                 for n in range(2)]
    for workload in workloads:
        wait_status(api, token, workload, "available")
    set_quota(api, "Snapshots", 1)
    meeting = Meeting(2)
    api.runtime.quotas.before_lock = meeting

    def take(workload: str) -> httpx.Response:
        with api.client(token) as client:
            return client.post(f"/v1/p1/workloads/{workload}")
    try:
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(take, workloads))
    finally:
        api.runtime.quotas.before_lock = None
    assert meeting.met == 2
    assert sorted(r.status_code for r in answers) == [200, 413], [r.text for r in answers]
    assert_over(next(r for r in answers if r.status_code == 413), "Snapshots")
    settle(api)
    with api.client(token) as client:
        assert [s["status"] for s in client.get("/v1/p1/snapshots").json()["snapshots"]] == ["available"]
        for workload in workloads:  # the loser's workload was never locked
            assert client.get(f"/v1/p1/workloads/{workload}").json()["workload"]["status"] == "available"
