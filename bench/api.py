"""Benchmark Cairn's HTTP API against the ceiling of its own server stack.

    .venv/bin/python bench/api.py [--workloads 1000] [--clients 16] [--seconds 8]
                                  [--limit N] [--profile FILE] [--keep] [--auth keystone]

One run, side by side:

* **cairn**: `cairn serve` itself (a subprocess; uvicorn, one worker, the embedded
  SQLite database, default settings) on 127.0.0.1, with `--workloads` workloads in one
  project, made beforehand through the service layer (not HTTP: 1,000 posts would time
  the setup, not the reads).
* **ceiling**: a minimal ASGI app on the same stack (`uvicorn.run`, same host, worker
  count, loop and HTTP implementation) that answers the same three requests with the
  same JSON bytes, captured from Cairn at the start of the run and encoded once: each
  request reads its body, is routed by method and path, and gets the bytes from memory.
  Cairn, too, keeps the encodings of unchanged workloads, so encoding per request is
  no longer work every implementation must do; the ceiling does none.

Measured: GET /v1/P/workloads, GET /v1/P/workloads/detail (each returning every
workload: the default page limit is 1,000; `--limit N` measures pages of N instead)
and POST /v1/P/workloads, each with a fresh pre-registered instance (an instance
belongs to one workload only). The load comes from `--clients` concurrent clients
(asyncio + httpx, keep-alive connections) in a separate process, so the client never
holds the server's GIL. Each endpoint gets a warm-up, then runs until `--requests` are
done or `--seconds` have passed, whichever is first. Printed per endpoint: requests/s,
p50 and p99 latency for both servers, and the ratio cairn/ceiling in requests/s, with
PASS when it reaches the target (0.3).

With `--auth keystone` the run is another one: `cairn serve` twice on the same data, with
local tokens and with Keystone tokens (`auth_strategy = keystone`, a real Keystone started
as the tests start it), the GET endpoints in alternating rounds, and the per-request
overhead of Keystone mode with a warm token cache, in server CPU time per request
(target: at most 10%), with requests/s beside it.

Caveat printed with the results: client and server share the machine (`nproc`); on a
small machine the client's CPU use caps the ceiling too, which flatters the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

TARGET_RATIO = 0.3
PROJECT = "bench"
SERVERS = ("cairn", "ceiling")


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # after /v1/{project}
    status: int


@dataclass
class Result:
    """One endpoint on one server: the measured requests of all its rounds."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, sample: dict[str, Any]) -> None:
        self.latencies += sample["latencies"]
        self.seconds += sample["seconds"]
        self.errors.update(sample["errors"])

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def ms(self, q: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return 1000 * ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def endpoints(limit: int | None) -> list[Endpoint]:
    query = f"?limit={limit}" if limit else ""
    # POST last: it adds workloads, and the lists must measure the seeded number.
    return [Endpoint("GET workloads", "GET", f"/workloads{query}", 200),
            Endpoint("GET workloads/detail", "GET", f"/workloads/detail{query}", 200),
            Endpoint("POST workloads", "POST", "/workloads", 202)]


# -- setup: a data dir with N workloads, made through the service layer -------------------


def populate(data_dir: Path, workloads: int, spare_instances: int, project: str = PROJECT,
             user: str = "bench-user") -> tuple[str, list[str]]:
    """Create the database, `workloads` available workloads in `project` (one instance
    each) and `spare_instances` free instances; return a member token and the spares."""
    # Cairn is imported here, not at the top: the client and ceiling processes run
    # this file too, and must not carry Cairn's imports.
    from cairn.auth.context import Identity, RequestContext
    from cairn.auth.tokens import issue_token
    from cairn.commands.serve import prepare
    from cairn.config import load_settings
    from cairn.platforms.local import register_instance
    from cairn.workloads.lifecycle import WorkloadInput

    settings = load_settings(environ={}, data_dir=str(data_dir))
    runtime = prepare(settings)
    try:
        identity = Identity(project, user, frozenset({"member"}))
        disks = data_dir / "disks"
        disks.mkdir(parents=True, exist_ok=True)
        with runtime.database.unit_of_work() as session:
            token = issue_token(session, identity, ttl=None)
            instance_ids = []
            for n in range(workloads + spare_instances):
                path = disks / f"vm{n}.raw"
                with open(path, "wb") as handle:
                    handle.truncate(1 << 20)  # sparse: the size is what the API reports
                instance_ids.append(register_instance(session, project, f"vm{n}", [str(path)]).id)
        ctx = RequestContext(identity, project, "req-bench-setup")
        # One transaction per 100 creates: few commits, and the create jobs (which run
        # on this runtime's worker pool) start while later batches are written.
        for start in range(0, workloads, 100):
            with runtime.database.unit_of_work() as session:
                for n in range(start, min(start + 100, workloads)):
                    runtime.workloads.create(session, ctx, WorkloadInput(
                        name=f"workload-{n}", description=f"benchmark workload {n}",
                        instance_ids=[instance_ids[n]]))
        wait_for_jobs(runtime.database)
        return token, instance_ids[workloads:]
    finally:
        runtime.close()


# -- servers ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server subprocess on 127.0.0.1; `stop()` sends SIGINT (uvicorn's clean exit)."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._log_handle = open(log, "ab")
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log_handle, stderr=self._log_handle)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the server did not listen within {timeout}s; see {self.log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_handle.close()


def start_cairn(data_dir: Path, port: int, profile: Path | None,
                settings: dict[str, str] | None = None, log_name: str = "cairn-serve.log") -> Server:
    """`cairn serve` exactly as an operator runs it: the environment names only the
    data dir (and `settings`, CAIRN_* variables), so every other setting is the default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env["CAIRN_DATA_DIR"] = str(data_dir)
    env.update(settings or {})
    cairn = Path(sys.executable).with_name("cairn")
    argv = [str(cairn), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if profile is not None:
        py_spy = Path(sys.executable).with_name("py-spy")
        if not py_spy.exists():
            raise SystemExit("--profile needs py-spy: CAIRN_SETUP_BENCH=1 scripts/setup.sh installs it")
        argv = [str(py_spy), "record", "--idle", "--threads", "--rate", "200",
                "--format", "speedscope", "-o", str(profile), "--", *argv]
    return Server(argv, env, port, data_dir / log_name)


def start_ceiling(bodies: Path, port: int, log: Path) -> Server:
    argv = [sys.executable, str(Path(__file__).resolve()), "_ceiling", str(bodies), str(port)]
    return Server(argv, dict(os.environ), port, log)


class CeilingApp:
    """The minimal ASGI app: route by method and path suffix, send the stored bytes.

    Written as bare ASGI (no framework): the ceiling is the server stack alone.
    """

    def __init__(self, bodies: dict[str, Any]) -> None:
        # orjson of what Cairn's orjson produced: the same bytes Cairn sent.
        self.payloads = {key: orjson.dumps(body) for key, body in bodies.items()}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:  # read the request body, as any real handler must
            message = await receive()
            more = message.get("more_body", False)
        if scope["method"] == "POST":
            key, status = "POST workloads", 202
        elif scope["path"].endswith("/detail"):
            key, status = "GET workloads/detail", 200
        else:
            key, status = "GET workloads", 200
        payload = self.payloads[key]
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def run_ceiling(bodies_path: str, port: int) -> None:
    """Same call as `cairn serve` makes, with the minimal app in place of Cairn's."""
    import uvicorn

    bodies = json.loads(Path(bodies_path).read_text())
    uvicorn.run(CeilingApp(bodies), host="127.0.0.1", port=port, log_level="info", access_log=False)


# -- load: a client process -----------------------------------------------------------


async def drive(url: str, token: str, endpoint: Endpoint, clients: int, max_requests: int,
                seconds: float, instances: list[str], warmup: int,
                project: str = PROJECT) -> dict[str, Any]:
    """`clients` concurrent request loops; the latencies of the measured requests."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    spare = iter(instances)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=f"{url}/v1/{project}", headers=headers,
                                 limits=limits, timeout=120) as client:

        async def one() -> float:
            body = None
            if endpoint.method == "POST":
                body = orjson.dumps({"workload": {"name": "posted", "instances": [
                    {"instance-id": next(spare)}]}})
            start = time.perf_counter()
            response = await client.request(endpoint.method, endpoint.path, content=body)
            await response.aread()
            elapsed = time.perf_counter() - start
            if response.status_code != endpoint.status:
                errors[f"{response.status_code}: {response.text[:200]}"] += 1
            return elapsed

        await asyncio.gather(*(one() for _ in range(warmup)))
        counter = itertools.count()
        stop_at = time.perf_counter() + seconds

        async def loop() -> None:
            while next(counter) < max_requests and time.perf_counter() < stop_at:
                latencies.append(await one())

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        wall = time.perf_counter() - started
    return {"latencies": latencies, "seconds": wall, "errors": dict(errors)}


def run_client(spec_path: str) -> None:
    """The client process: load as the spec file says, results as JSON on stdout."""
    spec = json.loads(Path(spec_path).read_text())
    endpoint = Endpoint(**spec["endpoint"])
    out = asyncio.run(drive(spec["url"], spec["token"], endpoint, spec["clients"],
                            spec["max_requests"], spec["seconds"], spec["instances"],
                            spec["warmup"], spec.get("project", PROJECT)))
    sys.stdout.write(json.dumps(out))


def measure(url: str, token: str, endpoint: Endpoint, clients: int, max_requests: int,
            seconds: float, instances: list[str], workdir: Path, warmup: int,
            project: str = PROJECT) -> dict[str, Any]:
    """One round of one endpoint's load, from a separate client process, after
    `warmup` unmeasured requests (connections opened, caches of the server filled)."""
    spec = {"url": url, "token": token, "endpoint": asdict(endpoint), "clients": clients,
            "max_requests": max_requests, "seconds": seconds, "warmup": warmup,
            "instances": instances, "project": project}
    spec_path = workdir / "client-spec.json"
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_client", str(spec_path)],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def busy_jobs(database: Any) -> int:
    """Jobs queued or running (the create jobs POST and the setup leave behind)."""
    import sqlalchemy as sa

    from cairn.db.models import Job

    with database.reader() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(Job)
                                  .where(Job.state.in_(("queued", "running")))) or 0)


def wait_for_jobs(database: Any, timeout: float = 600) -> float:
    """Wait until no job is queued or running; the seconds it took."""
    started = time.monotonic()
    while busy_jobs(database):
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"jobs still running after {timeout}s")
        time.sleep(0.2)
    return time.monotonic() - started


# -- the run --------------------------------------------------------------------------


def capture_bodies(url: str, token: str, eps: list[Endpoint], instance: str) -> dict[str, Any]:
    """What Cairn answers to each endpoint, parsed (encoded again, they are the very bytes
    Cairn sent, which is checked: the ceiling serves those)."""
    bodies: dict[str, Any] = {}
    with httpx.Client(base_url=f"{url}/v1/{PROJECT}", headers={"X-Auth-Token": token},
                      timeout=120) as client:
        for ep in eps:
            kwargs: dict[str, Any] = {}
            if ep.method == "POST":
                kwargs["json"] = {"workload": {"name": "posted", "instances": [{"instance-id": instance}]}}
            response = client.request(ep.method, ep.path, **kwargs)
            if response.status_code != ep.status:
                raise RuntimeError(f"{ep.name}: {response.status_code} {response.text[:500]}")
            bodies[ep.name] = response.json()
            if orjson.dumps(bodies[ep.name]) != response.content:
                raise RuntimeError(f"{ep.name}: the ceiling would not send the bytes Cairn sent")
    return bodies


def report(results: dict[str, dict[str, Result]], eps: list[Endpoint], counts: dict[str, int]) -> bool:
    print(f"\n{'endpoint':<21} {'items':>5} | {'cairn req/s':>11} {'p50 ms':>7} {'p99 ms':>7} {'n':>5} | "
          f"{'ceiling req/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'n':>5} | ratio")
    ok = True
    for ep in eps:
        cairn, ceiling = results["cairn"][ep.name], results["ceiling"][ep.name]
        ratio = cairn.rps / ceiling.rps if ceiling.rps else 0.0
        verdict = "PASS" if ratio >= TARGET_RATIO and not cairn.errors else "FAIL"
        ok = ok and verdict == "PASS"
        print(f"{ep.name:<21} {counts[ep.name]:>5} | {cairn.rps:>11.1f} {cairn.ms(0.5):>7.1f} "
              f"{cairn.ms(0.99):>7.1f} {cairn.requests:>5} | {ceiling.rps:>13.1f} {ceiling.ms(0.5):>7.1f} "
              f"{ceiling.ms(0.99):>7.1f} {ceiling.requests:>5} | {ratio:.2f} {verdict}")
    for server in SERVERS:
        for ep in eps:
            for error, n in results[server][ep.name].errors.items():
                print(f"  {server} {ep.name}: {n} x unexpected {error}")
    print(f"\ntarget: cairn/ceiling >= {TARGET_RATIO} in requests/s on every endpoint: "
          f"{'PASS' if ok else 'FAIL'}")
    return ok


def run(args: argparse.Namespace, workdir: Path) -> bool:
    from cairn.db.database import Database

    data_dir = workdir / "data"
    eps = endpoints(args.limit)
    rounds = max(1, args.rounds)
    per_round = max(1, args.requests // rounds)
    started = time.monotonic()
    # Every Cairn POST, warm-ups included, needs an instance of its own; one more for
    # the capture of the POST body.
    token, spares = populate(data_dir, args.workloads, rounds * per_round + args.clients + 1)
    print(f"setup: {args.workloads} workloads made through the service layer in "
          f"{time.monotonic() - started:.1f}s")
    database = Database(f"sqlite:///{data_dir / 'cairn.sqlite'}")
    results = {server: {ep.name: Result() for ep in eps} for server in SERVERS}
    cairn = start_cairn(data_dir, free_port(), args.profile)
    ceiling = None
    try:
        bodies = capture_bodies(cairn.url, token, eps, spares.pop())
        bodies_path = workdir / "ceiling-bodies.json"
        bodies_path.write_bytes(orjson.dumps(bodies))
        ceiling = start_ceiling(bodies_path, free_port(), workdir / "ceiling.log")
        drained = 0.0
        # Rounds alternate between the servers, so that a change in the machine's load
        # during the run (it is shared) weighs on both alike.
        for ep in eps:
            for n in range(rounds):
                warmup = args.clients if n == 0 else 0
                needed = per_round + warmup
                mine = [spares.pop() for _ in range(needed)] if ep.method == "POST" else []
                results["cairn"][ep.name].add(measure(cairn.url, token, ep, args.clients, per_round,
                                                      args.seconds / rounds, mine, workdir, warmup))
                # The creates' jobs run after their 202s; they must not run during the
                # ceiling's round. Their time is printed, not counted.
                drained += wait_for_jobs(database)
                results["ceiling"][ep.name].add(measure(ceiling.url, token, ep, args.clients, per_round,
                                                        args.seconds / rounds, ["unused"] * needed,
                                                        workdir, warmup))
    finally:
        cairn.stop()
        if ceiling is not None:
            ceiling.stop()
        database.dispose()
    counts = {ep.name: len(bodies[ep.name].get("workloads", [None])) for ep in eps}
    ok = report(results, eps, counts)
    print(f"after the POST rounds, Cairn's create jobs took {drained:.1f}s more to drain (not counted)")
    print(f"client and server share this machine's {os.cpu_count()} CPUs (and whatever else runs "
          f"on it); the client's CPU use caps the ceiling most, which flatters the ratios.")
    if args.profile:
        print(f"profile of the cairn server: {args.profile} (open in https://speedscope.app)")
    print(f"total {time.monotonic() - started:.0f}s")
    return ok


# -- Keystone mode: the cost of auth_strategy = keystone, beside local tokens -------------

#: most per-request overhead of Keystone mode, warm cache, over local mode
KEYSTONE_TARGET_OVERHEAD = 0.10


def run_keystone_overhead(args: argparse.Namespace, workdir: Path) -> bool:
    """`cairn serve` twice on one data dir, local tokens and Keystone tokens (a real
    Keystone, started as the tests start it), the same GETs against both in alternating
    rounds, after an unmeasured warm-up that fills the token cache.

    The overhead judged is the server's CPU time per request (from /proc, user + system,
    of the server process alone), Keystone mode over local mode: on a shared machine
    requests/s mostly measure the neighbours (they swing ±20% between identical runs),
    while the CPU a request costs does not depend on who else runs. Requests/s and the
    p50 are printed beside it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.auth.keystone_server import REGION, start_keystone

    started = time.monotonic()
    keystone = start_keystone(workdir / "keystone", free_port())
    servers: list[Server] = []
    try:
        alice = keystone.users["alice"]
        print(f"setup: Keystone {keystone.url} ready in {time.monotonic() - started:.1f}s")
        data_dir = workdir / "data"
        local_token, _ = populate(data_dir, args.workloads, 0, alice.project_id, alice.user_id)
        keystone_token = alice.token()
        keystone_settings = {
            "CAIRN_AUTH_STRATEGY": "keystone",
            "CAIRN_KEYSTONE_AUTHTOKEN__AUTH_URL": keystone.auth_url,
            "CAIRN_KEYSTONE_AUTHTOKEN__USERNAME": "cairn",
            "CAIRN_KEYSTONE_AUTHTOKEN__PASSWORD": keystone.users["cairn"].password,
            "CAIRN_KEYSTONE_AUTHTOKEN__PROJECT_NAME": "service",
            "CAIRN_KEYSTONE_AUTHTOKEN__REGION_NAME": REGION}
        modes = {"local": (start_cairn(data_dir, free_port(), None, log_name="local.log"), local_token)}
        servers.append(modes["local"][0])
        modes["keystone"] = (start_cairn(data_dir, free_port(), None, keystone_settings, "keystone.log"),
                             keystone_token)
        servers.append(modes["keystone"][0])
        eps = [ep for ep in endpoints(args.limit) if ep.method == "GET"]
        rounds = max(1, args.rounds)
        per_round = max(1, args.requests // rounds)
        results = {mode: {ep.name: Result() for ep in eps} for mode in modes}
        cpu = {mode: {ep.name: 0.0 for ep in eps} for mode in modes}
        for ep in eps:
            for server, token in modes.values():  # warm-up: connections, token cache
                measure(server.url, token, ep, args.clients, 0, args.seconds, [], workdir,
                        args.clients, alice.project_id)
            for n in range(rounds):
                # Which mode goes first alternates too: a slower second half of a round
                # must not always fall on the same one.
                order = list(modes) if n % 2 == 0 else list(reversed(modes))
                for mode in order:
                    server, token = modes[mode]
                    before = cpu_seconds(server.proc.pid)
                    results[mode][ep.name].add(measure(
                        server.url, token, ep, args.clients, per_round, args.seconds / rounds, [],
                        workdir, 0, alice.project_id))
                    cpu[mode][ep.name] += cpu_seconds(server.proc.pid) - before
        in_process = validator_costs(data_dir, local_token, keystone_token, keystone_settings)
    finally:
        for server in servers:
            server.stop()
        keystone.stop()
    print(f"\n{'endpoint':<21} | {'local req/s':>11} {'p50 ms':>7} {'cpu ms':>6} {'n':>5} | "
          f"{'keystone req/s':>14} {'p50 ms':>7} {'cpu ms':>6} {'n':>5} | "
          f"{'req/s':>6} | overhead (cpu per request)")
    ok = True
    for ep in eps:
        local, remote = results["local"][ep.name], results["keystone"][ep.name]
        local_cpu = 1000 * cpu["local"][ep.name] / max(1, local.requests)
        remote_cpu = 1000 * cpu["keystone"][ep.name] / max(1, remote.requests)
        by_rps = local.rps / remote.rps - 1 if remote.rps else float("inf")
        overhead = remote_cpu / local_cpu - 1 if local_cpu else float("inf")
        verdict = "PASS" if overhead <= KEYSTONE_TARGET_OVERHEAD and not (local.errors or remote.errors) else "FAIL"
        ok = ok and verdict == "PASS"
        print(f"{ep.name:<21} | {local.rps:>11.1f} {local.ms(0.5):>7.1f} {local_cpu:>6.2f} {local.requests:>5} | "
              f"{remote.rps:>14.1f} {remote.ms(0.5):>7.1f} {remote_cpu:>6.2f} {remote.requests:>5} | "
              f"{100 * by_rps:+5.1f}% | {100 * overhead:+.1f}% {verdict}")
        for mode in modes:
            for error, count in results[mode][ep.name].errors.items():
                print(f"  {mode} {ep.name}: {count} x unexpected {error}")
    print("\nthe token check alone, in process, warm cache (µs per request): " +
          ", ".join(f"{mode} {micros:.2f}" for mode, micros in in_process.items()))
    print(f"\ntarget: Keystone mode (warm cache) at most {100 * KEYSTONE_TARGET_OVERHEAD:.0f}% slower "
          f"per request than local mode: {'PASS' if ok else 'FAIL'}")
    print(f"total {time.monotonic() - started:.0f}s")
    return ok


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def validator_costs(data_dir: Path, local_token: str, keystone_token: str,
                    keystone_env: dict[str, str], calls: int = 50_000) -> dict[str, float]:
    """Microseconds per `validate()` of each validator once its cache holds the token:
    the part of a request that differs between the modes, without the HTTP noise."""
    from cairn.auth.keystone import KeystoneTokenValidator
    from cairn.auth.tokens import LocalTokenValidator
    from cairn.auth.validator import TokenValidator
    from cairn.config import load_settings
    from cairn.db.database import Database

    settings = load_settings(environ={**keystone_env, "CAIRN_DATA_DIR": str(data_dir)})
    database = Database(settings.database_url)
    validators: dict[str, tuple[TokenValidator, str]] = {"local": (LocalTokenValidator(database.reader), local_token),
                  "keystone": (KeystoneTokenValidator(settings.keystone, settings.admin_role),
                               keystone_token)}
    costs: dict[str, float] = {}
    try:
        for mode, (validator, token) in validators.items():
            validator.validate(token)  # fills the cache
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                for _ in range(calls):
                    validator.validate(token)
                best = min(best, time.perf_counter() - started)
            costs[mode] = 1e6 * best / calls
    finally:
        database.dispose()
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", type=int, default=1000, help="workloads in the project (1000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--requests", type=int, default=4000,
                        help="most measured requests per endpoint and server (4000)")
    parser.add_argument("--seconds", type=float, default=12.0,
                        help="most seconds of measured load per endpoint and server (12)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds per endpoint the budget is split into (3)")
    parser.add_argument("--limit", type=int, default=None, help="measure pages of N (?limit=N)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where to make the working directory (default: the system's temp)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record the cairn server with py-spy into this speedscope file")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and the logs")
    parser.add_argument("--auth", choices=("local", "keystone"), default="local",
                        help="local: cairn (local tokens) against the ceiling app (default); "
                             "keystone: the GETs with Keystone tokens against local tokens "
                             "(a real Keystone, installed by scripts/setup.sh)")
    args = parser.parse_args(argv)

    print(f"Cairn API benchmark  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC")
    print(f"machine: {platform.node()}, nproc {os.cpu_count()}, {platform.machine()}, "
          f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"workloads {args.workloads}, clients {args.clients}, per endpoint and server: up to "
          f"{args.requests} requests or {args.seconds:g}s in {args.rounds} rounds, "
          f"limit {args.limit or 'default (1000)'}")
    workdir = Path(tempfile.mkdtemp(prefix="cairn-bench-api-", dir=args.data_dir))
    try:
        if args.auth == "keystone":
            return 0 if run_keystone_overhead(args, workdir) else 1
        return 0 if run(args, workdir) else 1
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_ceiling":
        run_ceiling(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_client":
        run_client(sys.argv[2])
    else:
        sys.exit(main())
