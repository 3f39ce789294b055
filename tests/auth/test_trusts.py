"""Keystone trusts against a real Keystone: a workload's trust is made with its creator's
token and shown as `scheduler_trust`; a scheduled snapshot acts through it after that
token is gone; a trust Keystone refuses fails the snapshot with a message naming it and
leaves the workload available; the trust goes with the workload; /trusts and its
refusals. The scheduler fires when a test calls `tick(now)` with the fire time, never
on the machine's clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from keystoneauth1 import exceptions as ks_exceptions
from sqlalchemy import select

from cairn.auth.acting import ActingUser, current_acting_user
from cairn.db.models import Snapshot, Workload
from cairn.platforms.base import Capture, InstanceInfo, Platform, Recorder
from tests.auth.conftest import keystone_service
from tests.auth.keystone_server import KeystoneServer, KeystoneUser
from tests.conftest import Service, wait_for_idle


class ActingRecorder:
    """The service's platform, noting whom each capture ran for (`current_acting_user`)."""

    def __init__(self, inner: Platform) -> None:
        self.inner = inner
        self.seen: list[ActingUser | None] = []

    def capture(self, instances: list[InstanceInfo], parents: dict[str, dict[str, Any]], label: str) -> Capture:
        self.seen.append(current_acting_user())
        return self.inner.capture(instances, parents, label)

    def restore_instance(self, project_id: str, name: str, disks: list[tuple[str, str, str]],
                         state: dict[str, Any], label: str, host: str | None,
                         options: dict[str, Any] | None = None, record: Recorder | None = None) -> InstanceInfo:
        self.seen.append(current_acting_user())
        return self.inner.restore_instance(project_id, name, disks, state, label, host, options, record)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def trusted(keystone: KeystoneServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Cairn with Keystone tokens and trusts on (the default `[trustee]`: role member)."""
    # Keystone's answers may take seconds on a loaded machine: a 503 here would be the
    # machine's speed, not what is tested.
    with keystone_service(tmp_path_factory.mktemp("cairn-trusts"), keystone, http_connect_timeout=60.0) as service:
        yield service


@pytest.fixture
def recorder(trusted: Service) -> Iterator[ActingRecorder]:
    trusted.reset_tables()
    inner = trusted.disks.inner
    recording = ActingRecorder(inner)
    trusted.disks.attach(recording)
    try:
        yield recording
    finally:
        trusted.disks.attach(inner)
        wait_for_idle(trusted)


def create_workload(service: Service, user: KeystoneUser, token: str, name: str = "web") -> str:
    body = {"workload": {"name": name, "instances": [{"instance-id": service.add_instance(user.project_id, name)}],
                         "jobschedule": {"start_date": "now", "interval": "1hr"}}}
    with service.client(token) as client:
        response = client.post(f"/v1/{user.project_id}/workloads", json=body)
    assert response.status_code == 202, response.text
    wait_for_idle(service)
    return str(response.json()["workload"]["id"])


def show(service: Service, user: KeystoneUser, workload_id: str) -> dict[str, Any]:
    with service.client(user.token()) as client:
        response = client.get(f"/v1/{user.project_id}/workloads/{workload_id}")
    assert response.status_code == 200, response.text
    return dict(response.json()["workload"])


def keystone_trust_id(service: Service, user: KeystoneUser, trust: str) -> str:
    with service.client(user.token()) as client:
        response = client.get(f"/v1/{user.project_id}/trusts/{trust}")
    assert response.status_code == 200, response.text
    return str(response.json()["trust"]["value"])


def fire_schedule(service: Service, workload_id: str) -> dict[str, Any]:
    """Tick the scheduler at the workload's next fire time; the snapshot it took, ended."""
    with service.runtime.database.reader() as session:
        due = session.scalar(select(Workload.next_fire_at).where(Workload.id == workload_id))
    assert due is not None
    assert service.runtime.scheduler.tick(due) == 1
    wait_for_idle(service)
    with service.runtime.database.reader() as session:
        latest = session.scalars(select(Snapshot).where(Snapshot.workload_id == workload_id,
                                                        Snapshot.fire_time == due)).one()
        return {"status": latest.status, "name": latest.name, "error_msg": latest.error_msg}


def test_workload_gets_a_trust_from_its_creator_shown_as_scheduler_trust(
        keystone: KeystoneServer, trusted: Service, recorder: ActingRecorder) -> None:
    alice = keystone.users["alice"]
    workload_id = create_workload(trusted, alice, alice.token())
    shown = show(trusted, alice, workload_id)["scheduler_trust"]
    assert shown["scheduler_enabled"] is True and shown["is_valid"] is True
    assert shown["trust"].startswith("trust-")
    trust = keystone.admin_client().trusts.get(keystone_trust_id(trusted, alice, shown["trust"]))
    cairn_user = keystone.admin_client().users.find(name="cairn")
    assert (trust.trustor_user_id, trust.trustee_user_id, trust.project_id, trust.impersonation) == (
        alice.user_id, cairn_user.id, alice.project_id, True)
    assert [role["name"] for role in trust.roles] == ["member"]
    with trusted.client(alice.token()) as client:
        hidden = client.get(f"/v1/{alice.project_id}/trusts", params={"get_hidden": "true"}).json()["trust"]
        plain = client.get(f"/v1/{alice.project_id}/trusts").json()["trust"]
        summary = client.get(f"/v1/{alice.project_id}/workloads").json()["workloads"][0]
    assert [(t["name"], t["hidden"], t["value"]) for t in hidden] == [(shown["trust"], True, trust.id)]
    assert {m["key"]: m["value"] for m in hidden[0]["metadata"]} == {
        "role_name": "member", "is_cloud_trust": "False", "workload_id": workload_id}
    assert plain == []  # a workload's own trust is listed on request only, as in the original
    assert summary["scheduler_trust"] is None  # the list view is the seed's


def test_scheduled_snapshot_acts_through_the_trust_after_the_creating_token_is_revoked(
        keystone: KeystoneServer, trusted: Service, recorder: ActingRecorder) -> None:
    alice = keystone.users["alice"]
    token = alice.token()
    workload_id = create_workload(trusted, alice, token)
    trust = keystone_trust_id(trusted, alice, show(trusted, alice, workload_id)["scheduler_trust"]["trust"])
    keystone.revoke(token)
    with pytest.raises(ks_exceptions.NotFound):  # Keystone no longer honours it
        keystone.admin_client().tokens.validate(token)

    snapshot = fire_schedule(trusted, workload_id)

    assert snapshot == {"status": "available", "name": "jobscheduler", "error_msg": None}
    acting = recorder.seen[-1]
    assert acting is not None
    assert (acting.user_id, acting.project_id, acting.trust_id) == (alice.user_id, alice.project_id, trust)
    access = keystone.admin_client().tokens.validate(acting.token)
    # a token of alice's, issued to Cairn through the trust, with the delegated role only
    assert access.trust_scoped and access.trust_id == trust and access.user_id == alice.user_id
    assert access.project_id == alice.project_id and "member" in access.role_names
    assert "admin" not in access.role_names
    assert show(trusted, alice, workload_id)["status"] == "available"

    # a restore, too, runs for alice through the trust, whatever token asked for it
    with trusted.client(alice.token()) as client:
        with trusted.runtime.database.reader() as session:
            snapshot_id = session.scalar(select(Snapshot.id).where(Snapshot.workload_id == workload_id))
        asked = client.post(f"/v1/{alice.project_id}/workloads/{workload_id}/snapshots/{snapshot_id}/restores",
                            json={"restore": {"name": "back", "options": {"type": "openstack",
                                                                          "oneclickrestore": True}}})
        assert asked.status_code == 202, asked.text
        wait_for_idle(trusted)
        restored = client.get(f"/v1/{alice.project_id}/restores/{asked.json()['restore']['id']}").json()
    assert restored["restore"]["status"] == "available", restored
    assert recorder.seen[-1] is not None and recorder.seen[-1].trust_id == trust
    assert recorder.seen[-1].user_id == alice.user_id


def test_revoked_trust_fails_the_snapshot_naming_it_and_leaves_the_workload_available(
        keystone: KeystoneServer, trusted: Service, recorder: ActingRecorder) -> None:
    alice = keystone.users["alice"]
    workload_id = create_workload(trusted, alice, alice.token())
    name = show(trusted, alice, workload_id)["scheduler_trust"]["trust"]
    trust = keystone_trust_id(trusted, alice, name)
    keystone.admin_client().trusts.delete(trust)  # revoked behind Cairn's back

    snapshot = fire_schedule(trusted, workload_id)

    assert snapshot["status"] == "error"
    assert name in snapshot["error_msg"] and trust in snapshot["error_msg"]
    assert "revoked, deleted or has expired" in snapshot["error_msg"]
    assert recorder.seen == []  # no disk was read for anybody
    shown = show(trusted, alice, workload_id)
    assert shown["status"] == "available"  # not left locked
    assert shown["scheduler_trust"] == {"scheduler_enabled": True, "trust": name, "is_valid": False}

    # a modify with a valid token gives the workload a new trust, and the schedule works again
    with trusted.client(alice.token()) as client:
        modified = client.put(f"/v1/{alice.project_id}/workloads/{workload_id}",
                              json={"workload": {"description": "renewed"}})
    assert modified.status_code == 202, modified.text
    renewed = show(trusted, alice, workload_id)["scheduler_trust"]
    assert renewed["is_valid"] is True and renewed["trust"] != name
    assert fire_schedule(trusted, workload_id)["status"] == "available"


def test_deleting_the_workload_deletes_its_trust(keystone: KeystoneServer, trusted: Service,
                                                 recorder: ActingRecorder) -> None:
    alice = keystone.users["alice"]
    workload_id = create_workload(trusted, alice, alice.token())
    name = show(trusted, alice, workload_id)["scheduler_trust"]["trust"]
    trust = keystone_trust_id(trusted, alice, name)
    with trusted.client(alice.token()) as client:
        assert client.delete(f"/v1/{alice.project_id}/workloads/{workload_id}").status_code == 202
    wait_for_idle(trusted)
    with pytest.raises(ks_exceptions.NotFound):
        keystone.admin_client().trusts.get(trust)
    with trusted.client(alice.token()) as client:
        listed = client.get(f"/v1/{alice.project_id}/trusts", params={"get_hidden": "1"}).json()
        gone = client.get(f"/v1/{alice.project_id}/trusts/{name}")
    assert listed == {"trust": []}
    assert gone.status_code == 404


def test_refused_workload_create_leaves_no_trust_in_keystone(keystone: KeystoneServer, trusted: Service,
                                                            recorder: ActingRecorder) -> None:
    alice = keystone.users["alice"]
    before = {t.id for t in keystone.admin_client().trusts.list(trustor_user=alice.user_id)}
    with trusted.client(alice.token()) as client:
        refused = client.post(f"/v1/{alice.project_id}/workloads", json={"workload": {
            "name": "ghost", "instances": [{"instance-id": "no-such-instance"}]}})
    assert refused.status_code == 400
    assert {t.id for t in keystone.admin_client().trusts.list(trustor_user=alice.user_id)} == before


def test_trusts_endpoints_create_show_list_and_delete(keystone: KeystoneServer, trusted: Service,
                                                      recorder: ActingRecorder) -> None:
    alice = keystone.users["alice"]
    base = f"/v1/{alice.project_id}/trusts"
    with trusted.client(alice.token()) as client:
        created = client.post(base, json={"trusts": {"role_name": "member", "is_cloud_trust": False}})
        assert created.status_code == 200, created.text
        [trust] = created.json()["trust"]
        listed = client.get(base).json()["trust"]
        one = client.get(f"{base}/{trust['id']}")
        in_keystone = keystone.admin_client().trusts.get(trust["value"])
        deleted = client.delete(f"{base}/{trust['id']}")
        after = client.get(f"{base}/{trust['id']}")
    assert (trust["project_id"], trust["user_id"], trust["category"], trust["type"], trust["hidden"],
            trust["status"]) == (alice.project_id, alice.user_id, "identity", "trust_id", False, "available")
    assert {m["key"]: m["value"] for m in trust["metadata"]} == {"role_name": "member", "is_cloud_trust": "False"}
    assert [t["id"] for t in listed] == [trust["id"]]
    assert one.status_code == 200 and one.json() == {"trust": trust}
    assert in_keystone.trustor_user_id == alice.user_id and in_keystone.impersonation is True
    assert deleted.status_code == 202 and deleted.content == b""
    assert after.status_code == 404
    with pytest.raises(ks_exceptions.NotFound):
        keystone.admin_client().trusts.get(trust["value"])


@pytest.mark.parametrize(("body", "status", "fault", "words"), [
    ({"trusts": {"role_name": "member", "is_cloud_trust": True}}, 403, "forbidden",
     "Policy doesn't allow trust:create_cloud_trust to be performed."),
    ({"trusts": {"role_name": "member", "colour": "red"}}, 400, "badRequest", "colour"),
    ({"trusts": {}}, 400, "badRequest", "role_name"),
    ({"trusts": {"role_name": ""}}, 400, "badRequest", "role_name"),
    ({"trusts": {"role_name": "member", "is_cloud_trust": "maybe"}}, 400, "badRequest", "is_cloud_trust"),
    ({"trust": {"role_name": "member"}}, 400, "badRequest", "trusts"),
    ({"trusts": {"role_name": "admin"}}, 403, "forbidden", "roles admin on project"),  # alice: no admin
    ({"trusts": {"role_name": "no-such-role"}}, 403, "forbidden", "holds no such role"),
])
def test_trust_create_refusals(keystone: KeystoneServer, trusted: Service, recorder: ActingRecorder,
                               body: dict[str, Any], status: int, fault: str, words: str) -> None:
    alice = keystone.users["alice"]
    before = {t.id for t in keystone.admin_client().trusts.list(trustor_user=alice.user_id)}
    with trusted.client(alice.token()) as client:
        response = client.post(f"/v1/{alice.project_id}/trusts", json=body)
        listed = client.get(f"/v1/{alice.project_id}/trusts", params={"get_hidden": "true"}).json()
    assert response.status_code == status, response.text
    assert list(response.json()) == [fault]
    assert words in response.json()[fault]["message"]
    assert listed == {"trust": []}  # nothing written
    assert {t.id for t in keystone.admin_client().trusts.list(trustor_user=alice.user_id)} == before


def test_unknown_and_other_projects_trusts_are_not_found(keystone: KeystoneServer, trusted: Service,
                                                         recorder: ActingRecorder) -> None:
    alice, root = keystone.users["alice"], keystone.users["root"]
    with trusted.client(root.token()) as client:
        theirs = client.post(f"/v1/{root.project_id}/trusts", json={"trusts": {"role_name": "member"}})
    assert theirs.status_code == 200, theirs.text
    their_id = theirs.json()["trust"][0]["id"]
    with trusted.client(alice.token()) as client:
        answers = [client.get(f"/v1/{alice.project_id}/trusts/trust-unknown"),
                   client.delete(f"/v1/{alice.project_id}/trusts/trust-unknown"),
                   client.get(f"/v1/{alice.project_id}/trusts/{their_id}"),
                   client.delete(f"/v1/{alice.project_id}/trusts/{their_id}")]
        elsewhere = client.get(f"/v1/{root.project_id}/trusts")
    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert all(list(a.json()) == ["itemNotFound"] for a in answers)
    assert "trust-unknown" in answers[0].json()["itemNotFound"]["message"]
    assert elsewhere.status_code == 400  # another project's URL: "Malformed request url"
    with trusted.client(root.token()) as client:  # still there, and its owner can delete it
        assert client.delete(f"/v1/{root.project_id}/trusts/{their_id}").status_code == 202


def test_trusts_need_a_keystone_token(sqlite_service: Service) -> None:
    sqlite_service.reset_tables()
    with sqlite_service.client(sqlite_service.token("p1")) as client:
        response = client.post("/v1/p1/trusts", json={"trusts": {"role_name": "member"}})
        created = client.post("/v1/p1/workloads", json={"workload": {
            "name": "local", "instances": [{"instance-id": sqlite_service.add_instance("p1")}]}})
        wait_for_idle(sqlite_service)
        shown = client.get(f"/v1/p1/workloads/{created.json()['workload']['id']}").json()["workload"]
    assert response.status_code == 400 and "auth_strategy = keystone" in response.json()["badRequest"]["message"]
    assert shown["scheduler_trust"] is None


def test_policy_sample_names_every_trust_rule() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "cairn", "policy", "sample"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    for rule in ("trust:get_all", "trust:create", "trust:create_cloud_trust", "trust:get", "trust:delete"):
        assert f'"{rule}"' in done.stdout



def test_an_admin_creates_a_cloud_trust(keystone: KeystoneServer, trusted: Service,
                                       recorder: ActingRecorder) -> None:
    root = keystone.users["root"]
    with trusted.client(root.token()) as client:
        created = client.post(f"/v1/{root.project_id}/trusts",
                              json={"trusts": {"role_name": "admin", "is_cloud_trust": "True"}})
        assert created.status_code == 200, created.text
        [trust] = created.json()["trust"]
        assert client.delete(f"/v1/{root.project_id}/trusts/{trust['id']}").status_code == 202
    assert {m["key"]: m["value"] for m in trust["metadata"]} == {"role_name": "admin", "is_cloud_trust": "True"}
    assert trust["user_id"] == root.user_id and trust["hidden"] is False
