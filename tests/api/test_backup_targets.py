"""Backup targets and backup target types over HTTP: admin-only routes, refusals naming
the field, placement by type, and a created target that takes snapshots and restores."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_snapshots import make_disks, register, restore, sha256, take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, wait_status
from tests.conftest import Service

EXPORT = "192.0.2.50:/exports/cairn"


def admin_client(api: Service) -> httpx.Client:
    return api.client(api.token("admin", "root", roles=("admin",)))


def create_target(client: httpx.Client, **fields: Any) -> httpx.Response:
    return client.post("/v1/admin/backup_targets", json={"backup_target": fields})


def nfs_target(api: Service, mount: Path, export: str = EXPORT, **fields: Any) -> dict[str, Any]:
    mount.mkdir(parents=True, exist_ok=True)
    with admin_client(api) as client:
        response = create_target(client, type="nfs", filesystem_export=export,
                                 filesystem_export_mount_path=str(mount), **fields)
    assert response.status_code == 200, response.text
    return response.json()["backup_targets"]


def create_type(client: httpx.Client, **fields: Any) -> httpx.Response:
    return client.post("/v1/admin/backup_target_types", json={"backup_target_type": fields})


def refused(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    message = next(iter(response.json().values()))["message"]
    for word in words:
        assert word in message, message
    return message


def test_created_nfs_target_is_shown_with_its_type_and_a_workload_on_it_restores_bit_exact(
        api: Service, tmp_path: Path) -> None:
    target = nfs_target(api, tmp_path / "mnt", btt_name="gold", metadata={"site": "a"})
    assert target["type"] == "nfs" and target["source"] == "api" and target["status"] == "available"
    assert target["filesystem_export"] == EXPORT
    assert target["filesystem_export_mount_path"] == str(tmp_path / "mnt")
    assert target["metadata"] == {"site": "a"} and target["immutable"] is False
    assert (tmp_path / "mnt" / "cairn-target.json").is_file()  # made ready by its creation
    [gold] = target["backup_target_types"]
    assert gold["name"] == "gold" and gold["is_public"] is True and gold["backup_targets_id"] == target["id"]
    with admin_client(api) as client:
        listed = client.get("/v1/admin/backup_targets/detail").json()["backup_targets"]
        short = client.get("/v1/admin/backup_targets").json()["backup_targets"]
        shown = client.get(f"/v1/admin/backup_targets/{target['id']}").json()["backup_targets"]
    assert [t["source"] for t in listed] == ["configuration", "api"]
    assert listed[1] == shown
    assert set(short[1]) == {"id", "type", "filesystem_export", "is_default", "status"}

    member = api.token("p1")
    disk, _ = make_disks(tmp_path / "disks", random.Random(3), size=4 << 20)
    workload = create_workload(api, member, [register(api, "p1", "web", disk)], backup_target_types=gold["id"])
    detail = wait_status(api, member, workload["id"], "available")
    assert detail["metadata"]["backup_target_types"] == gold["id"]
    assert (tmp_path / "mnt" / "projects" / "p1" / "repo").is_dir()
    before = sha256(disk)
    snap = wait_snapshot(api, member, take_snapshot(api, member, workload["id"])["id"])
    wait_status(api, member, workload["id"], "available")
    with open(disk, "r+b") as handle:
        handle.write(b"changed after the snapshot" * 100)
    done = restore(api, member, workload["id"], snap["id"], {"type": "openstack", "restore_type": "inplace"})
    assert done["status"] == "available", done
    assert sha256(disk) == before
    assert any((tmp_path / "mnt" / "projects" / "p1" / "workloads" / workload["id"]).iterdir())


def test_a_type_is_found_by_name_too_and_a_member_cannot_set_the_field_through_metadata(
        api: Service, tmp_path: Path) -> None:
    target = nfs_target(api, tmp_path / "mnt", btt_name="silver")
    member = api.token("p1")
    workload = create_workload(api, member, [api.add_instance("p1")], backup_target_types="silver")
    wait_status(api, member, workload["id"], "available")
    with api.runtime.database.reader() as session:
        from cairn.db.models import Workload
        assert session.get(Workload, workload["id"]).backup_target == target["id"]  # type: ignore[union-attr]
    with api.client(member) as client:
        response = client.post("/v1/p1/workloads", json={"workload": {
            "name": "x", "instances": [{"instance-id": api.add_instance("p1")}],
            "metadata": {"backup_target_types": target["backup_target_types"][0]["id"]}}})
        refused(response, 400, "metadata.backup_target_types")
        on_export = client.get("/v1/p1/workloads", params={"nfs_share": EXPORT}).json()["workloads"]
        on_default = client.get("/v1/p1/workloads", params={"nfs_share": "default"}).json()["workloads"]
    assert [w["id"] for w in on_export] == [workload["id"]] and on_default == []


def test_a_project_cannot_place_a_workload_on_a_type_not_assigned_to_it(api: Service, tmp_path: Path) -> None:
    target = nfs_target(api, tmp_path / "mnt")
    with admin_client(api) as client:
        private = create_type(client, name="p2-only", backup_targets_id=target["id"], is_public=False,
                              project_list=["p2"], description="for p2")
        assert private.status_code == 200, private.text
        private_id = private.json()["backup_target_types"]["id"]
        assert private.json()["backup_target_types"]["projects"] == ["p2"]

    def create(project: str, wanted: str) -> httpx.Response:
        with api.client(api.token(project)) as client:
            return client.post(f"/v1/{project}/workloads", json={"workload": {
                "name": "w", "instances": [{"instance-id": api.add_instance(project)}],
                "backup_target_types": wanted}})

    message = refused(create("p1", private_id), 400, "backup_target_types", "p2-only", "p1")
    assert "neither public nor assigned" in message
    refused(create("p1", "no-such-type"), 400, "backup_target_types", "no-such-type")
    assert create("p2", private_id).status_code == 202
    with api.client(api.token("p1")) as client:  # p1 does not see it; p2 does
        assert private_id not in [t["id"] for t in client.get("/v1/p1/backup_target_types").json()
                                  ["backup_target_types"]]
        assert client.get(f"/v1/p1/backup_target_types/{private_id}").status_code == 404
    with api.client(api.token("p2")) as client:
        assert client.get(f"/v1/p2/backup_target_types/{private_id}").status_code == 200
    with admin_client(api) as client:
        added = client.post(f"/v1/admin/backup_target_types/{private_id}/add_projects",
                            json={"add_projects": ["p1"]})
        assert added.json()["backup_target_types"]["projects"] == ["p2", "p1"]
    assert create("p1", private_id).status_code == 202
    with admin_client(api) as client:
        removed = client.post(f"/v1/admin/backup_target_types/{private_id}/remove_projects",
                              json={"remove_projects": ["p1"]})
        assert removed.json()["backup_target_types"]["projects"] == ["p2"]
    refused(create("p1", private_id), 400, "backup_target_types")


def test_a_member_is_refused_every_admin_route(api: Service, tmp_path: Path) -> None:
    target = nfs_target(api, tmp_path / "mnt")
    type_id = target["backup_target_types"][0]["id"]
    with api.client(api.token("p1")) as client:
        calls = [
            client.post("/v1/p1/backup_targets", json={"backup_target": {"type": "nfs"}}),
            client.get("/v1/p1/backup_targets"),
            client.get("/v1/p1/backup_targets/detail"),
            client.get(f"/v1/p1/backup_targets/{target['id']}"),
            client.delete(f"/v1/p1/backup_targets/{target['id']}"),
            client.post(f"/v1/p1/backup_targets/{target['id']}/set_default"),
            client.get(f"/v1/p1/backup_targets/{target['id']}/set_default"),
            client.post("/v1/p1/backup_target_types", json={"backup_target_type": {
                "name": "x", "backup_targets_id": target["id"]}}),
            client.delete(f"/v1/p1/backup_target_types/{type_id}"),
            client.post(f"/v1/p1/backup_target_types/{type_id}/add_projects", json={"add_projects": ["p1"]}),
            client.post(f"/v1/p1/backup_target_types/{type_id}/remove_projects",
                        json={"remove_projects": ["p1"]}),
            client.post(f"/v1/p1/backup_target_types/{type_id}/set_default"),
        ]
        for response in calls:
            assert response.status_code == 403, (response.request.method, response.request.url, response.text)
        public = client.get("/v1/p1/backup_target_types/detail")
    assert public.status_code == 200 and [t["id"] for t in public.json()["backup_target_types"]] == [type_id]
    with admin_client(api) as client:  # nothing changed
        assert client.get(f"/v1/admin/backup_targets/{target['id']}").status_code == 200
        assert client.get(f"/v1/admin/backup_target_types/{type_id}").status_code == 200


def test_unknown_ids_are_not_found(api: Service) -> None:
    unknown = "7f3c1a52-0000-4000-8000-000000000000"
    with admin_client(api) as client:
        for response in (client.get(f"/v1/admin/backup_targets/{unknown}"),
                         client.delete(f"/v1/admin/backup_targets/{unknown}"),
                         client.post(f"/v1/admin/backup_targets/{unknown}/set_default"),
                         client.get(f"/v1/admin/backup_target_types/{unknown}"),
                         client.delete(f"/v1/admin/backup_target_types/{unknown}"),
                         client.post(f"/v1/admin/backup_target_types/{unknown}/add_projects",
                                     json={"add_projects": ["p1"]}),
                         client.post(f"/v1/admin/backup_target_types/{unknown}/set_default")):
            refused(response, 404, unknown)
        refused(create_type(client, name="x", backup_targets_id=unknown), 400,
                "backup_targets_id", unknown)


def test_deleting_a_target_that_holds_workloads_is_refused_until_they_are_gone(
        api: Service, tmp_path: Path) -> None:
    target = nfs_target(api, tmp_path / "mnt")
    type_id = target["backup_target_types"][0]["id"]
    member = api.token("p1")
    workload = create_workload(api, member, [api.add_instance("p1")], backup_target_types=type_id)
    wait_status(api, member, workload["id"], "available")
    with admin_client(api) as client:
        refused(client.delete(f"/v1/admin/backup_targets/{target['id']}"), 409, "holds 1 workload")
        assert client.get(f"/v1/admin/backup_targets/{target['id']}").status_code == 200
    with api.client(member) as client:
        assert client.delete(f"/v1/p1/workloads/{workload['id']}").status_code == 202
    from bench.cluster import wait_until
    from cairn.db.models import Workload

    def gone() -> bool:
        with api.runtime.database.reader() as session:
            return bool(session.get(Workload, workload["id"]).deleted)  # type: ignore[union-attr]
    wait_until(gone, timeout=60)
    with admin_client(api) as client:
        assert client.delete(f"/v1/admin/backup_targets/{target['id']}").status_code == 202
        assert client.get(f"/v1/admin/backup_targets/{target['id']}").status_code == 404
        assert client.get(f"/v1/admin/backup_target_types/{type_id}").status_code == 404
    assert (tmp_path / "mnt" / "cairn-target.json").is_file()  # the data stays where it was


def test_configured_targets_are_listed_read_only_and_may_be_the_default(api: Service, tmp_path: Path) -> None:
    with admin_client(api) as client:
        [configured] = client.get("/v1/admin/backup_targets/detail").json()["backup_targets"]
        assert configured["id"] == "default" and configured["source"] == "configuration"
        assert configured["status"] == "available" and configured["capacity"]
        refused(client.delete("/v1/admin/backup_targets/default"), 409, "configuration file")
        created = create_type(client, name="local", backup_targets_id="default", is_default=1)
        assert created.status_code == 200, created.text
        assert created.json()["backup_target_types"]["is_default"] is True
    target = nfs_target(api, tmp_path / "mnt", is_default=True)
    assert target["is_default"] is True
    member = api.token("p1")
    # the default type (public) wins over the default target
    by_type = create_workload(api, member, [api.add_instance("p1")])
    assert wait_status(api, member, by_type["id"], "available")["metadata"]["backup_target_types"] == \
        created.json()["backup_target_types"]["id"]
    with admin_client(api) as client:
        assert client.delete(f"/v1/admin/backup_target_types/{created.json()['backup_target_types']['id']}"
                             ).status_code == 202
    by_target = create_workload(api, member, [api.add_instance("p1")])
    wait_status(api, member, by_target["id"], "available")
    assert (tmp_path / "mnt" / "projects" / "p1").is_dir()
    with admin_client(api) as client:
        assert client.get("/v1/admin/backup_targets/default/set_default").json()["backup_targets"]["is_default"]
        assert not client.get(f"/v1/admin/backup_targets/{target['id']}").json()["backup_targets"]["is_default"]


@pytest.mark.parametrize(("fields", "words"), [
    ({"type": "ceph"}, ("type", "ceph")),
    ({"type": "nfs"}, ("filesystem_export", "required")),
    ({"type": "nfs", "filesystem_export": "no-colon"}, ("filesystem_export", "host:/export")),
    ({"type": "nfs", "filesystem_export": EXPORT, "immutable": 1}, ("immutable", "nfs target cannot")),
    ({"type": "nfs", "filesystem_export": EXPORT, "secret_ref": "file:///x"}, ("secret_ref", "only an s3")),
    ({"type": "nfs", "filesystem_export": EXPORT, "filesystem_export_mount_path": "relative"},
     ("filesystem_export_mount_path", "absolute")),
    ({"type": "nfs", "filesystem_export": EXPORT, "filesystem_export_mount_path": "/nonexistent/cairn"},
     ("filesystem_export_mount_path", "mount 192.0.2.50:/exports/cairn there")),
    ({"type": "nfs", "filesystem_export": EXPORT, "is_default": "maybe"}, ("is_default",)),
    ({"type": "s3", "s3_endpoint_url": "http://127.0.0.1:1", "s3_bucket": "b"}, ("s3_bucket",)),
    ({"type": "s3", "s3_endpoint_url": "http://127.0.0.1:1", "s3_bucket": "bucket"}, ("secret_ref", "required")),
    ({"type": "s3", "s3_endpoint_url": "ftp://x", "s3_bucket": "bucket"}, ("s3_endpoint_url",)),
    ({"type": "s3", "s3_endpoint_url": "http://127.0.0.1:1", "s3_bucket": "bucket", "secret_ref": "nope"},
     ("secret_ref", "neither")),
    ({"type": "s3", "s3_endpoint_url": "http://127.0.0.1:1", "s3_bucket": "bucket",
      "secret_ref": "https://barbican.example:9311/v1/secrets/0b1f8e35-5a9e-4c5b-9d0e-3f1e2d4c5b6a"},
     ("secret_ref", "no key manager")),
    ({"type": "s3", "s3_endpoint_url": "http://127.0.0.1:1", "s3_bucket": "bucket",
      "secret_ref": "file:///nonexistent/keys.json"}, ("secret_ref", "cannot read")),
    ({"type": "nfs", "filesystem_export": EXPORT, "surprise": 1}, ("surprise",)),
])
def test_a_bad_target_is_refused_naming_the_field_and_nothing_is_written(
        api: Service, fields: dict[str, Any], words: tuple[str, ...]) -> None:
    with admin_client(api) as client:
        refused(create_target(client, **fields), 400, *words)
        assert [t["id"] for t in client.get("/v1/admin/backup_targets").json()["backup_targets"]] == ["default"]
        assert client.get("/v1/admin/backup_target_types").json()["backup_target_types"] == []


def test_a_second_target_on_the_same_export_path_or_type_name_is_refused(api: Service, tmp_path: Path) -> None:
    nfs_target(api, tmp_path / "one", btt_name="gold")
    (tmp_path / "two").mkdir()
    with admin_client(api) as client:
        refused(create_target(client, type="nfs", filesystem_export=EXPORT,
                              filesystem_export_mount_path=str(tmp_path / "two")), 400, "filesystem_export")
        refused(create_target(client, type="nfs", filesystem_export="192.0.2.51:/other",
                              filesystem_export_mount_path=str(tmp_path / "one")), 400,
                "filesystem_export_mount_path")
        refused(create_target(client, type="nfs", filesystem_export="192.0.2.51:/other",
                              filesystem_export_mount_path=str(tmp_path / "two"), btt_name="gold"), 400, "btt_name")
        refused(create_type(client, name="gold", backup_targets_id="default"), 400, "name", "gold")
        refused(create_type(client, name="x", backup_targets_id="default", project_list=["p1"]), 400,
                "project_list", "public")
        assert len(client.get("/v1/admin/backup_targets").json()["backup_targets"]) == 2


# -- an S3 target on the development Swift --------------------------------------------------


@pytest.fixture
def swift_keys(tmp_path: Path) -> Any:
    """A prefix of the shared test bucket no other test uses, and a file:// secret_ref
    holding Swift's keys (Barbican's form, read by s3_credentials)."""
    import json
    import secrets

    from tests import swiftdev

    swiftdev.require_swift()
    swiftdev.ensure_bucket()
    keys = tmp_path / "s3-keys.json"
    keys.write_text(json.dumps({"access_key": swiftdev.ACCESS_KEY, "secret_key": swiftdev.SECRET_KEY}))
    keys.chmod(0o600)
    prefix = f"t-{secrets.token_hex(6)}"
    yield {"type": "s3", "s3_endpoint_url": swiftdev.ENDPOINT, "s3_bucket": swiftdev.BUCKET,
           "s3_prefix": prefix, "secret_ref": f"file://{keys}"}, keys
    swiftdev.purge(prefix)


def test_s3_target_by_secret_ref_takes_a_snapshot_and_restores_and_refuses_immutable_without_object_lock(
        api: Service, tmp_path: Path, swift_keys: Any) -> None:
    fields, keys = swift_keys
    with admin_client(api) as client:
        message = refused(create_target(client, immutable=1, **fields), 400, "immutable", "Object Lock")
        assert "cairn-tests" in message
        wrong = tmp_path / "wrong.json"
        wrong.write_text('{"access_key": "cairn:tester", "secret_key": "not-the-key"}')
        refused(create_target(client, **{**fields, "secret_ref": f"file://{wrong}"}), 400, "secret_ref")
        refused(create_target(client, **{**fields, "s3_bucket": "no-such-bucket-here"}), 400, "s3_bucket")
        assert [t["id"] for t in client.get("/v1/admin/backup_targets").json()["backup_targets"]] == ["default"]
        created = create_target(client, btt_name="s3-gold", **fields)
    assert created.status_code == 200, created.text
    target = created.json()["backup_targets"]
    assert target["type"] == "s3" and target["status"] == "available" and target["immutable"] is False
    assert target["secret_ref"] == fields["secret_ref"] and "secret_key" not in created.text
    assert target["filesystem_export"] == f"127.0.0.1:18080/cairn-tests/{fields['s3_prefix']}"

    member = api.token("p1")
    disk, _ = make_disks(tmp_path / "disks", random.Random(5), size=4 << 20)
    workload = create_workload(api, member, [register(api, "p1", "web", disk)], backup_target_types="s3-gold")
    wait_status(api, member, workload["id"], "available")
    before = sha256(disk)
    snap = wait_snapshot(api, member, take_snapshot(api, member, workload["id"])["id"])
    wait_status(api, member, workload["id"], "available")
    with open(disk, "r+b") as handle:
        handle.write(b"\xff" * 65536)
    done = restore(api, member, workload["id"], snap["id"], {"type": "openstack", "restore_type": "inplace"})
    assert done["status"] == "available", done
    assert sha256(disk) == before
    from tests import swiftdev
    listed = swiftdev.client().list_objects_v2(Bucket=swiftdev.BUCKET, Prefix=f"{fields['s3_prefix']}/projects/p1/")
    assert listed.get("KeyCount", 0) > 0


def test_policy_sample_prints_a_rule_for_every_backup_target_route() -> None:
    import subprocess
    import sys

    printed = subprocess.run([sys.executable, "-m", "cairn", "policy", "sample"], capture_output=True, text=True,
                             check=True, timeout=120).stdout
    for name, default in (("backup_target:create", "rule:admin_api"), ("backup_target:get", "rule:admin_api"),
                          ("backup_target:delete", "rule:admin_api"),
                          ("backup_target:set_default", "rule:admin_api"),
                          ("backup_target_type:create", "rule:admin_api"),
                          ("backup_target_type:get", "rule:admin_or_owner"),
                          ("backup_target_type:delete", "rule:admin_api"),
                          ("backup_target_type:add_projects", "rule:admin_api"),
                          ("backup_target_type:remove_projects", "rule:admin_api"),
                          ("backup_target_type:set_default", "rule:admin_api")):
        assert f'#"{name}": "{default}"' in printed, name
