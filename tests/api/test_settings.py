"""Project settings over HTTP, and the e-mail they turn on: received by a real SMTP
server (aiosmtpd) on loopback when a snapshot succeeds and when one fails."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bench.cluster import free_port
from tests.api.test_snapshots import take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, wait_status
from tests.conftest import Service, wait_until

SMTP_FIELDS = ("smtp_server_name", "smtp_port", "smtp_server_username", "smtp_server_password",
               "smtp_default_sender", "smtp_default_recipient", "smtp_timeout")


@dataclass
class Mailbox:
    """What the SMTP server received: each message, and who logged in with what."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == ("mailer", "s3cret pass"))


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port, authenticator=box,
                            auth_require_tls=False)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def smtp_settings(port: int, **overrides: str) -> list[dict[str, Any]]:
    values = {"smtp_server_name": "127.0.0.1", "smtp_port": str(port), "smtp_server_username": "mailer",
              "smtp_server_password": "s3cret pass", "smtp_default_sender": "backup@example.org",
              "smtp_default_recipient": "ops@example.org, oncall@example.org", "smtp_timeout": "10",
              "smtp_email_enable": "1", **overrides}
    return [{"name": name, "value": value, "category": "email", "is_public": False, "is_hidden": False,
             "metadata": {}, "type": "", "description": ""} for name, value in values.items()]


def post_settings(api: Service, token: str, settings: list[dict[str, Any]], project: str = "p1") -> Any:
    with api.client(token) as client:
        return client.post(f"/v1/{project}/settings", json={"settings": settings})


@pytest.fixture
def admin(api: Service) -> str:
    return api.token("admin", "root", roles=("admin",))


def test_settings_are_stored_shown_with_the_password_masked_and_deleted(api: Service, admin: str) -> None:
    response = post_settings(api, admin, smtp_settings(2525))
    assert response.status_code == 200, response.text
    shown = {s["name"]: s for s in response.json()["settings"]}
    assert shown["smtp_server_password"]["value"] == "******"
    assert shown["smtp_port"]["value"] == "2525" and shown["smtp_port"]["project_id"] == "p1"
    assert shown["smtp_port"]["category"] == "email" and shown["smtp_port"]["user_id"] == "root"
    member = api.token("p1", "u1")
    with api.client(member) as client:
        listed = client.get("/v1/p1/settings").json()["settings"]
        assert [s["name"] for s in listed] == sorted(shown)
        assert "s3cret" not in client.get("/v1/p1/settings").text
        one = client.get("/v1/p1/settings/smtp_server_password")
        assert one.status_code == 200 and one.json()["setting"]["value"] == "******"
        assert client.get("/v1/p1/settings/no_such").status_code == 404
    # Changing one setting replaces its value and keeps the others.
    assert post_settings(api, admin, [{"name": "smtp_port", "value": 587}]).status_code == 200
    with api.client(admin) as client:
        assert client.get("/v1/p1/settings/smtp_port").json()["setting"]["value"] == "587"
        assert client.delete("/v1/p1/settings/smtp_port").status_code == 200
        assert client.get("/v1/p1/settings/smtp_port").status_code == 404
        missing = client.delete("/v1/p1/settings/smtp_port")
        assert missing.status_code == 404 and "smtp_port" in missing.json()["itemNotFound"]["message"]
        assert client.delete("/v1/p1/settings").status_code == 200
        assert client.get("/v1/p1/settings").json() == {"settings": []}


def test_a_member_may_read_but_not_change_settings(api: Service, admin: str) -> None:
    member = api.token("p1", "u1")
    refused = post_settings(api, member, smtp_settings(2525))
    assert refused.status_code == 403
    assert "workload:setting_create" in refused.json()["forbidden"]["message"]
    assert post_settings(api, admin, smtp_settings(2525)).status_code == 200
    with api.client(member) as client:
        assert client.get("/v1/p1/settings").status_code == 200
        gone = client.delete("/v1/p1/settings/smtp_port")
        assert gone.status_code == 403 and "workload:setting_delete" in gone.text
        # another project's settings are not a member's to read
        assert client.get("/v1/p2/settings").status_code == 400


