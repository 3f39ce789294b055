"""A scaled-out Cairn in real processes: 2 api, 2 scheduler and 2 worker, per backend.

The processes are started by `bench/cluster.py` (shared with the load benchmark): each
cluster gets its own PostgreSQL or MariaDB database and RabbitMQ virtual host, dropped at
the end. One cluster per backend serves every module of this package. Tests may stop
and start processes but leave two workers running, and RabbitMQ up.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cluster import RABBIT_HOST, RABBIT_PORT, Cluster, port_open, rabbitmqctl, running_cluster
from tests.conftest import ADMIN_URLS, BACKENDS

__all__ = ["Cluster", "LEASE_SECONDS", "RABBIT_HOST", "RABBIT_PORT", "_port_open", "rabbitmqctl"]

MiB = 1 << 20
LEASE_SECONDS = 5  # short, to keep the tests quick; not so short that a loaded machine misses heartbeats
SERVER_BACKENDS = [b for b in BACKENDS if b in ("postgresql", "mariadb")]
_port_open = port_open


def require_rabbitmq() -> None:
    if not port_open(RABBIT_HOST, RABBIT_PORT) or shutil.which("rabbitmqctl") is None:
        if os.environ.get("CI"):
            pytest.fail("RabbitMQ is not running (scripts/start-services.sh starts it)")
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672")


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """384 MiB of incompressible data: a snapshot of it runs for a while."""
    path = tmp_path_factory.mktemp("noise") / "noise.raw"
    with open(path, "wb") as handle:
        for _ in range(24):
            handle.write(os.urandom(16 * MiB))
    return path


@pytest.fixture(scope="package", params=SERVER_BACKENDS)
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_rabbitmq()
    backend = request.param
    with running_cluster(backend, ADMIN_URLS[backend], tmp_path_factory.mktemp(f"scale-{backend}"),
                         name=f"cairn_scale_{os.getpid()}_{backend}", lease_seconds=LEASE_SECONDS) as cluster:
        yield cluster
