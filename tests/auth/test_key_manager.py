"""The key manager module on its own: ids and refs, and a Barbican or Keystone that no
one answers for (closed loopback ports) is a 503, never another error."""

from __future__ import annotations

import pytest

from cairn.auth.key_manager import CallerToken, KeyManager, ServiceUser, secret_id
from cairn.config import BarbicanSettings, KeystoneAuthSettings
from cairn.errors import InvalidInput, Unavailable
from tests.conftest import free_port


def test_secret_id_takes_an_id_or_a_secret_ref() -> None:
    assert secret_id("6c5a2fe9-0931-4a06-a754-74ecd84fdbf5") == "6c5a2fe9-0931-4a06-a754-74ecd84fdbf5"
    assert secret_id("http://b:9311/v1/secrets/6c5a2fe9-0931-4a06-a754-74ecd84fdbf5/") == (
        "6c5a2fe9-0931-4a06-a754-74ecd84fdbf5")


def manager(barbican_endpoint: str | None = None) -> KeyManager:
    keystone = KeystoneAuthSettings(auth_url=f"http://127.0.0.1:{free_port()}/v3", username="cairn",
                                    password="x", project_name="service", http_connect_timeout=2.0)
    return KeyManager(keystone, BarbicanSettings(barbican_endpoint=barbican_endpoint))


@pytest.mark.parametrize("credentials", [CallerToken("token", "p1"), ServiceUser()])
def test_nobody_answering_is_unavailable(credentials: CallerToken | ServiceUser) -> None:
    with pytest.raises(Unavailable, match="key manager"):
        manager(f"http://127.0.0.1:{free_port()}").read_payload("6c5a2fe9-0931-4a06-a754-74ecd84fdbf5",
                                                                credentials)


def test_an_id_that_would_change_the_url_is_refused_naming_the_field() -> None:
    for bad in ("", "../acl", "a b", "x?y"):
        with pytest.raises(InvalidInput, match="workload.secret_uuid") as caught:
            manager().read_payload(bad, ServiceUser(), "workload.secret_uuid")
        assert caught.value.field == "workload.secret_uuid"
