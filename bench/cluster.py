"""A scaled-out Cairn in real processes on this machine: api, scheduler and worker roles.

Shared by the integration tests (`tests/scale/conftest.py`) and the load benchmark
(`bench/load.py`); nothing in Cairn imports it. `running_cluster` creates a fresh
PostgreSQL or MariaDB database and a RabbitMQ virtual host (oslo.messaging names its
queues after the topic, so only a vhost keeps two clusters' workers apart), migrates the
database, starts the processes (`python -m cairn api|scheduler|worker`) and, on exit,
kills them and drops the database and the vhost. All processes share one data directory
(the backup target and the disks), as hosts would share an NFS mount. Each process logs
to `<data_dir>/logs/<name>.log`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(probe: Callable[[], Any], timeout: float = 60, interval: float = 0.05) -> Any:
    """Poll `probe` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)
        value = probe()
    return value


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True).stdout


def healthy(url: str) -> bool:
    """Whether the api at `url` answers its health check (as an api: not another role's
    health server that took the port first)."""
    try:
        response = httpx.get(f"{url}/healthcheck", timeout=2)
        return response.status_code == 200 and response.json().get("role") == "api"
    except (httpx.HTTPError, ValueError):
        return False


@dataclass
class Cluster:
    """The processes of one scaled-out Cairn and how to reach and steer them."""

    backend: str
    database_url: str
    vhost: str
    data_dir: Path
    logs: Path
    lease_seconds: int = 5
    worker_threads: int = 2
    api_urls: list[str] = field(default_factory=list)
    #: role process name → its /healthcheck URL (scheduler1 and worker1 as first started)
    health_urls: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def transport_url(self) -> str:
        return f"rabbit://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/{self.vhost}"

    @property
    def environment(self) -> dict[str, str]:
        return {**os.environ, "CAIRN_DATA_DIR": str(self.data_dir), "CAIRN_DATABASE_URL": self.database_url,
                "CAIRN_TRANSPORT_URL": self.transport_url,
                "CAIRN_JOB_LEASE_SECONDS": str(self.lease_seconds), "CAIRN_SCHEDULER_INTERVAL_SECONDS": "1",
                "CAIRN_WORKER_THREADS": str(self.worker_threads), "CAIRN_LOG_LEVEL": "INFO"}

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
            wait_until(lambda: "running (owner" in self.log(name) or process.poll() is not None, timeout=60)  # noqa: B023 - wait_until calls it before the loop moves on
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

    def schedulers(self) -> list[str]:
        return sorted(n for n in self.processes if n.startswith("scheduler"))

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of one read-only statement on the cluster's database."""
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return [dict(row) for row in conn.execute(sa.text(sql), params).mappings()]
        finally:
            engine.dispose()

    def job_of(self, subject_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT id, state, owner, error, payload FROM jobs WHERE subject_id = :s", s=subject_id)
        if not rows:
            return None
        row = rows[0]
        if isinstance(row["payload"], str):  # MariaDB's JSON is text to a plain query
            row["payload"] = json.loads(row["payload"])
        return row

    def add_instances(self, project_id: str, disks: dict[str, Path], host: str | None = None) -> dict[str, str]:
        """Register one instance per disk (name → disk) in one go; returns name → instance id.

        The same as `cairn instance add` for each, without a process start for each."""
        from cairn.db.database import Database
        from cairn.platforms.local import register_instance

        database = Database(self.database_url)
        try:
            with database.unit_of_work() as session:
                return {name: register_instance(session, project_id, name, [str(disk)], host=host).id
                        for name, disk in disks.items()}
        finally:
            database.dispose()


@contextlib.contextmanager
def running_cluster(backend: str, admin_url: str, data_dir: Path, *, name: str, apis: int = 2,
                    schedulers: int = 2, workers: int = 2, lease_seconds: int = 5,
                    worker_threads: int = 2) -> Iterator[Cluster]:
    """Start a cluster on a new database `name` (made through `admin_url`) and vhost `name`.

    The first scheduler and the first worker answer /healthcheck (`health_urls`)."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    cluster = Cluster(backend=backend, database_url=url, vhost=name, data_dir=data_dir, logs=logs,
                      lease_seconds=lease_seconds, worker_threads=worker_threads)
    taken: set[int] = set()

    def new_port() -> int:
        # a port is free until its process binds it: never hand one out twice
        while (port := free_port()) in taken:
            pass
        taken.add(port)
        return port

    try:
        cluster.cairn("db", "upgrade")
        for index in range(1, max(apis, schedulers, workers) + 1):
            if index <= apis:
                port = new_port()
                cluster.start(f"api{index}", "api", "--host", "127.0.0.1", "--port", str(port))
                cluster.api_urls.append(f"http://127.0.0.1:{port}")
            if index <= schedulers:
                health: tuple[str, ...] = ("--health-port", str(port := new_port())) if index == 1 else ()
                cluster.start(f"scheduler{index}", "scheduler", *health)
                if health:
                    cluster.health_urls[f"scheduler{index}"] = f"http://127.0.0.1:{port}/healthcheck"
            if index <= workers:
                health = ("--health-port", str(port := new_port())) if index == 1 else ()
                cluster.start(f"worker{index}", "worker", "--name", f"worker{index}", *health)
                if health:
                    cluster.health_urls[f"worker{index}"] = f"http://127.0.0.1:{port}/healthcheck"
        for api_url in cluster.api_urls:
            wait_until(lambda: healthy(api_url), timeout=60, interval=0.1)  # noqa: B023 - wait_until calls it before the loop moves on
        for worker in cluster.workers():
            wait_until(lambda: "running (owner" in cluster.log(worker), timeout=60)  # noqa: B023 - wait_until calls it before the loop moves on
        for process_name, process in cluster.processes.items():
            assert process.poll() is None, f"{process_name} ended at start:\n{cluster.log(process_name)}"
        yield cluster
    finally:
        for process in cluster.processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)  # a test may have left one stopped
        cluster.stop(*cluster.processes, sig=signal.SIGKILL)
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True)
