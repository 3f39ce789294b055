"""Tiered (6.x) jobschedules over HTTP: accepted, shown back, refused by field, and
replaced by a tiered policy."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from cairn.db.models import Workload
from tests.api.test_policies import admin_client, assign
from tests.api.test_workloads import create_workload, show, wait_status
from tests.conftest import Service

# A 6.x workload-create jobschedule with every tier, in the API guide's field forms:
# integers for interval and retention, lists of strings for times, days and months,
# a list of integers for the days of the month.
TIERED = {
    "timezone": "Europe/Berlin",
    "start_date": "06/01/2030",
    "end_date": "06/01/2031",
    "start_time": "01:00 AM",
    "enabled": True,
    "hourly": {"interval": 4, "retention": 6, "snapshot_type": "incremental"},
    "daily": {"backup_time": ["23:00", "02:30"], "retention": 7, "snapshot_type": "incremental"},
    "weekly": {"backup_day": ["sun", "wed"], "retention": 4, "snapshot_type": "full"},
    "monthly": {"month_backup_day": [1, 15], "retention": 12, "snapshot_type": "full"},
    "yearly": {"backup_month": ["jan"], "retention": 3, "snapshot_type": "full"},
    "manual": {"retention": 5, "retention_days_to_keep": 30},
}

SHOWN_TIERS = {
    "hourly": {"interval": 4, "retention": 6, "snapshot_type": "incremental"},
    "daily": {"backup_time": ["02:30", "23:00"], "retention": 7, "snapshot_type": "incremental"},
    "weekly": {"backup_day": ["wed", "sun"], "retention": 4, "snapshot_type": "full"},
    "monthly": {"month_backup_day": [1, 15], "retention": 12, "snapshot_type": "full"},
    "yearly": {"backup_month": ["jan"], "retention": 3, "snapshot_type": "full"},
    "manual": {"retention": 5, "retention_days_to_keep": 30},
}


@pytest.fixture
def member(api: Service) -> str:
    return api.token("p1", "u1")


def post_workload(api: Service, token: str, jobschedule: dict[str, Any]) -> Any:
    with api.client(token) as client:
        return client.post("/v1/p1/workloads", json={"workload": {
            "name": "w", "instances": [{"instance-id": api.add_instance()}], "jobschedule": jobschedule}})


def workload_count(api: Service) -> int:
    with api.runtime.database.reader() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(Workload)) or 0)


def test_the_6x_tiered_create_body_is_accepted_and_shown_back(api: Service, member: str) -> None:
    created = create_workload(api, member, [api.add_instance()], jobschedule=TIERED)
    schedule = show(api, member, created["id"])["jobschedule"]
    assert {name: schedule[name] for name in SHOWN_TIERS} == SHOWN_TIERS
    assert schedule["enabled"] is True and schedule["timezone"] == "Europe/Berlin"
    assert schedule["start_date"] == "06/01/2030" and schedule["start_time"] == "1:00 AM"
    assert schedule["end_date"] == "06/01/2031"
    # the tiered form replaces the 4.x cadence fields, which are not shown
    assert not {"interval", "retention_policy_type", "retention_policy_value",
                "fullbackup_interval"} & set(schedule)
    assert schedule["nextrun"] > 0
    with api.client(member) as client:
        listed = client.get("/v1/p1/workloads/detail").json()["workloads"]
    (entry,) = [w for w in listed if w["id"] == created["id"]]
    assert {name: entry["jobschedule"][name] for name in SHOWN_TIERS} == SHOWN_TIERS


def available_tiered_workload(api: Service, member: str) -> dict[str, Any]:
    """A modify is refused while the workload is 'creating', so wait for its create job."""
    created = create_workload(api, member, [api.add_instance()], jobschedule=TIERED)
    return wait_status(api, member, created["id"], "available")


def test_what_a_tiered_workload_shows_can_be_sent_back(api: Service, member: str) -> None:
    created = available_tiered_workload(api, member)
    shown = show(api, member, created["id"])["jobschedule"]
    sent = {key: value for key, value in shown.items()
            if key not in ("appliance_timezone", "global_jobscheduler", "nextrun")}
    with api.client(member) as client:
        response = client.put(f"/v1/p1/workloads/{created['id']}",
                              json={"workload": {"jobschedule": sent}})
    assert response.status_code == 202, response.text
    again = show(api, member, created["id"])["jobschedule"]
    assert {key: again[key] for key in sent} == sent


def test_a_modify_replaces_the_tiers_it_names_and_null_removes_one(api: Service, member: str) -> None:
    created = available_tiered_workload(api, member)
    with api.client(member) as client:
        response = client.put(f"/v1/p1/workloads/{created['id']}", json={"workload": {"jobschedule": {
            "hourly": {"interval": 2, "retention": 12}, "yearly": None}}})
    assert response.status_code == 202, response.text
    schedule = show(api, member, created["id"])["jobschedule"]
    assert schedule["hourly"] == {"interval": 2, "retention": 12, "snapshot_type": "incremental"}
    assert "yearly" not in schedule and schedule["monthly"] == SHOWN_TIERS["monthly"]


def test_a_4x_field_turns_a_tiered_schedule_back_into_the_4x_form(api: Service, member: str) -> None:
    created = available_tiered_workload(api, member)
    with api.client(member) as client:
        response = client.put(f"/v1/p1/workloads/{created['id']}",
                              json={"workload": {"jobschedule": {"interval": "6"}}})
    assert response.status_code == 202, response.text
    schedule = show(api, member, created["id"])["jobschedule"]
    assert schedule["interval"] == "6" and "hourly" not in schedule
    assert schedule["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize(("change", "field"), [
    ({"hourly": {"interval": 5, "retention": 3}}, "jobschedule.hourly.interval"),
    ({"hourly": {"interval": 4}}, "jobschedule.hourly.retention"),
    ({"hourly": {"interval": 4, "retention": "many"}}, "jobschedule.hourly.retention"),
    ({"hourly": {"interval": 4, "retention": 2, "snapshot_type": "differential"}},
     "jobschedule.hourly.snapshot_type"),
    ({"hourly": {"interval": 4, "retention": 2, "every": 1}}, "jobschedule.hourly.every"),
    ({"daily": {"backup_time": ["25:00"], "retention": 1}}, "jobschedule.daily.backup_time"),
    ({"daily": {"backup_time": "02:00", "retention": 1}}, "jobschedule.daily.backup_time"),
    ({"weekly": {"backup_day": ["someday"], "retention": 1}}, "jobschedule.weekly.backup_day"),
    ({"weekly": {"backup_day": ["mon"], "retention": 1, "snapshot_type": "incremental"}},
     "jobschedule.weekly.snapshot_type"),
    ({"monthly": {"month_backup_day": [32], "retention": 1}}, "jobschedule.monthly.month_backup_day"),
    ({"yearly": {"backup_month": ["smarch"], "retention": 1}}, "jobschedule.yearly.backup_month"),
    ({"manual": {"retention": 1, "retention_days_to_keep": 0}},
     "jobschedule.manual.retention_days_to_keep"),
    ({"hourly": None}, "jobschedule.hourly"),
    ({"daily": None}, "jobschedule.weekly"),
    ({"monthly": None}, "jobschedule.yearly"),
    ({"interval": "4"}, "jobschedule.interval"),
    ({"retention_policy_value": "4"}, "jobschedule.retention_policy_value"),
])
def test_a_bad_tier_is_refused_naming_the_field_and_writes_nothing(
        api: Service, member: str, change: dict[str, Any], field: str) -> None:
    before = workload_count(api)
    response = post_workload(api, member, {**TIERED, **change})
    assert response.status_code == 400, response.text
    assert response.json()["badRequest"]["message"].startswith(field + ":"), response.text
    assert workload_count(api) == before


def test_a_tiered_policy_replaces_the_workloads_schedule(api: Service) -> None:
    tiers = {name: TIERED[name] for name in ("hourly", "daily", "weekly")}
    with admin_client(api) as client:
        response = client.post("/v1/admin/workload_policy", json={"workload_policy": {
            "display_name": "tiered", "field_values": tiers}})
        assert response.status_code == 200, response.text
        policy = response.json()["policy"]
        mixed = client.post("/v1/admin/workload_policy", json={"workload_policy": {
            "display_name": "mixed", "field_values": {**tiers, "interval": "4"}}})
        orphan = client.post("/v1/admin/workload_policy", json={"workload_policy": {
            "display_name": "orphan", "field_values": {"weekly": TIERED["weekly"]}}})
    assert {f["policy_field_name"]: f["value"] for f in policy["field_values"]} == {
        name: SHOWN_TIERS[name] for name in tiers}
    assert mixed.status_code == 400 and "workload_policy.field_values.interval:" in mixed.text
    assert orphan.status_code == 400 and "workload_policy.field_values.hourly:" in orphan.text

    assign(api, policy["id"], add=["p1"])
    token = api.token("p1")
    created = create_workload(api, token, [api.add_instance()], metadata={"policy_id": policy["id"]},
                              jobschedule={"interval": "12", "timezone": "UTC",
                                           "monthly": TIERED["monthly"]})
    schedule = show(api, token, created["id"])["jobschedule"]
    assert {name: schedule.get(name) for name in SHOWN_TIERS} == {
        **{name: None for name in SHOWN_TIERS}, **{name: SHOWN_TIERS[name] for name in tiers}}
    assert "interval" not in schedule and schedule["timezone"] == "UTC"
