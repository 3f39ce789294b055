"""The all-projects switches of the lists (`all_workloads`, `all_tenants`, the snapshots'
`all`): a caller the all-projects rule allows gets every project; anyone else gets their
own project, as from the original API, never a 403."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.test_workloads import create_workload, wait_status
from tests.conftest import Service, variant_service, wait_until

WORKLOAD_LISTS = ["/workloads", "/workloads/detail"]
SNAPSHOT_LISTS = ["/snapshots", "/snapshots/detail"]
WORKLOAD_SWITCHES = [{"all_workloads": "1", "all_tenants": "1"}, {"all_workloads": "true"},
                     {"all_tenants": "1"}]


def take_snapshot(api: Service, token: str, project: str, workload_id: str) -> str:
    with api.client(token) as client:
        response = client.post(f"/v1/{project}/workloads/{workload_id}", json={"snapshot": {"name": "s"}})
        assert response.status_code == 200, response.text
        snapshot_id: str = response.json()["snapshot"]["id"]
        wait_until(lambda: client.get(f"/v1/{project}/snapshots/{snapshot_id}").json()
                   ["snapshot"]["status"] == "available")
    wait_status(api, token, workload_id, "available", project)
    return snapshot_id


@pytest.fixture
def two_projects(api: Service) -> dict[str, Any]:
    """A workload with one snapshot in each of projects p1 and p2; a member of p1, an admin."""
    seeded: dict[str, Any] = {"member": api.token("p1", "u1"),
                              "admin": api.token("admin", "root", roles=("admin",))}
    for project in ("p1", "p2"):
        token = api.token(project, f"user-{project}")
        workload = create_workload(api, token, [api.add_instance(project)], project=project)
        wait_status(api, token, workload["id"], "available", project)
        seeded[project] = {"workload": workload["id"],
                           "snapshot": take_snapshot(api, token, project, workload["id"])}
    return seeded


def listed(api: Service, token: str, project: str, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    with api.client(token) as client:
        response = client.get(f"/v1/{project}{path}", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["snapshots" if "snapshots" in path else "workloads"]
    return items


@pytest.mark.parametrize("path", WORKLOAD_LISTS)
def test_a_members_all_workloads_or_all_tenants_lists_their_own_project(
        api: Service, two_projects: dict[str, Any], path: str) -> None:
    for params in WORKLOAD_SWITCHES:
        workloads = listed(api, two_projects["member"], "p1", path, params)
        assert [w["id"] for w in workloads] == [two_projects["p1"]["workload"]], params
        assert {w["project_id"] for w in workloads} == {"p1"}


@pytest.mark.parametrize("path", WORKLOAD_LISTS)
def test_an_admins_all_workloads_lists_every_project(api: Service, two_projects: dict[str, Any], path: str) -> None:
    expected = sorted([two_projects["p1"]["workload"], two_projects["p2"]["workload"]])
    for params in ({"all_workloads": "1", "all_tenants": "1"}, {"all_workloads": "true"}):
        workloads = listed(api, two_projects["admin"], "admin", path, params)
        assert sorted(w["id"] for w in workloads) == expected, params
    # all_tenants alone is no all-projects switch here, for an admin either: their own project.
    assert listed(api, two_projects["admin"], "admin", path, {"all_tenants": "1"}) == []


@pytest.mark.parametrize("path", SNAPSHOT_LISTS)
def test_a_members_all_snapshots_lists_their_own_project(api: Service, two_projects: dict[str, Any],
                                                         path: str) -> None:
    snapshots = listed(api, two_projects["member"], "p1", path, {"all": "1"})
    assert [s["id"] for s in snapshots] == [two_projects["p1"]["snapshot"]]


@pytest.mark.parametrize("path", SNAPSHOT_LISTS)
def test_an_admins_all_snapshots_lists_every_project(api: Service, two_projects: dict[str, Any], path: str) -> None:
    snapshots = listed(api, two_projects["admin"], "admin", path, {"all": "true"})
    assert sorted(s["id"] for s in snapshots) == sorted([two_projects["p1"]["snapshot"],
                                                         two_projects["p2"]["snapshot"]])
    assert listed(api, two_projects["admin"], "admin", path, {}) == []


def test_a_members_filter_on_another_project_is_still_refused(api: Service, two_projects: dict[str, Any]) -> None:
    with api.client(two_projects["member"]) as client:
        response = client.get("/v1/p1/workloads", params={"all_workloads": "1", "project_id": "p2"})
    assert response.status_code == 403
    assert response.json() == {"forbidden": {"code": 403, "message":
                               "Policy doesn't allow workload:get_all_tenants to be performed."}}


def test_the_policy_file_decides_who_may_list_every_project(api: Service, two_projects: dict[str, Any],
                                                           tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"workload:get_all_tenants": "role:member"\n'
                           '"snapshot:get_all_tenants": "role:member"\n')
    both_workloads = sorted([two_projects["p1"]["workload"], two_projects["p2"]["workload"]])
    both_snapshots = sorted([two_projects["p1"]["snapshot"], two_projects["p2"]["snapshot"]])
    with variant_service(api, policy_file=policy_file) as granting:
        workloads = listed(granting, two_projects["member"], "p1", "/workloads", {"all_workloads": "1"})
        snapshots = listed(granting, two_projects["member"], "p1", "/snapshots", {"all": "1"})
    assert sorted(w["id"] for w in workloads) == both_workloads
    assert sorted(s["id"] for s in snapshots) == both_snapshots


def test_a_bad_switch_value_is_still_a_bad_request(api: Service) -> None:
    with api.client(api.token("p1")) as client:
        workloads = client.get("/v1/p1/workloads/detail", params={"all_workloads": "perhaps"})
        snapshots = client.get("/v1/p1/snapshots/detail", params={"all": "perhaps"})
    assert workloads.status_code == 400 and "all_workloads" in workloads.json()["badRequest"]["message"]
    assert snapshots.status_code == 400 and "all:" in snapshots.json()["badRequest"]["message"]
