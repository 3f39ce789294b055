"""Workload lists joined from remembered encodings: the same bytes as encoding each view,
and never a stale view once a workload changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cairn.api import views
from cairn.api.render_cache import WorkloadViewCache
from cairn.workloads.jobschedule import parse_jobschedule
from cairn.workloads.records import MemberInstance, StorageUsage, WorkloadRecord, WorkloadSummary, WorkloadVersion
from tests.api.test_workloads import create_workload, wait_status
from tests.conftest import Service

NOW = datetime(2026, 3, 1, 12, 0, 0, 250_000)
LINKS = views.Links("http://cairn.example:8780/")


def schedule(**fields: Any) -> dict[str, Any]:
    return parse_jobschedule(fields, service_timezone="UTC", now=NOW.replace(tzinfo=UTC)).to_storage()


def record(n: int, *, jobschedule: dict[str, Any], next_fire_at: datetime | None,
           storage: StorageUsage = StorageUsage(), instances: int = 1) -> WorkloadRecord:
    return WorkloadRecord(
        id=f"00000000-0000-4000-8000-{n:012d}", project_id="p1", user_id="u1",
        name=f"wörk \"{n}\" <\u2028>", description="no-description",
        workload_type_id="f82ce76f-17fe-438b-aa37-7a023058e50d", status="available",
        error_msg=None if n % 2 else "disk gone", availability_zone="nova", jobschedule=jobschedule,
        metadata={"hostnames": "[]", "team": f"t{n}"}, backup_target="default",
        created_at=NOW - timedelta(days=n), updated_at=NOW - timedelta(hours=n),
        next_fire_at=next_fire_at,
        instances=tuple(MemberInstance(f"vm-{n}-{i}", f"vm{i}", {"k": str(i)}) for i in range(instances)),
        storage=storage)


RECORDS = [
    record(1, jobschedule=schedule(start_time="9:00 PM"), next_fire_at=NOW + timedelta(hours=3, microseconds=1)),
    record(2, jobschedule=schedule(start_time="1:00 AM", interval="6hr"), next_fire_at=NOW - timedelta(minutes=1),
           storage=StorageUsage(full_count=1, full_bytes=1000, incremental_count=2, incremental_bytes=30)),
    record(3, jobschedule=schedule(enabled=False), next_fire_at=None, instances=3),
    record(4, jobschedule=schedule(start_date="01/01/2019", end_date="01/01/2020"), next_fire_at=None, instances=0),
]


def version(r: WorkloadRecord) -> WorkloadVersion:
    """As a list reads it: the timestamps as datetimes (PostgreSQL, MariaDB) or, for every
    other workload here, as SQLite's stored text."""
    if int(r.id[-1]) % 2:
        return (r.id, r.updated_at, r.next_fire_at)
    return (r.id, str(r.updated_at), None if r.next_fire_at is None else str(r.next_fire_at))


def expected_details(records: list[WorkloadRecord], *, global_jobscheduler: bool, label: Any) -> bytes:
    return orjson.dumps({"workloads": [views.workload_detail(
        r, LINKS, appliance_timezone="Europe/Berlin", global_jobscheduler=global_jobscheduler,
        backup_target_label=label, now=NOW) for r in records]})


def test_detail_list_is_byte_for_byte_the_encoded_detail_views() -> None:
    cache = WorkloadViewCache("Europe/Berlin")
    by_id = {r.id: r for r in RECORDS}
    usage = {r.id: r.storage for r in RECORDS}
    for global_jobscheduler in (True, False):
        for label in (None, lambda name: f"target {name}"):
            for _ in range(2):  # once encoding, once from the remembered pieces
                body = cache.details([version(r) for r in RECORDS], lambda ids: {i: by_id[i] for i in ids},
                                     usage, LINKS, global_jobscheduler=global_jobscheduler,
                                     backup_target_label=label, now=NOW)
                assert body == expected_details(RECORDS, global_jobscheduler=global_jobscheduler, label=label)
    shown = orjson.loads(body)["workloads"]
    assert "nextrun" not in shown[0]["jobschedule"]  # the global scheduler was off last


