"""The real `openstack` command against Cairn and a real Keystone.

One Keystone for this directory's session (tests/auth/keystone_server.py: alice, a
member of alpha; root, an admin of beta) and one Cairn with `auth_strategy = keystone`,
registered in that Keystone's catalog as `cairn keystone register` does (service type
`workloads`), so `openstack` finds it the way it finds any service. `Osc.run` runs the
installed `openstack` in a subprocess with only `OS_*` variables (or a clouds.yaml)
telling it who the user is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cairn.auth import catalog
from tests.auth.conftest import keystone, keystone_service  # noqa: F401  (the session's Keystone)
from tests.auth.keystone_server import REGION, KeystoneServer, KeystoneUser
from tests.conftest import Service

OPENSTACK = Path(sys.executable).parent / "openstack"


def user_env(user: KeystoneUser, **extra: str) -> dict[str, str]:
    """What a user of that Keystone exports (an openrc), and nothing else of OS_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "CAIRN_"))}
    env.update({"OS_AUTH_URL": user.auth_url, "OS_IDENTITY_API_VERSION": "3", "OS_USERNAME": user.name,
                "OS_PASSWORD": user.password, "OS_PROJECT_NAME": user.project_name,
                "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                "OS_REGION_NAME": REGION, "OS_INTERFACE": "public"})
    env.update(extra)
    return env


@dataclass
class Result:
    """What the user saw: exit status, standard output and standard error."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, self.stderr
        return json.loads(self.stdout)


@dataclass
class Osc:
    """The `openstack` command as a user of the test Keystone."""

    keystone: KeystoneServer
    service: Service
    calls: list[list[str]] = field(default_factory=list)

    def run(self, *args: str, user: str = "alice", env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Result:
        self.calls.append(list(args))
        done = subprocess.run([str(OPENSTACK), *args], capture_output=True, text=True, timeout=300,
                              env=env if env is not None else user_env(self.keystone.users[user]),
                              cwd=cwd, stdin=subprocess.DEVNULL)
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, user: str = "alice") -> Result:
        result = self.run(*args, user=user)
        assert result.returncode == 0, f"openstack {' '.join(args)} failed:\n{result.stderr}"
        return result


@pytest.fixture(scope="session")
def cairn_in_catalog(keystone: KeystoneServer,  # noqa: F811
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Cairn with Keystone tokens, in that Keystone's catalog under type `workloads`."""
    if not OPENSTACK.is_file():
        raise RuntimeError(f"No {OPENSTACK}: scripts/setup.sh installs the osc extra.")
    # Cairn asks Keystone about each new token; on a loaded machine the first answers can
    # take longer than the default 5 s connect timeout, which is not what these tests test
    with keystone_service(tmp_path_factory.mktemp("cairn-osc"), keystone, http_connect_timeout=60.0) as service:
        urls = {interface: service.url for interface in catalog.INTERFACES}
        catalog.register(keystone.admin_client(), urls, REGION)
        yield service


@pytest.fixture
def osc(keystone: KeystoneServer, cairn_in_catalog: Service) -> Iterator[Osc]:  # noqa: F811
    cairn_in_catalog.reset_tables()
    yield Osc(keystone, cairn_in_catalog)
    cairn_in_catalog.disks.release_all()
