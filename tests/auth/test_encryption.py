"""Encrypted workloads against a real Keystone and a real Barbican (docs/encryption.md).

Cairn runs with `auth_strategy = keystone`; Barbican is found through Keystone's catalog.
Alice (project alpha) owns the secrets; root (project beta) owns one she may not read.
Every check is made through HTTP and on the target's files as a reader of the share sees
them: no plaintext of the disk, no key, and the restored disk equal bit for bit.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from cairn.db.models import Instance, Job, Workload, WorkloadInstance
from cairn.platforms.local import register_instance
from tests.auth.barbican_server import BarbicanServer
from tests.auth.conftest import keystone_service
from tests.auth.keystone_server import KeystoneServer, KeystoneUser
from tests.conftest import Service, wait_until

MiB = 1 << 20
DISK_SIZE = 8 * MiB
#: how many 32-byte windows of the disk's data are looked for in every file of the target
SAMPLES = 256


@pytest.fixture(scope="module")
def cairn(keystone: KeystoneServer, barbican: BarbicanServer,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # Keystone is asked several times per encrypted create (Cairn, castellan, Barbican's
    # middleware): on a loaded machine a 5 s connect timeout turns load into 503s.
    with keystone_service(tmp_path_factory.mktemp("cairn-encrypted"), keystone, http_connect_timeout=60.0) as service:
        yield service


@pytest.fixture
def alice(keystone: KeystoneServer) -> KeystoneUser:
    return keystone.users["alice"]


def tempest_body(instance_id: str, encryption: bool, secret_uuid: str | None,
                 jobschedule: dict[str, Any] | None = None) -> dict[str, Any]:
    """Exactly what tempest stable/5.2's `workload_create` posts."""
    name = "tempest" + str(datetime.now()).replace(".", "-")
    return {"workload": {"name": name, "source_platform": "openstack",
                         "instances": [{"instance-id": instance_id}],
                         "jobschedule": jobschedule or {"enabled": False}, "metadata": {},
                         "description": "test", "encryption": encryption, "secret_uuid": secret_uuid}}


def random_disk(cairn: Service, user: KeystoneUser, name: str, seed: int) -> tuple[str, Path, bytes]:
    """An instance of `user`'s project whose disk holds 4 MiB of incompressible data (then
    zeros): the instance id, the disk's path, and that data."""
    data = random.Random(seed).randbytes(4 * MiB)
    path = cairn.data_dir / "disks" / f"{name}-{uuid.uuid4().hex[:8]}.raw"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
        handle.truncate(DISK_SIZE)
    with cairn.runtime.database.unit_of_work() as session:
        instance_id = register_instance(session, user.project_id, name, [str(path)]).id
    return instance_id, path, data


def http(cairn: Service, token: str) -> httpx.Client:
    """A client of `cairn` with a generous timeout: an encrypted create makes several
    round trips to Keystone and Barbican, each a real service on a shared machine."""
    return httpx.Client(base_url=cairn.url, headers={"X-Auth-Token": token}, timeout=180)


def post(cairn: Service, user: KeystoneUser, path: str, body: Any, token: str | None = None) -> Any:
    with http(cairn, token or user.token()) as client:
        return client.post(f"/v1/{user.project_id}{path}", json=body)


