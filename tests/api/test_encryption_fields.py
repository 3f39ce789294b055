"""The encryption fields of a workload create, on every backend, without a key manager
(`auth_strategy = local`): what Trilio 4.2+ clients send is accepted unencrypted, and
what would need Barbican is refused naming the field. The encrypted path itself runs
against a real Barbican in tests/auth/test_encryption.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.api.test_validation import post_workload, row_counts
from tests.api.test_workloads import show, wait_status
from tests.conftest import Service


def tempest_body(instance_id: str, encryption: Any, secret_uuid: Any) -> dict[str, Any]:
    """Exactly what tempest stable/5.2's `workload_create` posts (its defaults:
    `encryption=False, secret_uuid=""`)."""
    name = "tempest" + str(datetime.now()).replace(".", "-")
    return {"workload": {"name": name, "source_platform": "openstack",
                         "instances": [{"instance-id": instance_id}], "jobschedule": {"enabled": False},
                         "metadata": {}, "description": "test", "encryption": encryption,
                         "secret_uuid": secret_uuid}}


@pytest.mark.parametrize("secret_uuid", ["", None])
def test_tempest_52_body_is_accepted_and_shown_unencrypted(api: Service, secret_uuid: str | None) -> None:
    token = api.token("p1")
    body = tempest_body(api.add_instance("p1"), False, secret_uuid)
    response = post_workload(api, token, body)
    assert response.status_code == 202, response.text
    workload_id = response.json()["workload"]["id"]
    wait_status(api, token, workload_id, "available")
    shown = show(api, token, workload_id)
    assert shown["encryption"] is False and shown["secret_uuid"] is None
    assert shown["name"] == body["workload"]["name"] and shown["description"] == "test"


REFUSED = [
    (True, "", "workload.secret_uuid"),
    (True, None, "workload.secret_uuid"),
    (False, "0b8e8f4c-8f55-4d0c-9a53-3d0f0c1e9a11", "workload.secret_uuid"),
    ("maybe", "", "workload.encryption"),
    (True, "x" * 65, "workload.secret_uuid"),
    # a well-formed request, but this service has no key manager to read the secret with
    (True, "0b8e8f4c-8f55-4d0c-9a53-3d0f0c1e9a11", "workload.encryption"),
]


@pytest.mark.parametrize(("encryption", "secret_uuid", "field"), REFUSED)
def test_encryption_refusals_name_the_field_and_write_nothing(api: Service, encryption: Any, secret_uuid: Any,
                                                              field: str) -> None:
    token = api.token("p1")
    instance = api.add_instance("p1")
    before = row_counts(api)
    response = post_workload(api, token, tempest_body(instance, encryption, secret_uuid))
    assert response.status_code == 400, response.text
    assert field in response.json()["badRequest"]["message"], response.text
    assert row_counts(api) == before


def test_encryption_cannot_be_set_by_modify(api: Service) -> None:
    token = api.token("p1")
    response = post_workload(api, token, tempest_body(api.add_instance("p1"), False, ""))
    workload_id = response.json()["workload"]["id"]
    wait_status(api, token, workload_id, "available")
    with api.client(token) as client:
        changed = client.put(f"/v1/p1/workloads/{workload_id}", json={"workload": {"encryption": True}})
    assert changed.status_code == 400 and "workload.encryption" in changed.text, changed.text
