"""Restore planning on its own: what each instance and disk of a snapshot becomes, and
every refusal naming the request field."""

from __future__ import annotations

import pytest

from cairn.errors import Conflict, InvalidInput
from cairn.platforms.base import DiskInfo, InstanceInfo
from cairn.workloads.restore_plan import InstanceChoice, RestoreRequest, plan_restore
from cairn.workloads.snapshot_records import SnapshotDisk, SnapshotInstance

RESTORE_ID = "0123abcd-0000-0000-0000-000000000000"


def disk(instance: str, index: int, path: str) -> SnapshotDisk:
    return SnapshotDisk(id=f"{instance}-{index}", name=path.rsplit("/", 1)[-1], size=1 << 20, format="raw",
                        restore_size=1 << 20, path=path, manifest_key=f"w/s/{instance}/{index}")


WEB = SnapshotInstance("web", "web1", {}, (disk("web", 0, "/d/web.raw"), disk("web", 1, "/d/web-data.img")))
DB = SnapshotInstance("db", "db1", {}, (disk("db", 0, "/d/db.qcow2"),))
SNAPSHOT = (WEB, DB)


def live(instance: SnapshotInstance, paths: list[str] | None = None) -> InstanceInfo:
    return InstanceInfo(instance.id, "p1", instance.name, tuple(
        DiskInfo(p, "raw", 1 << 20) for p in (paths if paths is not None else [d.path for d in instance.vdisks])))


def test_oneclick_brings_every_instance_back_beside_the_original_files() -> None:
    plan = plan_restore(RestoreRequest(restore_type="oneclick"), SNAPSHOT, RESTORE_ID, {})
    assert [(p.source.id, p.name, p.inplace) for p in plan] == [("web", "web1", False), ("db", "db1", False)]
    assert [d.destination for p in plan for d in p.disks] == [
        "/d/web-restore-0123abcd.raw", "/d/web-data-restore-0123abcd.img", "/d/db-restore-0123abcd.qcow2"]
    assert all(d.creates_file for p in plan for d in p.disks)


def test_oneclick_ignores_instance_choices() -> None:
    request = RestoreRequest(restore_type="oneclick", instances=(InstanceChoice("db", include=False),))
    assert [p.source.id for p in plan_restore(request, SNAPSHOT, RESTORE_ID, {})] == ["web", "db"]


def test_selective_takes_the_included_instances_under_their_new_names_and_chosen_disks() -> None:
    request = RestoreRequest(restore_type="selective", instances=(
        InstanceChoice("web", name="web-copy", vdisks=("web-1",)), InstanceChoice("db", include=False)))
    (only,) = plan_restore(request, SNAPSHOT, RESTORE_ID, {})
    assert only.name == "web-copy" and [d.source.id for d in only.disks] == ["web-1"]


@pytest.mark.parametrize(("choices", "field", "says"), [
    ((InstanceChoice("nope"),), "restore.options.openstack.instances", "instance nope is not in the snapshot"),
    ((InstanceChoice("web", include=False), InstanceChoice("db", include=False)),
     "restore.options.openstack.instances", "no instance is included"),
    ((InstanceChoice("web", vdisks=("db-0",)),), "restore.options.openstack.instances.vdisks",
     "disk db-0 is not a disk of instance web"),
])
def test_selective_refuses_choices_the_snapshot_cannot_meet(choices: tuple[InstanceChoice, ...], field: str,
                                                           says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        plan_restore(RestoreRequest(restore_type="selective", instances=choices), SNAPSHOT, RESTORE_ID, {})
    assert refused.value.field == field and says in refused.value.message


def test_inplace_writes_over_the_live_instances_disks() -> None:
    current = {"web": live(WEB), "db": live(DB)}
    plan = plan_restore(RestoreRequest(restore_type="inplace"), SNAPSHOT, RESTORE_ID, current)
    assert [d.destination for p in plan for d in p.disks] == ["/d/web.raw", "/d/web-data.img", "/d/db.qcow2"]
    assert not any(d.creates_file for p in plan for d in p.disks)
    assert [p.live for p in plan] == [current["web"], current["db"]]


def test_inplace_refuses_an_instance_that_is_gone() -> None:
    with pytest.raises(Conflict, match="Instance db no longer exists"):
        plan_restore(RestoreRequest(restore_type="inplace"), SNAPSHOT, RESTORE_ID, {"web": live(WEB)})


def test_inplace_refuses_a_disk_the_instance_no_longer_has() -> None:
    current = {"web": live(WEB, ["/d/web.raw"]), "db": live(DB)}
    with pytest.raises(Conflict, match="Disk /d/web-data.img is no longer a disk of instance web1"):
        plan_restore(RestoreRequest(restore_type="inplace"), SNAPSHOT, RESTORE_ID, current)


def test_selective_names_a_disk_of_an_openstack_server_by_its_cinder_volume_id() -> None:
    volume = "6c7e0a57-1e02-4c43-9b7d-0d8f2f6a1b11"
    root = SnapshotDisk(id="srv-0", name="disk", size=1 << 30, format="qcow2", restore_size=1 << 30,
                        path="/i/srv/disk", manifest_key="w/s/srv/0", device="vda")
    data = SnapshotDisk(id="srv-1", name=f"volume-{volume}", size=1 << 30, format="raw", restore_size=1 << 30,
                        path=f"/m/x/volume-{volume}", manifest_key="w/s/srv/1", device="vdb")
    server = SnapshotInstance("srv", "web", {}, (root, data), {"openstack": {"disks": [
        {"device": "vda", "kind": "root", "volume": None},
        {"device": "vdb", "kind": "volume", "volume": {"id": volume}}]}})
    request = RestoreRequest(restore_type="selective", instances=(InstanceChoice("srv", vdisks=(volume,)),))
    (only,) = plan_restore(request, (server,), RESTORE_ID, {})
    assert [d.source.id for d in only.disks] == ["srv-1"]
