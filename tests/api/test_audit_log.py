"""The audit log over HTTP: it names what this test did, by whom, to which object, and
a refused request leaves no line."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from cairn.db.models import AuditEntry
from tests.api.test_snapshots import take_snapshot, wait_snapshot
from tests.api.test_workloads import REQUEST_ID, TIMESTAMP, create_workload, wait_status
from tests.conftest import Service

KEYS = ["Timestamp", "UserName", "UserId", "ProjectId", "Action", "ObjectType", "ObjectId", "ObjectName",
        "Details", "RequestId"]


def admin(api: Service) -> httpx.Client:
    return api.client(api.token("admin", "root", roles=("admin",)))


def auditlog(api: Service, minutes: int | None = None) -> list[dict[str, Any]]:
    with admin(api) as client:
        response = client.get("/v1/admin/workloads/audit/auditlog",
                              params={} if minutes is None else {"time_in_minutes": minutes})
    assert response.status_code == 200, response.text
    return list(response.json()["auditlog"])


def test_the_log_names_who_did_what_to_which_object(api: Service) -> None:
    token = api.token("p1", "alice")
    with api.client(token) as client:
        created = client.post("/v1/p1/workloads", json={"workload": {
            "name": "ledger", "instances": [{"instance-id": api.add_instance(name="db")}]}})
    workload = created.json()["workload"]["id"]
    wait_status(api, token, workload, "available")
    with api.client(token) as client:
        client.put(f"/v1/p1/workloads/{workload}", json={"workload": {"description": "books"}})
    snap = wait_snapshot(api, token, take_snapshot(api, token, workload, {"snapshot": {"name": "eod"}})["id"])
    wait_status(api, token, workload, "available")
    with api.client(token) as client:
        client.post(f"/v1/p1/workloads/{workload}/pause")
        client.delete(f"/v1/p1/snapshots/{snap['id']}")
    lines = auditlog(api)
    assert [(line["Action"], line["ObjectId"], line["ObjectName"]) for line in lines] == [
        ("workload.create", workload, "ledger"), ("workload.modify", workload, "ledger"),
        ("snapshot.create", snap["id"], "eod"), ("workload.pause", workload, "ledger"),
        ("snapshot.delete", snap["id"], "eod")]
    first = lines[0]
    assert list(first) == KEYS
    assert first["UserId"] == first["UserName"] == "alice" and first["ProjectId"] == "p1"
    assert first["ObjectType"] == "workload" and first["Details"] == "Workload 'ledger' created with 1 instance(s)"
    assert first["RequestId"] == created.headers["X-Compute-Request-Id"] and REQUEST_ID.match(first["RequestId"])
    assert TIMESTAMP.match(first["Timestamp"])
    assert lines[1]["Details"] == "Workload 'ledger' modified: description"


def test_a_refused_request_writes_no_line(api: Service) -> None:
    token = api.token("p1", "u1")
    with api.client(token) as client:
        assert client.post("/v1/p1/workloads", json={"workload": {
            "name": "x", "instances": [{"instance-id": "missing"}]}}).status_code == 400
        assert client.delete("/v1/p1/workloads/00000000-0000-4000-8000-000000000000").status_code == 404
    assert auditlog(api) == []


def test_the_window_is_time_in_minutes(api: Service) -> None:
    token = api.token("p1", "u1")
    workload = create_workload(api, token, [api.add_instance()])["id"]
    wait_status(api, token, workload, "available")
    with api.runtime.database.unit_of_work() as session:  # the create happened two hours ago
        session.execute(sa.update(AuditEntry).values(created_at=datetime.utcnow() - timedelta(hours=2)))
    with api.client(token) as client:
        client.post(f"/v1/p1/workloads/{workload}/unlock")
    assert [line["Action"] for line in auditlog(api, 60)] == ["workload.unlock"]
    assert [line["Action"] for line in auditlog(api, 180)] == ["workload.create", "workload.unlock"]
    assert [line["Action"] for line in auditlog(api)] == ["workload.create", "workload.unlock"]  # 1440 by default


@pytest.mark.parametrize("value", ["0", "-5", "soon", str(10 * 366 * 24 * 60 + 1)])
def test_a_bad_time_in_minutes_is_a_400_naming_it(api: Service, value: str) -> None:
    with admin(api) as client:
        response = client.get("/v1/admin/workloads/audit/auditlog", params={"time_in_minutes": value})
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"].startswith("time_in_minutes")


def test_a_member_may_not_read_the_log(api: Service) -> None:
    with api.client(api.token("p1", "u1")) as client:
        response = client.get("/v1/p1/workloads/audit/auditlog")
    assert response.status_code == 403
    assert response.json()["forbidden"]["message"] == "Policy doesn't allow workload:get_auditlog to be performed."
