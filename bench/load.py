"""Load on a scaled-out Cairn: snapshot requests as fast as the api takes them.

    .venv/bin/python bench/load.py [--backend postgresql|mariadb] [--workloads 100]
                                   [--requests 500] [--clients 16] [--worker-threads 4]
                                   [--json FILE] [--keep]

Starts real processes as the integration tests do (`bench/cluster.py`): 2 `cairn api`,
2 `cairn scheduler` and 2 `cairn worker` on a fresh PostgreSQL or MariaDB database and
RabbitMQ vhost (PostgreSQL, MariaDB and RabbitMQ must be running: `make test` or
`scripts/start-services.sh` starts them). It makes `--workloads` workloads, each of one
instance with a small disk (8 MiB, 1 MB of data), through the API, and waits until they
are available. Then `--clients` concurrent clients (asyncio + httpx, keep-alive) send
`--requests` snapshot requests (`POST /v1/P/workloads/W`), request i to workload
i mod N through api replica i mod 2, each client sending its next request as soon as
its previous one is answered, and the bench waits until every accepted snapshot ended.

Checked, and the exit status is 1 with the reason printed when any fails:

- every request was answered 200 (a snapshot, `creating`) or 409 with a message saying
  the workload is not `available` (it is locked by a snapshot still running); nothing
  else;
- none lost: every accepted snapshot is in the database and ended `available`, its job
  `succeeded`;
- none duplicated: the workloads have exactly as many snapshot rows (and snapshot jobs)
  as requests were accepted, each snapshot id answered once.

Printed: the load phase's duration and throughput (answered requests/s), the api
latency (p50, p99, max) of accepted and refused requests, and the time from a request
to its snapshot `available` (p50, p99, max; from the client's send time to the job's
`finished_at`, both this machine's clock). Client and servers share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.cluster import RABBIT_HOST, RABBIT_PORT, Cluster, port_open, running_cluster, wait_until  # noqa: E402

PROJECT = "load"
ADMIN_URLS = {
    "postgresql": os.environ.get("CAIRN_TEST_POSTGRESQL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "mariadb": os.environ.get("CAIRN_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/mysql"),
}


@dataclass
class Answer:
    """One snapshot request as the client saw it."""

    index: int
    workload: str
    sent_at: float  # time.time()
    latency: float  # seconds
    status: int
    snapshot: str | None
    message: str


def _small_disk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"cairn" * 200_000)
        handle.truncate(8 << 20)
    return path


def make_workloads(cluster: Cluster, token: str, count: int) -> list[str]:
    disks = {f"vm{i:03d}": _small_disk(cluster.data_dir / "disks" / f"vm{i:03d}.raw") for i in range(count)}
    instances = cluster.add_instances(PROJECT, disks)
    headers = {"X-Auth-Token": token}
    workloads = []
    with httpx.Client(headers=headers, timeout=60) as client:
        for index, (name, instance) in enumerate(instances.items()):
            base = cluster.api_urls[index % len(cluster.api_urls)]
            response = client.post(f"{base}/v1/{PROJECT}/workloads", json={"workload": {
                "name": name, "instances": [{"instance-id": instance}], "jobschedule": {"enabled": False}}})
            response.raise_for_status()
            workloads.append(response.json()["workload"]["id"])
        in_ids = ", ".join(f"'{w}'" for w in workloads)
        wait_until(lambda: cluster.query(f"SELECT COUNT(*) AS n FROM workloads WHERE id IN ({in_ids}) "
                                         "AND status = 'available'")[0]["n"] == count, timeout=300, interval=0.5)
    return workloads


async def fire(cluster: Cluster, token: str, workloads: list[str], requests: int, clients: int) -> list[Answer]:
    answers: list[Answer] = []
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client_loop(client: httpx.AsyncClient) -> None:
        for index in counter:
            workload = workloads[index % len(workloads)]
            base = cluster.api_urls[index % len(cluster.api_urls)]
            sent_at, started = time.time(), time.perf_counter()
            response = await client.post(f"{base}/v1/{PROJECT}/workloads/{workload}", json={"snapshot": {}})
            latency = time.perf_counter() - started
            snapshot = response.json()["snapshot"]["id"] if response.status_code == 200 else None
            answers.append(Answer(index, workload, sent_at, latency, response.status_code, snapshot,
                                  "" if snapshot else response.text[:300]))

    async with httpx.AsyncClient(headers={"X-Auth-Token": token}, timeout=120, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    return answers


def settle(cluster: Cluster, workloads: list[str], timeout: float) -> None:
    """Wait until no snapshot of these workloads is still running."""
    in_ids = ", ".join(f"'{w}'" for w in workloads)
    wait_until(lambda: cluster.query(f"SELECT COUNT(*) AS n FROM snapshots WHERE workload_id IN ({in_ids}) "
                                     "AND status NOT IN ('available', 'error', 'cancelled')")[0]["n"] == 0,
               timeout=timeout, interval=0.5)


def check(cluster: Cluster, workloads: list[str], answers: list[Answer]) -> tuple[list[str], dict[str, float]]:
    """The problems found (none lost, none duplicated, only 200 or a clear 409), and each
    accepted snapshot's finish time (epoch seconds)."""
    problems: list[str] = []
    for answer in answers:
        if answer.status == 409:
            if "'available'" not in answer.message:
                problems.append(f"request {answer.index}: a 409 without a clear reason: {answer.message}")
        elif answer.status != 200:
            problems.append(f"request {answer.index}: answered {answer.status}: {answer.message}")
    accepted = [a.snapshot for a in answers if a.snapshot]
    if len(set(accepted)) != len(accepted):
        problems.append("a snapshot id was answered twice")
    in_ids = ", ".join(f"'{w}'" for w in workloads)
    rows = cluster.query(f"SELECT id, status FROM snapshots WHERE workload_id IN ({in_ids})")
    jobs = cluster.query(f"SELECT subject_id, state, finished_at FROM jobs WHERE kind = 'snapshot' "
                         f"AND workload_id IN ({in_ids})")
    status = {row["id"]: row["status"] for row in rows}
    finished: dict[str, float] = {}
    job_count: dict[str, int] = {}
    for job in jobs:
        job_count[job["subject_id"]] = job_count.get(job["subject_id"], 0) + 1
        if job["state"] == "succeeded" and job["finished_at"] is not None:
            finished[job["subject_id"]] = job["finished_at"].replace(tzinfo=UTC).timestamp()
    if len(rows) != len(accepted):
        problems.append(f"{len(accepted)} snapshots accepted but {len(rows)} snapshot rows exist")
    if len(jobs) != len(accepted):
        problems.append(f"{len(accepted)} snapshots accepted but {len(jobs)} snapshot jobs exist")
    for snapshot in accepted:
        if status.get(snapshot) != "available":
            problems.append(f"snapshot {snapshot} is {status.get(snapshot, 'missing')}, not available")
        elif job_count.get(snapshot) != 1 or snapshot not in finished:
            problems.append(f"snapshot {snapshot}: {job_count.get(snapshot, 0)} jobs, none succeeded")
    return problems, finished


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def report(answers: list[Answer], finished: dict[str, float], load_seconds: float,
           drain_seconds: float) -> dict[str, Any]:
    accepted = [a for a in answers if a.snapshot]
    refused = [a for a in answers if a.status == 409]
    to_available = [finished[a.snapshot] - a.sent_at for a in accepted if a.snapshot in finished]
    figures: dict[str, Any] = {
        "requests": len(answers), "accepted": len(accepted), "refused_409": len(refused),
        "load_seconds": load_seconds, "requests_per_second": len(answers) / load_seconds,
        "snapshots_per_second": len(accepted) / (load_seconds + drain_seconds),
        "latency_all": _spread([a.latency for a in answers]),
        "latency_accepted": _spread([a.latency for a in accepted]),
        "latency_refused": _spread([a.latency for a in refused]),
        "request_to_available": _spread(to_available),
    }
    print(f"\n{figures['requests']} snapshot requests in {load_seconds:.1f} s: "
          f"{figures['requests_per_second']:.0f} requests/s answered; {len(accepted)} accepted (200), "
          f"{len(refused)} refused (409, workload locked)")
    print(f"accepted snapshots all available {drain_seconds:.1f} s after the last answer: "
          f"{figures['snapshots_per_second']:.1f} snapshots/s end to end")
    print(f"{'':24} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, key, scale in (("api latency, all", "latency_all", 1000), ("api latency, 200", "latency_accepted", 1000),
                              ("api latency, 409", "latency_refused", 1000),
                              ("request → available", "request_to_available", 1000)):
        spread = figures[key]
        print(f"{label:24} {spread['p50'] * scale:8.0f} {spread['p99'] * scale:8.0f} {spread['max'] * scale:8.0f}")
    return figures


