"""Authentication (local tokens) and authorisation (policy rules, policy file)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cairn.auth.policy import PolicyEnforcer, sample_policy
from tests.conftest import Service, variant_service


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_missing_or_unknown_token_is_401_in_the_keystone_shape(api: Service, token: str | None) -> None:
    with api.client(token) as client:
        response = client.get("/v1/p1/workloads")
    assert response.status_code == 401
    body = response.json()["error"]
    assert body["code"] == 401 and body["title"] == "Unauthorized" and body["message"]
    assert response.headers["www-authenticate"].startswith("Keystone uri=")


def test_expired_token_is_refused(api: Service) -> None:
    token = api.token(ttl=timedelta(microseconds=1))
    with api.client(token) as client:
        response = client.get("/v1/p1/workloads")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_tokens_are_stored_only_as_hashes(api: Service) -> None:
    import sqlalchemy as sa

    from cairn.db.models import Token

    secret = api.token()
    with api.runtime.database.reader() as session:
        stored = session.scalars(sa.select(Token.token_hash)).all()
    assert secret not in stored and len(stored) == 1 and len(stored[0]) == 64


def test_non_admin_cannot_use_admin_actions(api: Service) -> None:
    member = api.token()
    with api.client(member) as client:
        assert client.post("/v1/p1/global_job_scheduler/disable").status_code == 403
        assert client.get("/v1/p1/workload_policy").status_code == 403
        response = client.post("/v1/p1/workload_policy", json={"workload_policy": {
            "display_name": "gold", "field_values": {"interval": "1", "retention_policy_type":
            "Number of Snapshots to Keep", "retention_policy_value": "3", "fullbackup_interval": "-1"}}})
    assert response.status_code == 403
    assert response.json() == {"forbidden": {"code": 403, "message":
                               "Policy doesn't allow workload:policy_create to be performed."}}


def test_policy_file_overrides_a_default_rule(service: Service, tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"workload:create": "rule:admin_api"\n')
    member = service.token()
    vm = service.add_instance()
    with variant_service(service, policy_file=policy_file) as strict, strict.client(member) as client:
        response = client.post("/v1/p1/workloads", json={"workload": {"name": "w", "instances": [{"instance-id": vm}]}})
        assert response.status_code == 403
        assert "workload:create" in response.json()["forbidden"]["message"]
        assert client.get("/v1/p1/workloads").status_code == 200


def test_missing_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    from cairn.errors import InvalidInput
    with pytest.raises(InvalidInput, match="does not exist"):
        PolicyEnforcer(tmp_path / "absent.yaml")


def test_sample_policy_lists_every_rule() -> None:
    sample = sample_policy()
    for rule in ("workload:get_all", "workload:policy_create", "workload:unlock", "snapshot:create"):
        assert f'#"{rule}":' in sample


def test_an_edited_policy_file_applies_to_the_next_decision(tmp_path: Path) -> None:
    from cairn.auth.context import Identity, RequestContext

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"workload:create": "rule:admin_or_owner"\n')
    enforcer = PolicyEnforcer(policy_file)
    member = RequestContext(Identity("p1", "u1", frozenset({"member"})), "p1", "req-test")
    assert enforcer.allows("workload:create", member, "p1")
    assert enforcer.allows("workload:create", member, "p1")  # remembered
    assert not enforcer.allows("workload:create", member, "p2")
    policy_file.write_text('"workload:create": "rule:admin_api"\n')
    assert not enforcer.allows("workload:create", member, "p1")
