"""A scaled-out Cairn in real processes: 2 api, 2 scheduler and 2 worker, per backend.

The processes are started by `bench/cluster.py` (shared with the load benchmark): each
cluster gets its own PostgreSQL or MariaDB database and RabbitMQ virtual host, dropped at
the end. One cluster per backend serves every module of this package. Tests may stop
and start processes but leave two workers running, and RabbitMQ up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cluster import RABBIT_HOST, RABBIT_PORT, Cluster, port_open, rabbitmqctl, running_cluster
from tests.conftest import ADMIN_URLS, BACKENDS, wait_until

__all__ = ["Cluster", "LEASE_SECONDS", "RABBIT_HOST", "RABBIT_PORT", "_port_open", "rabbitmqctl",
           "start_worker"]

MiB = 1 << 20
LEASE_SECONDS = 5  # short, to keep the tests quick; not so short that a loaded machine misses heartbeats
SERVER_BACKENDS = [b for b in BACKENDS if b in ("postgresql", "mariadb")]
_port_open = port_open


def require_rabbitmq() -> None:
    if not port_open(RABBIT_HOST, RABBIT_PORT) or shutil.which("rabbitmqctl") is None:
        if os.environ.get("CI"):
            pytest.fail("RabbitMQ is not running (scripts/start-services.sh starts it)")
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672")


#: where a held snapshot stops reading (tests/pausing.py): past its first 32 MiB pack
HELD_AT = 40 * MiB
PAUSING_ROLE = str(Path(__file__).parents[1] / "pausing_role.py")


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 MiB of incompressible data."""
    path = tmp_path_factory.mktemp("noise") / "noise.raw"
    with open(path, "wb") as handle:
        for _ in range(6):
            handle.write(os.urandom(16 * MiB))
    return path


def start_worker(cluster: Cluster, name: str, hold: tuple[Path, int, Path] | None = None) -> None:
    """Start worker `name` (on the health port it had, if it had one) and wait until it
    serves. With `hold` (disk, byte, gate directory), it is one whose first snapshot of
    that disk stops reading at that byte until the test releases the gate
    (tests/pausing_role.py)."""
    environment = cluster.environment
    program = [sys.executable, "-m", "cairn"]
    if hold is not None:
        disk, at, gate = hold
        environment.update({"CAIRN_TEST_HOLD_DISK": str(disk), "CAIRN_TEST_HOLD_AT": str(at),
                            "CAIRN_TEST_HOLD_DIR": str(gate)})
        program = [sys.executable, PAUSING_ROLE]
    health_url = cluster.health_urls.get(name)
    health = ("--health-port", health_url.rsplit(":", 1)[1].split("/")[0]) if health_url else ()
    log_path = cluster.logs / f"{name}.log"
    log_path.touch()
    started_at = log_path.stat().st_size  # the log is appended to: read only this run's lines
    with open(log_path, "ab") as log:
        process = subprocess.Popen([*program, "worker", "--name", name, *health], env=environment,
                                   stdout=log, stderr=subprocess.STDOUT)
    cluster.processes[name] = process

    def this_run() -> str:
        with open(log_path, "rb") as handle:
            handle.seek(started_at)
            return handle.read().decode(errors="replace")
    wait_until(lambda: "running (owner" in this_run() or process.poll() is not None, timeout=60)
    assert process.poll() is None, this_run()


@pytest.fixture(scope="package", params=SERVER_BACKENDS)
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_rabbitmq()
    backend = request.param
    with running_cluster(backend, ADMIN_URLS[backend], tmp_path_factory.mktemp(f"scale-{backend}"),
                         name=f"cairn_scale_{os.getpid()}_{backend}", lease_seconds=LEASE_SECONDS) as cluster:
        yield cluster
