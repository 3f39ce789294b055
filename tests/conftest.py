"""Shared fixtures: a real Cairn service over a real socket, on each database backend.

`CAIRN_TEST_BACKENDS` (default `sqlite,postgresql,mariadb`) chooses the backends; the
session-scoped `service` fixture is parametrised over them, so every API test runs once
per backend. PostgreSQL and MariaDB get a fresh database per test session
(`cairn_test_<pid>`), migrated with Alembic, dropped at the end. Between tests every
table but the seeded ones is emptied.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from bench.cluster import free_port, wait_until
from cairn.api.app import create_app
from cairn.auth.context import Identity
from cairn.auth.tokens import issue_token
from cairn.config import Settings
from cairn.db.database import Database
from cairn.db.migrate import upgrade
from cairn.db.models import Base
from cairn.runtime import Runtime, build_platform, build_runtime
from tests.browser import browser, page, playwright  # noqa: F401 - fixtures, defined once for the session
from tests.pausing import JobWatch, PausingPlatform

ADMIN_URLS = {
    "postgresql": os.environ.get("CAIRN_TEST_POSTGRESQL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "mariadb": os.environ.get("CAIRN_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/mysql"),
}
BACKENDS = [b.strip() for b in os.environ.get("CAIRN_TEST_BACKENDS", "sqlite,postgresql,mariadb").split(",")
            if b.strip()]
KEEP_TABLES = {"workload_types", "alembic_version"}


def kill_server_connection(backend: str, server_id: int) -> None:
    """Kill connection `server_id` of a PostgreSQL or MariaDB server with the server's
    own tool (`pg_terminate_backend`, `KILL`), and wait until the server has let it go."""
    admin = sa.create_engine(ADMIN_URLS[backend], isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if backend == "postgresql":
                conn.execute(sa.text("SELECT pg_terminate_backend(:id)"), {"id": server_id})
                gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = :id"
            else:
                conn.execute(sa.text(f"KILL {int(server_id)}"))
                gone = "SELECT count(*) FROM information_schema.processlist WHERE id = :id"
            wait_until(lambda: conn.execute(sa.text(gone), {"id": server_id}).scalar() == 0, timeout=60,
                       interval=0.01)
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One fresh, migrated database per backend for this test session."""
    name = f"cairn_test_{os.getpid()}"
    urls: dict[str, str] = {}
    created: list[tuple[str, str]] = []
    for backend in BACKENDS:
        if backend == "sqlite":
            urls[backend] = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'cairn.sqlite'}"
            continue
        admin = sa.create_engine(ADMIN_URLS[backend], isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        created.append((backend, name))
        urls[backend] = sa.make_url(ADMIN_URLS[backend]).set(database=name).render_as_string(hide_password=False)
    for url in urls.values():
        upgrade(url)
    yield urls
    for backend, db_name in created:
        admin = sa.create_engine(ADMIN_URLS[backend], isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {db_name}"))
        admin.dispose()


@dataclass
class Service:
    """A running Cairn: its base URL, its runtime, and ways to make callers."""

    backend: str
    url: str
    runtime: Runtime
    data_dir: Path
    #: the runtime's platform, through which a test holds a disk's reading at a byte
    disks: PausingPlatform
    #: the jobs the runtime runs, as they see themselves
    jobs: JobWatch

    def token(self, project: str = "p1", user: str = "u1", roles: tuple[str, ...] = ("member",),
              ttl: Any = None) -> str:
        with self.runtime.database.unit_of_work() as session:
            return issue_token(session, Identity(project, user, frozenset(roles)), ttl)

    def client(self, token: str | None) -> httpx.Client:
        headers = {"X-Auth-Token": token} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def add_instance(self, project: str = "p1", name: str = "vm", size: int = 1 << 20,
                     disks: int = 1) -> str:
        from cairn.platforms.local import register_instance

        paths = []
        for _ in range(disks):
            path = self.data_dir / "disks" / f"{name}-{uuid.uuid4().hex[:8]}.raw"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as handle:
                handle.truncate(size)
            paths.append(str(path))
        with self.runtime.database.unit_of_work() as session:
            return register_instance(session, project, name, paths).id

    def reset_tables(self) -> None:
        """Empty every table but the seeded ones, and the backup targets."""
        self.disks.release_all()
        shutil.rmtree(self.data_dir / "targets", ignore_errors=True)
        for target in self.runtime.targets:
            target.init()
        with self.runtime.database.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                if table.name not in KEEP_TABLES:
                    conn.execute(table.delete())


def start_server(app: Any, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return server, thread


def make_settings(data_dir: Path, url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"job_lease_seconds": 6, "worker_threads": 4}
    values.update(overrides)
    return Settings(data_dir=data_dir, database_url=url, **values)


@contextlib.contextmanager
def serving(settings: Settings, backend: str, init_targets: bool = True) -> Iterator[Service]:
    """A runtime made from `settings` behind a real server on a free loopback port; its
    backup targets are initialised (`cairn target init`) unless told not to, and its
    platform (the one `settings` names) reads disks through gates a test may arm."""
    disks = PausingPlatform()
    runtime = build_runtime(settings, platform=disks)
    disks.attach(build_platform(settings, runtime.database))
    jobs = JobWatch(runtime.handlers)
    for target in runtime.targets if init_targets else ():
        target.init()
    runtime.start_background(scheduler=False)  # tests drive the scheduler with their own clock
    port = free_port()
    server, thread = start_server(create_app(runtime), port)
    try:
        yield Service(backend=backend, url=f"http://127.0.0.1:{port}", runtime=runtime,
                      data_dir=settings.data_dir, disks=disks, jobs=jobs)
    finally:
        disks.release_all()
        server.should_exit = True
        thread.join(timeout=10)
        runtime.close()


@contextlib.contextmanager
def running_service(backend: str, url: str, data_dir: Path) -> Iterator[Service]:
    """A runtime on `url` with the tests' settings."""
    with serving(make_settings(data_dir, url), backend) as service:
        yield service


@pytest.fixture(scope="session", params=BACKENDS)
def service(request: pytest.FixtureRequest, database_urls: dict[str, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    backend = request.param
    with running_service(backend, database_urls[backend], tmp_path_factory.mktemp(f"data-{backend}")) as svc:
        yield svc


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database of this test's own, without a service."""
    url = f"sqlite:///{tmp_path / 'cairn.sqlite'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def sqlite_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service on SQLite whatever CAIRN_TEST_BACKENDS says (for backend-blind tests)."""
    data_dir = tmp_path_factory.mktemp("data-sqlite-only")
    url = f"sqlite:///{data_dir / 'cairn.sqlite'}"
    upgrade(url)
    with running_service("sqlite", url, data_dir) as svc:
        yield svc


@contextlib.contextmanager
def variant_service(base: Service, init_targets: bool = True, **overrides: Any) -> Iterator[Service]:
    """Another service on `base`'s database with some settings changed (its own server)."""
    from dataclasses import replace

    with serving(replace(base.runtime.settings, **overrides), base.backend, init_targets) as service:
        yield service


@pytest.fixture
def api(service: Service) -> Iterator[Service]:
    """The service with empty tables (seeded workload types kept)."""
    service.reset_tables()
    yield service
    service.disks.release_all()
    wait_for_idle(service)


def wait_for_idle(service: Service, timeout: float = 60) -> None:
    """Wait until no job is queued or running, so a test's jobs cannot leak into the next."""
    from cairn.db.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with service.runtime.database.reader() as session:
            busy = session.scalar(sa.select(sa.func.count()).select_from(Job)
                                  .where(Job.state.in_(("queued", "running"))))
        if not busy:
            return
        time.sleep(0.05)
    raise AssertionError(f"{busy} jobs still queued or running {timeout:.0f} s after the test")
