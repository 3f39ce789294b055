"""A scaled-out Cairn in real processes: 2 api, 2 scheduler and 2 worker, per backend.

Each cluster gets its own PostgreSQL or MariaDB database and its own RabbitMQ virtual
host (oslo.messaging names its queues after the topic, so only a vhost keeps two test
clusters' workers apart), both created here and dropped at the end. All processes share
one data directory (the backup target and the disks), as hosts would share an NFS
mount. Tests may stop and start processes but leave two workers running.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import ADMIN_URLS, BACKENDS, free_port, wait_until

MiB = 1 << 20
RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672
LEASE_SECONDS = 5  # short, to keep the tests quick; not so short that a loaded machine misses heartbeats
SERVER_BACKENDS = [b for b in BACKENDS if b in ("postgresql", "mariadb")]


def _port_open(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True).stdout


@dataclass
class Cluster:
    """The processes of one scaled-out Cairn and how to reach and steer them."""

    backend: str
    database_url: str
    vhost: str
    data_dir: Path
    logs: Path
    api_urls: list[str] = field(default_factory=list)
    #: role process name → its /healthcheck URL (scheduler1 and worker1 as first started)
    health_urls: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def environment(self) -> dict[str, str]:
        return {**os.environ, "CAIRN_DATA_DIR": str(self.data_dir), "CAIRN_DATABASE_URL": self.database_url,
                "CAIRN_TRANSPORT_URL": f"rabbit://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/{self.vhost}",
                "CAIRN_JOB_LEASE_SECONDS": str(LEASE_SECONDS), "CAIRN_SCHEDULER_INTERVAL_SECONDS": "1",
                "CAIRN_WORKER_THREADS": "2", "CAIRN_LOG_LEVEL": "INFO"}

    def cairn(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "cairn", *args], capture_output=True, text=True,
                              env=self.environment)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start a role process named `name` (its log goes to logs/<name>.log)."""
        with open(self.logs / f"{name}.log", "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "cairn", *args], env=self.environment,
                                       stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        return process

    def start_workers(self, *names: str) -> None:
        """Start workers (at once: start-up is mostly imports) and wait until they serve."""
        for name in names:
            self.start(name, "worker", "--name", name)
        for name in names:
            process = self.processes[name]
            wait_until(lambda: "running (owner" in self.log(name) or process.poll() is not None, timeout=60)
            assert process.poll() is None, self.log(name)

    def stop(self, *names: str, sig: int = signal.SIGTERM) -> None:
        processes = [self.processes.pop(name) for name in names]
        for process in processes:
            process.send_signal(sig)
        for process in processes:
            process.wait(timeout=60)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def workers(self) -> list[str]:
        return sorted(n for n in self.processes if n.startswith("worker"))

    def job_of(self, subject_id: str) -> dict[str, Any] | None:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                row = conn.execute(sa.text("SELECT state, owner, error FROM jobs WHERE subject_id = :s"),
                                   {"s": subject_id}).mappings().first()
                return dict(row) if row else None
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """384 MiB of incompressible data: a snapshot of it runs for a while."""
    path = tmp_path_factory.mktemp("noise") / "noise.raw"
    with open(path, "wb") as handle:
        for _ in range(24):
            handle.write(os.urandom(16 * MiB))
    return path


@pytest.fixture(scope="module", params=SERVER_BACKENDS)
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not _port_open(RABBIT_HOST, RABBIT_PORT) or shutil.which("rabbitmqctl") is None:
        if os.environ.get("CI"):
            pytest.fail("RabbitMQ is not running (scripts/start-services.sh starts it)")
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672")
    backend = request.param
    name = f"cairn_scale_{os.getpid()}_{backend}"
    admin = sa.create_engine(ADMIN_URLS[backend], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    data_dir = tmp_path_factory.mktemp(f"scale-{backend}")
    logs = data_dir / "logs"
    logs.mkdir()
    url = sa.make_url(ADMIN_URLS[backend]).set(database=name).render_as_string(hide_password=False)
    cluster = Cluster(backend=backend, database_url=url, vhost=name, data_dir=data_dir, logs=logs)
    try:
        cluster.cairn("db", "upgrade")
        for index in (1, 2):
            port = free_port()
            cluster.start(f"api{index}", "api", "--host", "127.0.0.1", "--port", str(port))
            cluster.api_urls.append(f"http://127.0.0.1:{port}")
            health = ("--health-port", str(port := free_port())) if index == 1 else ()
            cluster.start(f"scheduler{index}", "scheduler", *health)
            if health:
                cluster.health_urls[f"scheduler{index}"] = f"http://127.0.0.1:{port}/healthcheck"
            health = ("--health-port", str(port := free_port())) if index == 1 else ()
            cluster.start(f"worker{index}", "worker", "--name", f"worker{index}", *health)
            if health:
                cluster.health_urls[f"worker{index}"] = f"http://127.0.0.1:{port}/healthcheck"
        for api_url in cluster.api_urls:
            wait_until(lambda: _healthy(api_url), timeout=60, interval=0.1)
        for worker in cluster.workers():
            wait_until(lambda: "running (owner" in cluster.log(worker), timeout=60)
        yield cluster
    finally:
        cluster.stop(*cluster.processes, sig=signal.SIGKILL)
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()
        rabbitmqctl("delete_vhost", name)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthcheck", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
