"""Bad input: a 400 (or 413) that names the field, and nothing written."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from cairn.db.models import Job, Workload, WorkloadInstance
from tests.conftest import Service


def row_counts(api: Service) -> tuple[int, int, int]:
    with api.runtime.database.reader() as session:
        return tuple(session.scalar(sa.select(sa.func.count()).select_from(model))  # type: ignore[return-value]
                     for model in (Workload, WorkloadInstance, Job))


def post_workload(api: Service, token: str, body: Any) -> Any:
    with api.client(token) as client:
        return client.post("/v1/p1/workloads", json=body)


BAD_CREATES = [
    ({"workload": {"name": "w", "instances": "VM", "oops": 1}}, "workload.instances"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}], "oops": 1}}, "workload.oops"),
    ({"workload": {"instances": [{"instance-id": "VM"}]}}, "workload.name"),
    ({"workload": {"name": "", "instances": [{"instance-id": "VM"}]}}, "workload.name"),
    ({"workload": {"name": "x" * 256, "instances": [{"instance-id": "VM"}]}}, "workload.name"),
    ({"workload": {"name": 5, "instances": [{"instance-id": "VM"}]}}, "workload.name"),
    ({"workload": {"name": "w", "instances": []}}, "workload.instances"),
    ({"workload": {"name": "w"}}, "workload.instances"),
    ({"workload": {"name": "w", "instances": [{"id": "VM"}]}}, "workload.instances.0"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}, {"instance-id": "VM"}]}},
     "instances"),
    ({"workload": {"name": "w", "source_platform": "vmware", "instances": [{"instance-id": "VM"}]}},
     "workload.source_platform"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}], "metadata": {"k": 1}}},
     "workload.metadata.k"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}],
                   "metadata": {"workload_approx_backup_size": "9"}}},
     "metadata.workload_approx_backup_size"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}],
                   "jobschedule": {"end_date": "15/27/2020"}}}, "jobschedule.end_date"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}],
                   "jobschedule": {"start_date": "10/27/2030", "end_date": "10/26/2030"}}},
     "jobschedule.end_date"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}],
                   "jobschedule": {"timezone": "Mars/Olympus"}}}, "jobschedule.timezone"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}],
                   "jobschedule": {"interval": "0"}}}, "jobschedule.interval"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}],
                   "jobschedule": {"start_time": "25:00"}}}, "jobschedule.start_time"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}],
                   "jobschedule": {"retention_policy_value": "0"}}}, "jobschedule.retention_policy_value"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}],
                   "jobschedule": {"retention_policy_type": "forever"}}}, "jobschedule.retention_policy_type"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}],
                   "jobschedule": {"fullbackup_interval": "-2"}}}, "jobschedule.fullbackup_interval"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}],
                   "jobschedule": {"surprise": "1"}}}, "jobschedule.surprise"),
    ({"workload": {"name": "w", "instances": [{"instance-id": "VM"}],
                   "jobschedule": {"enabled": "maybe"}}}, "jobschedule.enabled"),
    ({"workloads": {}}, "workload"),
    ([], "body"),
]


@pytest.mark.parametrize("body,field", BAD_CREATES, ids=[f for _, f in BAD_CREATES])
def test_bad_create_names_the_field_and_writes_nothing(api: Service, body: Any, field: str) -> None:
    token = api.token()
    vm = api.add_instance()
    body = _substitute(body, vm)
    before = row_counts(api)
    response = post_workload(api, token, body)
    assert response.status_code == 400, response.text
    message = response.json()["badRequest"]["message"]
    assert field in message, message
    assert response.json()["badRequest"]["code"] == 400
    assert row_counts(api) == before


def _substitute(body: Any, vm: str) -> Any:
    if isinstance(body, dict):
        return {k: _substitute(v, vm) for k, v in body.items()}
    if isinstance(body, list):
        return [_substitute(v, vm) for v in body]
    return vm if body == "VM" else body


def test_malformed_json_is_a_bad_request(api: Service) -> None:
    with api.client(api.token()) as client:
        response = client.post("/v1/p1/workloads", content=b"{not json",
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["badRequest"]["message"]


def test_oversized_body_is_refused_with_413(api: Service) -> None:
    big = {"workload": {"name": "w", "description": "x" * (1024 * 1024 + 10),
                        "instances": [{"instance-id": "i"}]}}
    with api.client(api.token()) as client:
        response = client.post("/v1/p1/workloads", json=big)
    assert response.status_code == 413
    assert response.json()["overLimit"]["code"] == 413
    assert response.headers["x-compute-request-id"].startswith("req-")


def test_refused_modify_changes_nothing(api: Service) -> None:
    from tests.api.test_workloads import create_workload, show, wait_status

    token = api.token()
    vm = api.add_instance()
    created = create_workload(api, token, [vm], metadata={"a": "1"})
    before = wait_status(api, token, created["id"], "available")
    with api.client(token) as client:
        response = client.put(f"/v1/p1/workloads/{created['id']}", json={"workload": {
            "name": "new-name", "metadata": {"b": "2"}, "instances": [{"instance-id": "missing"}]}})
    assert response.status_code == 400
    after = show(api, token, created["id"])
    for view in (before, after):  # nextrun counts down between the two reads
        view["jobschedule"].pop("nextrun", None)
    assert after == before


@pytest.mark.parametrize("query", [{"all_workloads": "perhaps"}, {"limit": "0"}, {"limit": "ten"}])
def test_bad_list_query_is_a_bad_request(api: Service, query: dict[str, str]) -> None:
    with api.client(api.token()) as client:
        response = client.get("/v1/p1/workloads", params=query)
    assert response.status_code == 400
    assert next(iter(query)) in response.json()["badRequest"]["message"]


def test_unknown_route_and_method_are_faults(api: Service) -> None:
    with api.client(api.token()) as client:
        missing = client.get("/v1/p1/nothing-here")
        wrong = client.patch("/v1/p1/workloads")
    assert missing.status_code == 404 and "itemNotFound" in missing.json()
    assert wrong.status_code == 405 and wrong.json()["badMethod"]["code"] == 405


def test_restore_option_with_an_integer_no_column_can_hold_names_it(api: Service) -> None:
    token = api.token()
    before = row_counts(api)
    body = {"restore": {"options": {"type": "openstack", "openstack": {
        "instances": [], "networks": [{"mtu": 2**64}]}}}}
    with api.client(token) as client:
        response = client.post("/v1/p1/workloads/w1/snapshots/s1/restores", json=body)
    assert response.status_code == 400, response.text
    assert "networks.0.mtu" in response.json()["badRequest"]["message"]
    assert row_counts(api) == before