def test_nextrun_and_storage_usage_are_current_on_every_request() -> None:
    cache = WorkloadViewCache("UTC")
    first = RECORDS[0]
    fetch = lambda ids: {first.id: first}  # noqa: E731
    body = cache.details([version(first)], fetch, {}, LINKS, global_jobscheduler=True,
                         backup_target_label=None, now=NOW)
    assert orjson.loads(body)["workloads"][0]["jobschedule"]["nextrun"] == 3 * 3600 + 1
    later, used = NOW + timedelta(hours=1), StorageUsage(full_count=1, full_bytes=7)
    body = cache.details([version(first)], lambda ids: {}, {first.id: used}, LINKS,
                         global_jobscheduler=True, backup_target_label=None, now=later)
    shown = orjson.loads(body)["workloads"][0]
    assert shown["jobschedule"]["nextrun"] == 2 * 3600 + 1
    assert shown["storage_usage"] == {"usage": 7, "full": {"snap_count": 1, "usage": 7},
                                      "incremental": {"snap_count": 0, "usage": 0}}


def test_a_workload_is_read_again_only_when_its_version_changes() -> None:
    cache = WorkloadViewCache("UTC")
    summaries = [WorkloadSummary(r.id, r.project_id, r.user_id, r.name, r.description, r.workload_type_id,
                                 r.status, r.created_at, r.updated_at) for r in RECORDS]
    fetched: list[list[str]] = []

    def fetch(ids: list[str]) -> dict[str, WorkloadSummary]:
        fetched.append(ids)
        return {s.id: s for s in current if s.id in ids}

    current = summaries
    listed = [version(r) for r in RECORDS]
    expected = orjson.dumps({"workloads": [views.workload_summary(s, LINKS) for s in summaries]})
    assert cache.summaries(listed, fetch, LINKS) == expected
    assert cache.summaries(listed, fetch, LINKS) == expected
    assert fetched == [[r.id for r in RECORDS]]
    renamed = summaries[1]._replace(name="renamed", updated_at=NOW)
    current = [summaries[0], renamed, *summaries[2:]]
    listed[1] = (listed[1][0], NOW, None)
    body = orjson.loads(cache.summaries(listed, fetch, LINKS))["workloads"]
    assert fetched[1:] == [[renamed.id]]
    assert [w["name"] for w in body][:2] == [summaries[0].name, "renamed"]


def test_lists_show_changes_made_after_they_were_served(api: Service) -> None:
    member, admin = api.token("p1", "u1"), api.token("p1", "root", roles=("admin",))
    vm1, vm2 = api.add_instance("p1", "one"), api.add_instance("p1", "two")
    created = create_workload(api, member, [vm1])
    wait_status(api, member, created["id"], "available")
    with api.client(member) as client:
        assert client.get("/v1/p1/workloads").json()["workloads"][0]["name"] == "web"
        detail = client.get("/v1/p1/workloads/detail").json()["workloads"][0]
        assert detail["instances"][0]["id"] == vm1 and "backup_media_target" not in detail["metadata"]
        response = client.put(f"/v1/p1/workloads/{created['id']}", json={"workload": {
            "name": "renamed", "instances": [{"instance-id": vm2}], "jobschedule": {"enabled": False}}})
        assert response.status_code == 202, response.text
        assert client.get("/v1/p1/workloads").json()["workloads"][0]["name"] == "renamed"
        detail = client.get("/v1/p1/workloads/detail").json()["workloads"][0]
    assert detail["name"] == "renamed" and [i["id"] for i in detail["instances"]] == [vm2]
    assert detail["jobschedule"]["enabled"] is False and "nextrun" not in detail["jobschedule"]
    with api.client(admin) as client:  # the same workload, as an admin sees it
        shown = client.get("/v1/p1/workloads/detail").json()["workloads"][0]
    assert shown["metadata"]["backup_media_target"]
    with api.client(member) as client:
        assert "backup_media_target" not in client.get("/v1/p1/workloads/detail").json()["workloads"][0]["metadata"]