def get(cairn: Service, user: KeystoneUser, path: str, token: str) -> Any:
    with http(cairn, token) as client:
        response = client.get(f"/v1/{user.project_id}{path}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_workload(cairn: Service, user: KeystoneUser, token: str, workload_id: str) -> dict[str, Any]:
    def ready() -> Any:
        body = get(cairn, user, f"/workloads/{workload_id}", token)["workload"]
        return body if body["status"] in ("available", "error") else None
    return wait_until(ready, timeout=120)


def snapshot_of(cairn: Service, user: KeystoneUser, token: str, workload_id: str) -> dict[str, Any]:
    response = post(cairn, user, f"/workloads/{workload_id}", None, token)
    assert response.status_code == 200, response.text
    return wait_snapshot(cairn, user, token, response.json()["snapshot"]["id"])


def wait_snapshot(cairn: Service, user: KeystoneUser, token: str, snapshot_id: str) -> dict[str, Any]:
    def done() -> Any:
        body = get(cairn, user, f"/snapshots/{snapshot_id}", token)["snapshot"]
        return body if body["status"] in ("available", "error") else None
    return wait_until(done, timeout=120)


def oneclick_restore(cairn: Service, user: KeystoneUser, token: str, workload_id: str,
                     snapshot_id: str) -> list[str]:
    """Restore the snapshot beside the originals; the restored disks' paths."""
    response = post(cairn, user, f"/workloads/{workload_id}/snapshots/{snapshot_id}/restores",
                    {"restore": {"name": "r", "options": {"type": "openstack", "oneclickrestore": True}}}, token)
    assert response.status_code == 202, response.text
    restore_id = response.json()["restore"]["id"]

    def finished() -> Any:
        body = get(cairn, user, f"/workloads/{workload_id}/snapshots/{snapshot_id}/restores/{restore_id}",
                   token)["restore"]
        return body if body["status"] in ("available", "error", "cancelled") else None
    restored = wait_until(finished, timeout=120)
    assert restored["status"] == "available", restored
    with cairn.runtime.database.reader() as session:
        return [d["path"] for i in restored["instances"] for d in session.get_one(Instance, i["id"]).disks]


def target_files(cairn: Service) -> list[Path]:
    return [p for p in (cairn.data_dir / "targets").rglob("*") if p.is_file()]


def files_holding(files: list[Path], needles: list[bytes]) -> list[Path]:
    return [f for f in files if any(n in f.read_bytes() for n in needles)]


def samples(data: bytes) -> list[bytes]:
    rng = random.Random(1)
    return [data[o:o + 32] for o in (rng.randrange(0, len(data) - 32) for _ in range(SAMPLES))]


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def counts(cairn: Service) -> tuple[int, int, int]:
    with cairn.runtime.database.reader() as session:
        return tuple(session.scalar(sa.select(sa.func.count()).select_from(m))  # type: ignore[return-value]
                     for m in (Workload, WorkloadInstance, Job))


def assert_refused(response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    fault = next(iter(response.json().values()))
    assert fault["code"] == status
    if field:
        assert field in fault["message"], fault["message"]


def test_encrypted_workload_keeps_no_plaintext_on_the_target_and_restores_bit_for_bit(
        cairn: Service, barbican: BarbicanServer, alice: KeystoneUser) -> None:
    token = alice.token()
    payload = os.urandom(32)
    secret = barbican.create_secret(alice, payload)
    instance, disk, data = random_disk(cairn, alice, "secret-vm", seed=11)
    response = post(cairn, alice, "/workloads", tempest_body(instance, True, secret), token)
    assert response.status_code == 202, response.text
    workload_id = response.json()["workload"]["id"]
    shown = wait_workload(cairn, alice, token, workload_id)
    assert shown["status"] == "available", shown
    assert shown["encryption"] is True and shown["secret_uuid"] == secret
    # the create step let Cairn's service user read the secret, keeping the project's access
    acl = barbican.acl(alice, secret)["read"]
    assert acl["project-access"] is True
    assert cairn.runtime.key_manager is not None
    assert acl["users"] == [cairn.runtime.key_manager.service_user_id()]

    first = snapshot_of(cairn, alice, token, workload_id)
    assert first["status"] == "available", first
    with open(disk, "r+b") as handle:  # an incremental with changed data
        handle.seek(5 * MiB)
        handle.write(random.Random(12).randbytes(MiB))
    second = snapshot_of(cairn, alice, token, workload_id)
    assert second["status"] == "available" and second["snapshot_type"] == "incremental", second

    project = cairn.data_dir / "targets" / "default" / "projects" / alice.project_id
    own = project / "encrypted" / workload_id / "repo"
    assert (own / "config").is_file() and list((own / "keys").iterdir())
    assert not (project / "repo" / "manifests").exists() or not any(
        workload_id in str(p) for p in (project / "repo" / "manifests").rglob("*"))
    files = target_files(cairn)
    key_forms = [payload, base64.b64encode(payload)]
    assert files_holding(files, samples(data)) == []
    assert files_holding(files, key_forms) == []
    database = cairn.data_dir / "cairn.sqlite"
    assert files_holding([database], key_forms) == []

    restored = oneclick_restore(cairn, alice, token, workload_id, first["id"])
    assert [sha256(p) for p in restored] == [hashlib.sha256(data + bytes(DISK_SIZE - len(data))).hexdigest()]

    # The same disk content unencrypted is found on the target by the same search: the
    # check above can fail.
    plain, _, _ = random_disk(cairn, alice, "plain-vm", seed=11)
    response = post(cairn, alice, "/workloads", tempest_body(plain, False, ""), token)
    assert response.status_code == 202, response.text
    plain_id = response.json()["workload"]["id"]
    assert wait_workload(cairn, alice, token, plain_id)["status"] == "available"
    assert snapshot_of(cairn, alice, token, plain_id)["status"] == "available"
    assert files_holding(target_files(cairn), samples(data)) != []


def test_tempest_unencrypted_bodies_are_accepted_and_shown_unencrypted(
        cairn: Service, alice: KeystoneUser) -> None:
    token = alice.token()
    for secret in ("", None):
        instance, _, _ = random_disk(cairn, alice, "plain", seed=3)
        response = post(cairn, alice, "/workloads", tempest_body(instance, False, secret), token)
        assert response.status_code == 202, response.text
        shown = wait_workload(cairn, alice, token, response.json()["workload"]["id"])
        assert shown["status"] == "available"
        assert shown["encryption"] is False and shown["secret_uuid"] is None


def test_a_missing_malformed_or_foreign_secret_is_refused_naming_it_and_writes_nothing(
        cairn: Service, barbican: BarbicanServer, keystone: KeystoneServer, alice: KeystoneUser) -> None:
    foreign = barbican.create_secret(keystone.users["root"])  # project beta's
    instance, _, _ = random_disk(cairn, alice, "refused", seed=4)
    before = counts(cairn)
    for secret in (str(uuid.uuid4()), "invalid", foreign):
        response = post(cairn, alice, "/workloads", tempest_body(instance, True, secret))
        assert_refused(response, 400, "workload.secret_uuid")
        assert counts(cairn) == before
    assert "users" not in barbican.acl(keystone.users["root"], foreign)["read"]
    assert_refused(post(cairn, alice, "/workloads", tempest_body(instance, True, "")), 400, "workload.secret_uuid")
    assert counts(cairn) == before


def test_a_secret_encrypts_one_live_workload(cairn: Service, barbican: BarbicanServer,
                                             alice: KeystoneUser) -> None:
    token = alice.token()
    secret = barbican.create_secret(alice)
    first, _, _ = random_disk(cairn, alice, "one", seed=5)
    second, _, _ = random_disk(cairn, alice, "two", seed=6)
    response = post(cairn, alice, "/workloads", tempest_body(first, True, secret), token)
    assert response.status_code == 202, response.text
    before = counts(cairn)
    assert_refused(post(cairn, alice, "/workloads", tempest_body(second, True, secret), token), 400,
                   "workload.secret_uuid")
    assert counts(cairn) == before
    first_id = response.json()["workload"]["id"]
    assert wait_workload(cairn, alice, token, first_id)["status"] == "available"
    taken = snapshot_of(cairn, alice, token, first_id)
    assert taken["status"] == "available", taken
    # deleting the snapshot, then the workload (its own repository opened with the
    # secret, its data collected) releases the secret for a new workload
    with http(cairn, token) as client:
        assert client.delete(f"/v1/{alice.project_id}/snapshots/{taken['id']}").status_code == 202
    wait_until(lambda: not _live_snapshots(cairn, first_id)
               and wait_workload(cairn, alice, token, first_id)["status"] == "available", timeout=60)
    with http(cairn, token) as client:
        assert client.delete(f"/v1/{alice.project_id}/workloads/{first_id}").status_code == 202
    wait_until(lambda: _deleted(cairn, first_id), timeout=60)
    own = cairn.data_dir / "targets" / "default" / "projects" / alice.project_id / "encrypted" / first_id / "repo"
    assert not [p for p in (own / "packs").rglob("*") if p.is_file()]
    response = post(cairn, alice, "/workloads", tempest_body(second, True, secret), token)
    assert response.status_code == 202, response.text
    assert wait_workload(cairn, alice, token, response.json()["workload"]["id"])["status"] == "available"


@contextlib.contextmanager
def stopped(barbican: BarbicanServer) -> Iterator[None]:
    barbican.stop()
    try:
        yield
    finally:
        barbican.start()


def test_barbican_stopped_is_a_503_and_writes_nothing(cairn: Service, barbican: BarbicanServer,
                                                       alice: KeystoneUser) -> None:
    token = alice.token()
    secret = barbican.create_secret(alice)
    instance, _, _ = random_disk(cairn, alice, "down", seed=7)
    existing, _, _ = random_disk(cairn, alice, "down-existing", seed=13)
    response = post(cairn, alice, "/workloads", tempest_body(existing, True, barbican.create_secret(alice)), token)
    existing_id = response.json()["workload"]["id"]
    assert wait_workload(cairn, alice, token, existing_id)["status"] == "available"
    own = (cairn.data_dir / "targets" / "default" / "projects" / alice.project_id / "encrypted" / existing_id
           / "repo")
    before = counts(cairn)
    with stopped(barbican):
        response = post(cairn, alice, "/workloads", tempest_body(instance, True, secret), token)
        assert_refused(response, 503, "")
        assert "key manager" in next(iter(response.json().values()))["message"]
        assert counts(cairn) == before
        # a snapshot job cannot read the key: it fails naming the key manager, writes
        # nothing to the repository, and leaves the workload usable
        files = sorted(p for p in own.rglob("*") if p.is_file() and "locks" not in p.parts)
        failed = snapshot_of(cairn, alice, token, existing_id)
        assert failed["status"] == "error" and "key manager" in failed["error_msg"], failed
        assert sorted(p for p in own.rglob("*") if p.is_file() and "locks" not in p.parts) == files
        assert wait_workload(cairn, alice, token, existing_id)["status"] == "available"
    # and once it is back, the same request succeeds
    response = post(cairn, alice, "/workloads", tempest_body(instance, True, secret), token)
    assert response.status_code == 202, response.text
    assert wait_workload(cairn, alice, token, response.json()["workload"]["id"])["status"] == "available"


def test_a_scheduled_snapshot_of_an_encrypted_workload_reads_its_key_as_the_service(
        cairn: Service, barbican: BarbicanServer, alice: KeystoneUser) -> None:
    from cairn.scheduler import Scheduler

    token = alice.token()
    secret = barbican.create_secret(alice)
    instance, _, data = random_disk(cairn, alice, "sched", seed=8)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    fire = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 21, 0)
    jobschedule = {"enabled": True, "start_date": fire.strftime("%m/%d/%Y"), "start_time": "09:00 PM",
                   "timezone": "UTC", "interval": "24hr", "retention_policy_type": "Number of Snapshots to Keep",
                   "retention_policy_value": "3"}
    response = post(cairn, alice, "/workloads", tempest_body(instance, True, secret, jobschedule), token)
    assert response.status_code == 202, response.text
    workload_id = response.json()["workload"]["id"]
    assert wait_workload(cairn, alice, token, workload_id)["status"] == "available"

    def no_clock() -> datetime:
        raise AssertionError("the test passes `now` to tick")
    scheduler = Scheduler(cairn.runtime.database, cairn.runtime.snapshots, no_clock, "test")
    assert scheduler.tick(fire) >= 1  # no caller, no token: the job reads the key as the service
    listed = wait_until(lambda: get(cairn, alice, f"/snapshots?workload_id={workload_id}", token)["snapshots"]
                        or None, timeout=60)
    done = wait_snapshot(cairn, alice, token, listed[0]["id"])
    assert done["status"] == "available", done
    restored = oneclick_restore(cairn, alice, token, workload_id, done["id"])
    assert [sha256(p) for p in restored] == [hashlib.sha256(data + bytes(DISK_SIZE - len(data))).hexdigest()]


def test_import_after_a_database_only_delete_reopens_the_encrypted_workload_with_its_secret(
        cairn: Service, barbican: BarbicanServer, keystone: KeystoneServer, alice: KeystoneUser) -> None:
    from cairn.clock import utcnow
    from cairn.workloads.importer import import_target

    token = alice.token()
    secret = barbican.create_secret(alice)
    instance, _, data = random_disk(cairn, alice, "imported", seed=9)
    response = post(cairn, alice, "/workloads", tempest_body(instance, True, secret), token)
    workload_id = response.json()["workload"]["id"]
    assert wait_workload(cairn, alice, token, workload_id)["status"] == "available"
    taken = snapshot_of(cairn, alice, token, workload_id)
    assert taken["status"] == "available", taken
    admin = keystone.users["root"].token()  # a Cairn admin (Keystone's admin role)
    with http(cairn, admin) as client:
        deleted = client.delete(f"/v1/{alice.project_id}/workloads/{workload_id}",
                                params={"database_only": "true"})
    assert deleted.status_code == 202, deleted.text
    wait_until(lambda: _deleted(cairn, workload_id), timeout=60)

    with cairn.runtime.database.unit_of_work() as session:
        report = import_target(session, cairn.runtime.targets, "default", utcnow(), workload_id=workload_id)
    assert report.workloads == [workload_id] and report.snapshots == [taken["id"]], report
    shown = get(cairn, alice, f"/workloads/{workload_id}", token)["workload"]
    assert shown["encryption"] is True and shown["secret_uuid"] == secret
    restored = oneclick_restore(cairn, alice, token, workload_id, taken["id"])
    assert [sha256(p) for p in restored] == [hashlib.sha256(data + bytes(DISK_SIZE - len(data))).hexdigest()]
    # the secret is claimed again: a new workload cannot take it
    other, _, _ = random_disk(cairn, alice, "claimant", seed=10)
    assert_refused(post(cairn, alice, "/workloads", tempest_body(other, True, secret), token), 400,
                   "workload.secret_uuid")


def _deleted(cairn: Service, workload_id: str) -> bool:
    with cairn.runtime.database.reader() as session:
        return bool(session.scalar(sa.select(Workload.deleted).where(Workload.id == workload_id)))


def _live_snapshots(cairn: Service, workload_id: str) -> int:
    from cairn.db.models import Snapshot

    with cairn.runtime.database.reader() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(Snapshot).where(
            Snapshot.workload_id == workload_id, Snapshot.deleted.is_(False))) or 0)


