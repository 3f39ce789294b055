"""Usage and chargeback over HTTP: what each endpoint reports, who may call it, and that
each costs one SQL statement whatever the number of workloads."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_query_count import add_workloads, statements_per_request
from tests.api.test_snapshots import take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, wait_status
from tests.conftest import Service

ADMIN_ONLY = ("storage_usage", "tenants_usage", "tenants_chargeback")


def admin(api: Service) -> httpx.Client:
    return api.client(api.token("admin", "root", roles=("admin",)))


def metric(api: Service, name: str, client: httpx.Client | None = None) -> Any:
    if client is None:
        with admin(api) as own:
            return metric(api, name, own)
    response = client.get(f"/v1/admin/workloads/metrics/{name}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def protected(api: Service) -> dict[str, Any]:
    """p1: a workload of two VMs with one snapshot; p2: a workload of one VM."""
    p1, p2 = api.token("p1", "u1"), api.token("p2", "u2")
    a, b = api.add_instance("p1", "a", size=4 << 20), api.add_instance("p1", "b")
    c = api.add_instance("p2", "c")
    api.add_instance("p2", "unprotected")
    w1 = create_workload(api, p1, [a, b], name="web")["id"]
    w2 = create_workload(api, p2, [c], project="p2", name="db")["id"]
    wait_status(api, p1, w1, "available")
    wait_status(api, p2, w2, "available", project="p2")
    with open(api.disks.inner.find_instances("p1", [a])[a].disks[0].path, "r+b") as disk:
        disk.write(b"\x5a" * (1 << 20))
    snap = wait_snapshot(api, p1, take_snapshot(api, p1, w1)["id"])
    wait_status(api, p1, w1, "available")
    return {"p1": p1, "p2": p2, "w1": w1, "w2": w2, "a": a, "b": b, "c": c, "size": snap["size"]}


def test_storage_usage_reports_each_target_with_its_capacity_and_backups(
        api: Service, protected: dict[str, Any]) -> None:
    [target] = metric(api, "storage_usage")["storage_usage"]
    assert target["storage_type"] == "nfs" and target["name"] == api.runtime.targets.choose().name
    assert target["total_capacity"] > 0 and target["total_capacity_humanized"].endswith(("GB", "TB", "MB"))
    assert 0 < target["total_utilization"] <= target["total_capacity"]
    assert target["backup_usage"] == protected["size"] > 0
    assert target["workloads"] == 2 and target["snapshots"] == 1


def test_tenants_usage_counts_protected_vms_and_bytes_by_project(api: Service, protected: dict[str, Any]) -> None:
    body = metric(api, "tenants_usage")
    assert body["tenants_usage"]["p1"] == {
        "vms_protected": 2, "total_vms": 2, "workloads": 1, "snapshots": 1,
        "used_capacity": protected["size"], "used_capacity_humanized": body["tenants_usage"]["p1"][
            "used_capacity_humanized"]}
    assert body["tenants_usage"]["p2"]["vms_protected"] == 1 and body["tenants_usage"]["p2"]["total_vms"] == 2
    assert body["global_usage"]["vms_protected"] == 3 and body["global_usage"]["total_vms"] == 4
    assert body["global_usage"]["used_capacity"] == protected["size"]


def test_chargeback_lists_each_projects_workloads_and_their_vms(api: Service, protected: dict[str, Any]) -> None:
    body = metric(api, "tenants_chargeback")
    assert sorted(body) == ["p1", "p2"]
    p1 = body["p1"]
    assert p1["tenant_name"] == "p1" and p1["vms_protected"] == 2 and p1["size"] == protected["size"]
    web = p1["workloads"][protected["w1"]]
    assert web["name"] == "web" and web["snapshots"] == 1 and web["size"] == protected["size"]
    assert web["protected_vms"] == {protected["a"]: {"id": protected["a"], "name": "a"},
                                    protected["b"]: {"id": protected["b"], "name": "b"}}
    assert list(body["p2"]["workloads"][protected["w2"]]["protected_vms"]) == [protected["c"]]


def test_vms_protected_lists_the_callers_project_only(api: Service, protected: dict[str, Any]) -> None:
    with api.client(protected["p1"]) as client:
        response = client.get("/v1/p1/workloads/metrics/vms_protected")
        other = client.get("/v1/p2/workloads/metrics/vms_protected")
    assert response.status_code == 200
    assert response.json() == {"protected_vms": [
        {"id": protected[n], "name": n, "workload_id": protected["w1"], "workload_name": "web",
         "project_id": "p1"} for n in ("a", "b")]}
    assert other.status_code == 400  # another project's URL


def test_a_member_may_not_read_the_admin_metrics(api: Service) -> None:
    with api.client(api.token("p1", "u1")) as client:
        for name in ADMIN_ONLY:
            response = client.get(f"/v1/p1/workloads/metrics/{name}")
            assert response.status_code == 403, name
            assert response.json()["forbidden"]["message"].startswith("Policy doesn't allow workload:get_")
    with api.client(None) as anonymous:
        assert anonymous.get("/v1/p1/workloads/metrics/vms_protected").status_code == 401


def test_an_unknown_metric_is_404(api: Service) -> None:
    with admin(api) as client:
        response = client.get("/v1/admin/workloads/metrics/everything")
    assert response.status_code == 404


def queries_of(api: Service, client: httpx.Client, path: str) -> list[str]:
    """The statements that served the request, less transaction control (SQLite's BEGIN)."""
    with statements_per_request(api) as seen:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return [s for s in seen[response.headers["X-Compute-Request-Id"]] if s.split()[0] not in ("BEGIN", "COMMIT")]


def test_each_metric_is_one_statement_for_1_and_200_workloads(api: Service) -> None:
    paths = [f"/v1/p1/workloads/metrics/{name}" for name in
             ("storage_usage", "tenants_usage", "tenants_chargeback", "vms_protected")]
    counts: dict[str, list[int]] = {path: [] for path in paths}
    with api.client(api.token("p1", "admin", roles=("admin",))) as client:
        for count in (1, 199):
            add_workloads(api, count)
            queries_of(api, client, paths[0])  # warm-up: the token is looked up, then remembered
            for path in paths:
                found = queries_of(api, client, path)
                assert len(found) == 1, f"{path}: {len(found)} statements:\n" + "\n".join(found[:3])
                counts[path].append(len(found))
    assert all(c == [1, 1] for c in counts.values()), counts
