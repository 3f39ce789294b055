"""A real Barbican (the OpenStack Key Manager) on a loopback port, for the tests of
encrypted workloads.

Not a fake: the `barbican` package from PyPI (version pinned in
`scripts/barbican-requirements.txt`), installed by `scripts/setup.sh` into a virtual
environment of its own, storing secrets with its `simple_crypto` plugin (a KEK in its
configuration file) on SQLite, served by gunicorn, and authenticating every request with
keystonemiddleware against the tests' real Keystone. Set up the way an operator does: a
`barbican` service user with the `service` role, the `key-manager` service and its
endpoints in Keystone's catalog, `barbican.conf` and the API's paste pipeline with
`authtoken`. Its configuration is `<workdir>/.barbican/barbican.conf`, found through
HOME (oslo.config's first search place; the stock entry point reads only /etc/barbican).
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.auth.keystone_server import REGION, KeystoneServer, KeystoneUser
from tests.gunicorn_process import start_gunicorn, stop_process_group, wait_until_answering

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "scripts" / "barbican-requirements.txt"
SERVICE_PASSWORD = "barbican-secret"

WSGI = '''\
"""Barbican's WSGI application for gunicorn, configured from {config}."""
import sys

sys.argv = sys.argv[:1]

from barbican.common import config  # noqa: E402  (parses the default files at import)

config.parse_args(config.CONF, default_config_files=[{config!r}])

from paste import deploy  # noqa: E402

application = deploy.loadapp("config:{paste}")
'''

PASTE = """\
[composite:main]
use = egg:Paste#urlmap
/: barbican_version
/v1: barbican-api-keystone

[pipeline:barbican_version]
pipeline = request_id http_proxy_to_wsgi microversion versionapp

[pipeline:barbican-api-keystone]
pipeline = request_id http_proxy_to_wsgi authtoken context microversion apiapp

[app:apiapp]
paste.app_factory = barbican.api.app:create_main_app

[app:versionapp]
paste.app_factory = barbican.api.app:create_version_app

[filter:context]
paste.filter_factory = barbican.api.middleware.context:ContextMiddleware.factory

[filter:microversion]
paste.filter_factory = barbican.api.middleware.microversion:MicroversionMiddleware.factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory

[filter:request_id]
paste.filter_factory = oslo_middleware.request_id:RequestId.factory

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory
"""


def barbican_venv() -> Path:
    """Where scripts/setup.sh installed Barbican (`$CAIRN_BARBICAN_VENV` overrides)."""
    override = os.environ.get("CAIRN_BARBICAN_VENV")
    if override:
        return Path(override)
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    return Path(f"/var/tmp/cairn-barbican-{digest}")


@dataclass
class BarbicanServer:
    """One Barbican: its files in `workdir`, gunicorn on `port`, users from `keystone`."""

    workdir: Path
    port: int
    keystone: KeystoneServer
    venv: Path = field(default_factory=barbican_venv)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        # oslo.config looks in ~/.barbican/ first: every part of Barbican that parses its
        # configuration on its own (the crypto plugins do) finds this file, with HOME here.
        return self.workdir / ".barbican" / "barbican.conf"

    def set_up(self) -> None:
        """Barbican's service user and catalog entry in Keystone, then its files."""
        if not (self.venv / ".cairn-complete").is_file():
            raise RuntimeError(f"No Barbican in {self.venv}: run scripts/setup.sh first.")
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self._register_in_keystone()
        # a Fernet key: URL-safe base64 (cryptography 51 refuses "+" and "/", which a
        # standard encoding of random bytes holds three times in four)
        kek = base64.urlsafe_b64encode(os.urandom(32)).decode()
        self.config.write_text(textwrap.dedent(f"""\
            [DEFAULT]
            use_stderr = true
            host_href = {self.url}
            sql_connection = sqlite:///{self.workdir / 'barbican.sqlite'}
            db_auto_create = true
            [database]
            connection = sqlite:///{self.workdir / 'barbican.sqlite'}
            [secretstore]
            enabled_secretstore_plugins = store_crypto
            [crypto]
            enabled_crypto_plugins = simple_crypto
            [simple_crypto_plugin]
            kek = {kek}
            [keystone_authtoken]
            www_authenticate_uri = {self.keystone.url}
            auth_url = {self.keystone.auth_url}
            auth_type = password
            username = barbican
            password = {SERVICE_PASSWORD}
            project_name = service
            user_domain_name = Default
            project_domain_name = Default
            region_name = {REGION}
            """))
        paste = self.workdir / "barbican-api-paste.ini"
        paste.write_text(PASTE)
        (self.workdir / "barbican_wsgi.py").write_text(WSGI.format(config=str(self.config), paste=str(paste)))

    def _register_in_keystone(self) -> None:
        admin = self.keystone.admin_client()
        if any(u.name == "barbican" for u in admin.users.list()):
            return
        roles = {role.name: role for role in admin.roles.list()}
        service_project = next(p for p in admin.projects.list() if p.name == "service")
        user = admin.users.create("barbican", domain="default", password=SERVICE_PASSWORD)
        for role in ("service", "admin"):
            admin.roles.grant(roles[role], user=user, project=service_project)
        service = admin.services.create("barbican", type="key-manager", description="Key Manager")
        for interface in ("public", "internal", "admin"):
            admin.endpoints.create(service, self.url, interface=interface, region=REGION)

    def start(self, timeout: float = 120) -> None:
        self.process = start_gunicorn(self.venv / "bin" / "python", self.workdir, self.port,
                                      "barbican_wsgi:application", 4, {**os.environ, "HOME": str(self.workdir)})
        wait_until_answering(self.process, self.url, (200, 300), timeout, "Barbican",
                             self.workdir / "gunicorn.log")

    def stop(self) -> None:
        """Stop gunicorn and its worker (its own process group)."""
        stop_process_group(self.process)

    # -- what the tests do as Barbican's users -------------------------------------

    def create_secret(self, user: KeystoneUser, payload: bytes | None = None,
                      secret_type: str = "opaque") -> str:
        """A secret of `user`'s project holding `payload` (random 32 bytes by default); its id."""
        payload = os.urandom(32) if payload is None else payload
        body: dict[str, Any] = {"name": "cairn-test", "secret_type": secret_type,
                                "payload": base64.b64encode(payload).decode(),
                                "payload_content_type": "application/octet-stream",
                                "payload_content_encoding": "base64",
                                "algorithm": "aes", "bit_length": 256, "mode": "cbc"}
        response = httpx.post(f"{self.url}/v1/secrets", json=body, timeout=30,
                              headers={"X-Auth-Token": user.token()})
        if response.status_code != 201:
            raise RuntimeError(f"Barbican refused a secret: {response.status_code} {response.text}")
        return str(response.json()["secret_ref"]).rsplit("/", 1)[-1]

    def acl(self, user: KeystoneUser, secret_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/v1/secrets/{secret_id}/acl", timeout=30,
                             headers={"X-Auth-Token": user.token()})
        response.raise_for_status()
        return dict(response.json())


def start_barbican(workdir: Path, port: int, keystone: KeystoneServer) -> BarbicanServer:
    """A set-up and running Barbican; the caller stops it."""
    server = BarbicanServer(workdir, port, keystone)
    server.set_up()
    server.start()
    return server