def test_an_s3_target_whose_keys_are_a_barbican_secret_holds_a_workload_that_restores(
        cairn: Service, keystone: KeystoneServer, barbican: BarbicanServer, alice: KeystoneUser) -> None:
    """An admin's S3 target on the development Swift with `secret_ref` naming a Barbican
    secret of the Swift keys: create lets Cairn's service user read it, a secret the admin
    cannot read is a 400 naming `secret_ref`, and jobs (which have no caller) open it."""
    import json
    import secrets as tokens

    from tests import swiftdev

    swiftdev.require_swift()
    swiftdev.ensure_bucket()
    root = keystone.users["root"]  # an admin, of project beta
    keys = json.dumps({"access_key": swiftdev.ACCESS_KEY, "secret_key": swiftdev.SECRET_KEY}).encode()
    secret = barbican.create_secret(root, keys)
    not_roots = barbican.create_secret(alice, keys)
    prefix = f"t-{tokens.token_hex(6)}"
    fields = {"type": "s3", "s3_endpoint_url": swiftdev.ENDPOINT, "s3_bucket": swiftdev.BUCKET,
              "s3_prefix": prefix, "btt_name": f"barbican-{prefix}"}
    try:
        assert_refused(post(cairn, root, "/backup_targets", {"backup_target": {
            **fields, "secret_ref": f"{barbican.url}/v1/secrets/{not_roots}"}}), 400, "secret_ref")
        created = post(cairn, root, "/backup_targets", {"backup_target": {
            **fields, "secret_ref": f"{barbican.url}/v1/secrets/{secret}"}})
        assert created.status_code == 200, created.text
        assert swiftdev.SECRET_KEY not in created.text
        assert cairn.runtime.key_manager is not None
        assert barbican.acl(root, secret)["read"]["users"] == [cairn.runtime.key_manager.service_user_id()]

        token = alice.token()
        instance, disk, data = random_disk(cairn, alice, "s3-vm", seed=21)
        body = tempest_body(instance, False, None)
        body["workload"]["backup_target_types"] = fields["btt_name"]
        response = post(cairn, alice, "/workloads", body, token)
        assert response.status_code == 202, response.text
        workload_id = response.json()["workload"]["id"]
        assert wait_workload(cairn, alice, token, workload_id)["status"] == "available"
        snapshot = snapshot_of(cairn, alice, token, workload_id)
        assert snapshot["status"] == "available", snapshot
        listed = swiftdev.client().list_objects_v2(Bucket=swiftdev.BUCKET, Prefix=f"{prefix}/projects/")
        assert listed.get("KeyCount", 0) > 0
        restored = oneclick_restore(cairn, alice, token, workload_id, snapshot["id"])
        assert [sha256(p) for p in restored] == [hashlib.sha256(data + bytes(DISK_SIZE - len(data))).hexdigest()]
    finally:
        swiftdev.purge(prefix)