def _spread(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 0.50), "p99": percentile(values, 0.99),
            "max": max(values) if values else float("nan"),
            "mean": statistics.fmean(values) if values else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=sorted(ADMIN_URLS), default="postgresql")
    parser.add_argument("--workloads", type=int, default=100)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--worker-threads", type=int, default=4, help="jobs each worker runs at once")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    args = parser.parse_args()
    if not port_open(RABBIT_HOST, RABBIT_PORT):
        print("RabbitMQ does not answer on 127.0.0.1:5672 (scripts/start-services.sh starts it)", file=sys.stderr)
        return 2
    data_dir = Path(tempfile.mkdtemp(prefix="cairn-load-"))
    print(f"data and logs: {data_dir}")
    with running_cluster(args.backend, ADMIN_URLS[args.backend], data_dir, name=f"cairn_load_{os.getpid()}",
                         lease_seconds=60, worker_threads=args.worker_threads) as cluster:
        token = cluster.cairn("token", "create", "--project", PROJECT, "--user", "bench")
        print(f"{len(cluster.api_urls)} api, {len(cluster.schedulers())} scheduler, {len(cluster.workers())} "
              f"worker processes ({args.worker_threads} threads each) on {args.backend}; "
              f"making {args.workloads} workloads")
        workloads = make_workloads(cluster, token, args.workloads)
        print(f"firing {args.requests} snapshot requests from {args.clients} clients")
        started = time.perf_counter()
        answers = asyncio.run(fire(cluster, token, workloads, args.requests, args.clients))
        load_seconds = time.perf_counter() - started
        settle(cluster, workloads, timeout=600)
        drain_seconds = time.perf_counter() - started - load_seconds
        problems, finished = check(cluster, workloads, answers)
        figures = report(answers, finished, load_seconds, drain_seconds)
    if args.json:
        args.json.write_text(json.dumps({
            "when": datetime.now(UTC).isoformat(timespec="seconds"), "backend": args.backend,
            "arguments": {k: str(v) for k, v in vars(args).items()}, "nproc": os.cpu_count(),
            "python": platform.python_version(), "figures": figures,
            "problems": problems, "answers": [asdict(a) for a in answers]}, indent=1))
    if not args.keep:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
    if problems:
        print(f"\nFAILED: {len(problems)} problems", file=sys.stderr)
        for problem in problems[:50]:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("\nchecked: every request ended in exactly one available snapshot or a 409; none lost, none duplicated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