@pytest.mark.parametrize(("name", "value", "says"), [
    ("smtp_port", "70000", "settings.smtp_port"),
    ("smtp_port", "twenty", "settings.smtp_port"),
    ("smtp_email_enable", "maybe", "settings.smtp_email_enable"),
    ("smtp_default_recipient", "ops@example.org, not-an-address", "settings.smtp_default_recipient"),
    ("smtp_timeout", "0", "settings.smtp_timeout"),
    ("smtp_security", "tls13", "settings.smtp_security"),
    ("bad name!", "x", "settings.name"),
])
def test_a_bad_setting_is_refused_naming_it_and_nothing_is_written(api: Service, admin: str, name: str,
                                                                   value: str, says: str) -> None:
    settings = smtp_settings(2525)
    settings.append({"name": name, "value": value})
    settings = [s for s in settings if s["name"] != name or s["value"] == value]
    response = post_settings(api, admin, settings)
    assert response.status_code == 400, response.text
    assert says in response.json()["badRequest"]["message"]
    with api.client(admin) as client:
        assert client.get("/v1/p1/settings").json() == {"settings": []}


def test_a_body_with_unknown_keys_or_no_settings_is_refused(api: Service, admin: str) -> None:
    with api.client(admin) as client:
        extra = client.post("/v1/p1/settings", json={"settings": [{"name": "a", "value": "b", "colour": "red"}]})
        assert extra.status_code == 400 and "colour" in extra.text
        empty = client.post("/v1/p1/settings", json={"settings": []})
        assert empty.status_code == 400 and "settings" in empty.text
        twice = client.post("/v1/p1/settings", json={"settings": [{"name": "a", "value": "1"},
                                                                   {"name": "a", "value": "2"}]})
        assert twice.status_code == 400 and "given twice" in twice.text


def protect(api: Service, name: str = "web") -> tuple[str, str, str]:
    token = api.token("p1", "u1")
    vm = api.add_instance("p1", "vm1")
    workload = create_workload(api, token, [vm], name=name)["id"]
    wait_status(api, token, workload, "available")
    return token, workload, vm


def test_a_successful_snapshot_sends_an_email_naming_workload_snapshot_and_outcome(
        api: Service, admin: str, mailbox: Mailbox) -> None:
    assert post_settings(api, admin, smtp_settings(mailbox.port)).status_code == 200
    token, workload, _vm = protect(api, "billing")
    snap = take_snapshot(api, token, workload, {"snapshot": {"name": "nightly-1"}})
    wait_snapshot(api, token, snap["id"])
    wait_until(lambda: mailbox.messages, timeout=30)
    message = mailbox.messages[0]
    assert message["Subject"] == "[Cairn] Snapshot nightly-1 of workload billing succeeded"
    assert message["From"] == "backup@example.org"
    body = message.get_content()
    assert f"Workload: billing ({workload})" in body
    assert f"Snapshot: nightly-1 ({snap['id']})" in body and "Outcome:  succeeded" in body
    assert mailbox.envelopes[0] == ("backup@example.org", ["ops@example.org", "oncall@example.org"])
    assert mailbox.logins == [("mailer", "s3cret pass")]


def test_a_failed_snapshot_sends_an_email_with_the_error(api: Service, admin: str, mailbox: Mailbox) -> None:
    assert post_settings(api, admin, smtp_settings(mailbox.port)).status_code == 200
    token, workload, vm = protect(api, "billing")
    from cairn.platforms.local import list_instances
    with api.runtime.database.reader() as session:
        disk = next(i for i in list_instances(session, "p1") if i.id == vm).disks[0].path
    Path(disk).unlink()
    snap = take_snapshot(api, token, workload, {"snapshot": {"name": "nightly-2"}})
    failed = wait_snapshot(api, token, snap["id"], "error")
    wait_until(lambda: mailbox.messages, timeout=30)
    message = mailbox.messages[0]
    assert message["Subject"] == "[Cairn] Snapshot nightly-2 of workload billing failed"
    body = message.get_content()
    assert f"Snapshot: nightly-2 ({snap['id']})" in body and "Outcome:  failed" in body
    assert f"Error:    {failed['error_msg']}" in body and disk in body


