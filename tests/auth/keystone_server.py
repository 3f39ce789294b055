"""A real Keystone on a loopback port, for the tests of `auth_strategy = keystone` and for
`bench/api.py --auth keystone`.

Not a fake: the `keystone` package from PyPI (version pinned in
`scripts/keystone-requirements.txt`), installed by `scripts/setup.sh` into a virtual
environment of its own, on SQLite, issuing Fernet tokens, served by gunicorn. Set up
the way an operator does: `keystone-manage db_sync`, `fernet_setup`, `credential_setup`
and `bootstrap`, then gunicorn on a WSGI file that clears `sys.argv` before building the
application (oslo.config would otherwise parse gunicorn's own arguments).

`populate()` adds what the tests use: projects `alpha`, `beta` and `service`; `alice`, a
member of alpha; `root`, an admin of beta; `cairn`, the service user (roles `service`
and `admin` in the project `service`, as OpenStack deployments give their service users).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.gunicorn_process import start_gunicorn, stop_process_group, wait_until_answering

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "scripts" / "keystone-requirements.txt"
ADMIN_PASSWORD = "keystone-admin-secret"
REGION = "RegionOne"

WSGI = '''\
"""Keystone's WSGI application for gunicorn; oslo.config must not see gunicorn's argv."""
import sys

sys.argv = sys.argv[:1]

from keystone.server import wsgi  # noqa: E402

application = wsgi.initialize_public_application()
'''


def keystone_venv() -> Path:
    """Where scripts/setup.sh installed Keystone (`$CAIRN_KEYSTONE_VENV` overrides)."""
    override = os.environ.get("CAIRN_KEYSTONE_VENV")
    if override:
        return Path(override)
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    return Path(f"/var/tmp/cairn-keystone-{digest}")


@dataclass(frozen=True)
class KeystoneUser:
    """A Keystone user and the project its tokens are scoped to."""

    name: str
    password: str
    project_name: str
    user_id: str
    project_id: str
    auth_url: str

    def token(self) -> str:
        """A fresh project-scoped token, from `POST /v3/auth/tokens`."""
        return issue_token(self.auth_url, self.name, self.password, self.project_name)


def issue_token(auth_url: str, user: str, password: str, project: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}
    response = httpx.post(f"{auth_url}/auth/tokens", json=body, timeout=30)
    if response.status_code != 201:
        raise RuntimeError(f"Keystone refused a token for {user}: {response.status_code} {response.text}")
    return response.headers["X-Subject-Token"]


@dataclass
class KeystoneServer:
    """One Keystone: its files in `workdir`, gunicorn on `port`."""

    workdir: Path
    port: int
    venv: Path = field(default_factory=keystone_venv)
    process: subprocess.Popen[bytes] | None = None
    users: dict[str, KeystoneUser] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/v3"

    @property
    def config(self) -> Path:
        return self.workdir / "keystone.conf"

    def manage(self, *args: str) -> None:
        done = subprocess.run([str(self.venv / "bin" / "keystone-manage"), "--config-file",
                               str(self.config), *args], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"keystone-manage {args[0]} failed:\n{done.stderr[-3000:]}")

    def set_up(self) -> None:
        """Configure, migrate, make the keys and bootstrap the admin and the catalog."""
        if not (self.venv / ".cairn-complete").is_file() or not (self.venv / "bin" / "keystone-manage").is_file():
            raise RuntimeError(f"No Keystone in {self.venv}: run scripts/setup.sh first.")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(textwrap.dedent(f"""\
            [DEFAULT]
            use_stderr = true
            [database]
            connection = sqlite:///{self.workdir / 'keystone.sqlite'}
            [fernet_tokens]
            key_repository = {self.workdir / 'fernet-keys'}
            [fernet_receipts]
            key_repository = {self.workdir / 'fernet-receipts'}
            [credential]
            key_repository = {self.workdir / 'credential-keys'}
            [token]
            provider = fernet
            expiration = 3600
            """))
        (self.workdir / "keystone_wsgi.py").write_text(WSGI)
        owner = ("--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid()))
        # The key set-ups do not touch the database: they run beside the migrations.
        with ThreadPoolExecutor(3) as pool:
            for future in [pool.submit(self.manage, "db_sync"),
                           pool.submit(self.manage, "fernet_setup", *owner),
                           pool.submit(self.manage, "credential_setup", *owner)]:
                future.result()
        self.manage("bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
                    "--bootstrap-admin-url", self.auth_url, "--bootstrap-public-url", self.auth_url,
                    "--bootstrap-internal-url", self.auth_url, "--bootstrap-region-id", REGION)

    def start(self, timeout: float = 90) -> None:
        env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(self.config)}
        self.process = start_gunicorn(self.venv / "bin" / "python", self.workdir, self.port,
                                      "keystone_wsgi:application", 8, env)
        wait_until_answering(self.process, self.auth_url, (200,), timeout, "Keystone",
                             self.workdir / "gunicorn.log")

    def stop(self) -> None:
        """Stop gunicorn and its worker (its own process group)."""
        stop_process_group(self.process)

    def admin_client(self) -> Any:
        """A python-keystoneclient client as the bootstrap admin."""
        return client_for(self.auth_url, "admin", ADMIN_PASSWORD, "admin")

    def populate(self) -> None:
        """The projects and users the tests use (see the module docstring)."""
        admin = self.admin_client()
        roles = {role.name: role for role in admin.roles.list()}
        projects = {name: admin.projects.create(name, "default") for name in ("alpha", "beta", "service")}
        grants = {"alice": ("alpha", ["member"]), "root": ("beta", ["admin", "member"]),
                  "cairn": ("service", ["service", "admin"])}
        for name, (project, role_names) in grants.items():
            password = f"{name}-secret"
            user = admin.users.create(name, domain="default", password=password)
            for role in role_names:
                admin.roles.grant(roles[role], user=user, project=projects[project])
            self.users[name] = KeystoneUser(name, password, project, user.id,
                                            projects[project].id, self.auth_url)

    def revoke(self, token: str) -> None:
        """`DELETE /v3/auth/tokens`: Keystone refuses the token from now on."""
        admin_token = issue_token(self.auth_url, "admin", ADMIN_PASSWORD, "admin")
        response = httpx.delete(f"{self.auth_url}/auth/tokens", timeout=30,
                                headers={"X-Auth-Token": admin_token, "X-Subject-Token": token})
        if response.status_code != 204:
            raise RuntimeError(f"revocation failed: {response.status_code} {response.text}")


def client_for(auth_url: str, user: str, password: str, project: str) -> Any:
    from keystoneauth1 import session
    from keystoneauth1.identity import v3
    from keystoneclient.v3 import client

    auth = v3.Password(auth_url=auth_url, username=user, password=password, project_name=project,
                       user_domain_name="Default", project_domain_name="Default")
    return client.Client(session=session.Session(auth=auth), interface="public")


def start_keystone(workdir: Path, port: int) -> KeystoneServer:
    """A set-up, running and populated Keystone; the caller stops it."""
    server = KeystoneServer(workdir, port)
    server.set_up()
    server.start()
    try:
        server.populate()
    except Exception:
        server.stop()
        raise
    return server
