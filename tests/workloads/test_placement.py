"""Which worker a workload's disk jobs are routed to, from the hosts its instances report."""

from __future__ import annotations

import pytest

from cairn.errors import Conflict
from cairn.platforms.base import DiskInfo, InstanceInfo
from cairn.workloads.placement import routing, worker_for


def _instance(name: str, host: str | None) -> InstanceInfo:
    return InstanceInfo(id=f"id-{name}", project_id="p1", name=name,
                        disks=(DiskInfo(path=f"/d/{name}.raw", format="raw", size=1),), host=host)


def test_instances_on_shared_storage_go_to_any_worker() -> None:
    assert worker_for([_instance("a", None), _instance("b", None)]) is None
    assert routing(None) == {}


def test_instances_on_one_host_go_to_its_worker_even_beside_shared_ones() -> None:
    assert worker_for([_instance("a", "w2"), _instance("b", None), _instance("c", "w2")]) == "w2"
    assert routing("w2") == {"worker": "w2"}


def test_instances_on_two_hosts_are_refused_naming_each_host_and_its_instances() -> None:
    with pytest.raises(Conflict, match=r"w1: a, c; w2: b"):
        worker_for([_instance("c", "w1"), _instance("b", "w2"), _instance("a", "w1")])