def test_no_email_while_it_is_off(api: Service, admin: str, mailbox: Mailbox) -> None:
    assert post_settings(api, admin, smtp_settings(mailbox.port, smtp_email_enable="0")).status_code == 200
    token, workload, _vm = protect(api)
    wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    mailer = api.runtime.mailer
    assert mailer is not None
    # A second project with e-mail on shows the mailer has handled the first event by now.
    assert post_settings(api, admin, smtp_settings(mailbox.port), project="p2").status_code == 200
    other = api.token("p2", "u2")
    vm = api.add_instance("p2", "vm2")
    created = create_workload(api, other, [vm], project="p2")["id"]
    wait_status(api, other, created, "available", project="p2")
    with api.client(other) as client:
        assert client.post(f"/v1/p2/workloads/{created}").status_code == 200
    wait_until(lambda: mailbox.messages, timeout=30)
    assert len(mailbox.messages) == 1 and f"({created})" in mailbox.messages[0].get_content()


def test_a_hanging_smtp_server_neither_delays_nor_fails_the_snapshot(api: Service, admin: str,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    # A server that accepts connections and never greets: the mailer waits out its timeout.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    stop = threading.Event()
    try:
        assert post_settings(api, admin, smtp_settings(port, smtp_timeout="300")).status_code == 200
        token, workload, _vm = protect(api)
        first = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
        wait_status(api, token, workload, "available")
        # A second snapshot right after, while the mailer still waits on the first greeting.
        second = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"], timeout=60)
        assert first["status"] == second["status"] == "available"
    finally:
        stop.set()
        listener.close()
    # With the server gone the waiting exchange fails; the failure is logged, nothing else.
    wait_until(lambda: any("could not send the e-mail" in r.getMessage() for r in caplog.records), timeout=320)


def test_a_restore_sends_an_email_too(api: Service, admin: str, mailbox: Mailbox) -> None:
    from tests.api.test_snapshots import restore
    assert post_settings(api, admin, smtp_settings(mailbox.port)).status_code == 200
    token, workload, _vm = protect(api, "billing")
    snap = wait_snapshot(api, token, take_snapshot(api, token, workload, {"snapshot": {"name": "n1"}})["id"])
    wait_status(api, token, workload, "available")
    done = restore(api, token, workload, snap["id"], {"type": "openstack", "oneclickrestore": True})
    wait_until(lambda: len(mailbox.messages) == 2, timeout=30)
    message = next(m for m in mailbox.messages if m["Subject"].startswith("[Cairn] Restore"))
    assert message["Subject"] == "[Cairn] Restore r of workload billing succeeded"
    body = message.get_content()
    assert f"Restore:  r ({done['id']})" in body and f"Snapshot: n1 ({snap['id']})" in body


def test_every_new_rule_is_in_the_policy_sample() -> None:
    from cairn.auth.policy import sample_policy
    sample = sample_policy()
    for name, default in (("workload:setting_create", "rule:admin_api"),
                          ("workload:setting_get", "rule:admin_or_owner"),
                          ("workload:setting_delete", "rule:admin_api"),
                          ("workload:reassign_workloads", "rule:admin_api"),
                          ("workload:get_import_workloads_list", "rule:admin_api"),
                          ("workload:import_workloads", "rule:admin_api"),
                          ("workload:get_orphaned_workloads_list", "rule:admin_api")):
        assert f'#"{name}": "{default}"' in sample
