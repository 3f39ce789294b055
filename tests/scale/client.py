"""A tenant talking to a scaled-out Cairn over HTTP, and the small disks it protects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import wait_until
from tests.scale.conftest import Cluster


class Caller:
    """A member of project p1 talking to one api replica."""

    def __init__(self, cluster: Cluster, api_index: int) -> None:
        self.cluster = cluster
        self.base = f"{cluster.api_urls[api_index]}/v1/p1"
        self.headers = {"X-Auth-Token": _token(cluster)}

    def workload(self, disk: Path, name: str, host: str | None = None) -> str:
        """Register an instance of `disk` (`cairn instance add`, on worker `host` if given) and
        make a workload of it; returns its id once it is available."""
        where = ("--host", host) if host else ()
        instance = self.cluster.cairn("instance", "add", "--project", "p1", "--name", name, "--disk", str(disk),
                                      *where)
        workload = self.create_workload(instance, name)
        self.wait_workload(workload, "available")
        return workload

    def create_workload(self, instance: str, name: str, jobschedule: dict[str, Any] | None = None) -> str:
        """POST a workload of one instance; returns its id at once (it is `creating`)."""
        body: dict[str, Any] = {"name": name, "instances": [{"instance-id": instance}]}
        if jobschedule is not None:
            body["jobschedule"] = jobschedule
        response = httpx.post(f"{self.base}/workloads", headers=self.headers, json={"workload": body})
        assert response.status_code == 202, response.text
        return str(response.json()["workload"]["id"])

    def snapshots_of(self, workload: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.base}/snapshots/detail", headers=self.headers, params={"workload_id": workload})
        assert response.status_code == 200, response.text
        return list(response.json()["snapshots"])

    def wait_workload(self, workload: str, status: str, timeout: float = 60) -> dict[str, Any]:
        return wait_until(lambda: (w := httpx.get(f"{self.base}/workloads/{workload}", headers=self.headers)
                                   .json()["workload"])["status"] == status and w, timeout=timeout, interval=0.1)

    def snapshot(self, workload: str) -> str:
        response = httpx.post(f"{self.base}/workloads/{workload}", headers=self.headers)
        assert response.status_code == 200, response.text
        return str(response.json()["snapshot"]["id"])

    def snapshot_status(self, snapshot: str) -> dict[str, Any]:
        return dict(httpx.get(f"{self.base}/snapshots/{snapshot}", headers=self.headers).json()["snapshot"])

    def wait_snapshot_ended(self, snapshot: str, timeout: float = 120) -> dict[str, Any]:
        return wait_until(lambda: (s := self.snapshot_status(snapshot))["status"]
                          in ("available", "error", "cancelled") and s, timeout=timeout, interval=0.1)


_TOKENS: dict[str, str] = {}


def _token(cluster: Cluster) -> str:
    if cluster.database_url not in _TOKENS:
        _TOKENS[cluster.database_url] = cluster.cairn("token", "create", "--project", "p1", "--user", "u1")
    return _TOKENS[cluster.database_url]


def small_disk(cluster: Cluster, name: str) -> Path:
    path = cluster.data_dir / "disks" / f"{name}.raw"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"cairn" * 200_000)
        handle.truncate(8 << 20)
    return path


def quick_workloads(cluster: Cluster, names: list[str], jobschedule: dict[str, Any] | None = None) -> dict[str, str]:
    """One small-disk workload per name (instances registered in one go, the workloads
    made through both api replicas in turn); returns name → workload id once all are
    available."""
    instances = cluster.add_instances("p1", {name: small_disk(cluster, name) for name in names})
    callers = [Caller(cluster, 0), Caller(cluster, 1)]
    workloads = {name: callers[index % 2].create_workload(instances[name], name, jobschedule)
                 for index, name in enumerate(names)}
    for workload in workloads.values():
        callers[0].wait_workload(workload, "available")
    return workloads

