"""Workload lists cost a fixed number of SQL statements, whatever their length (no N+1).

Every statement the engines execute is attributed to the request it ran for, by the
request id the middleware puts in a context variable (Starlette copies the context
into the worker thread a sync route runs in). The reaper and the job workers run
outside any request, so their statements never land in a request's count, and the
count is read from the response's own `X-Compute-Request-Id`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from cairn.api.middleware import request_id_var
from cairn.auth.context import Identity, RequestContext
from cairn.platforms.local import register_instance
from cairn.workloads.lifecycle import WorkloadInput
from tests.conftest import Service, wait_for_idle

PROJECT = "p1"


@contextlib.contextmanager
def statements_per_request(service: Service) -> Iterator[dict[str, list[str]]]:
    """request id → the SQL statements executed while serving it."""
    seen: dict[str, list[str]] = defaultdict(list)

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen[request_id_var.get()].append(statement)

    database = service.runtime.database
    # On PostgreSQL and MariaDB both names are the same engine: listen once.
    engines = list({id(e): e for e in (database.engine, database.read_engine)}.values())
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", record)


def add_workloads(service: Service, count: int, instances_each: int = 2) -> None:
    """`count` workloads in PROJECT, made through the service layer in one transaction
    (and their instances in another: one transaction each would cost seconds).

    Two instances each, so that a per-workload instance query would show as well as a
    per-workload anything-else.
    """
    ctx = RequestContext(Identity(PROJECT, "u1", frozenset({"member"})), PROJECT, "req-setup")
    disks = service.data_dir / "disks"
    disks.mkdir(parents=True, exist_ok=True)
    with service.runtime.database.unit_of_work() as session:
        instance_ids = []
        for _ in range(count * instances_each):
            path = disks / f"{uuid.uuid4().hex}.raw"
            path.write_bytes(b"\0" * 512)
            instance_ids.append(register_instance(session, PROJECT, "vm", [str(path)]).id)
    with service.runtime.database.unit_of_work() as session:
        for n in range(count):
            mine = instance_ids[n * instances_each:(n + 1) * instances_each]
            service.runtime.workloads.create(session, ctx, WorkloadInput(name=f"w{n}", instance_ids=mine))
    wait_for_idle(service)  # the create jobs write too; let them finish first


def statements_for(service: Service, token: str, path: str, expected_items: int) -> list[str]:
    with statements_per_request(service) as seen, service.client(token) as client:
        response = client.get(f"/v1/{PROJECT}{path}")
    assert response.status_code == 200, response.text
    assert len(response.json()["workloads"]) == expected_items
    statements = seen[response.headers["X-Compute-Request-Id"]]
    assert statements, "no statement was attributed to the request: the counter is blind"
    # The token's lookup is left out: whether it runs depends on the validator's cache
    # having expired (CACHE_SECONDS, a slow machine's 200-row warm-up outlasted it), not on
    # the list's length.
    return [sql for sql in statements if not sql.lstrip().startswith("SELECT tokens.")]


def assert_same_cost_for_1_and_200(api: Service, path: str) -> None:
    token = api.token(PROJECT, "u1")
    add_workloads(api, 1)
    statements_for(api, token, path, 1)  # warm-up: first-use costs are not per-row costs
    one = statements_for(api, token, path, 1)
    add_workloads(api, 199)
    statements_for(api, token, path, 200)  # the same warm-up
    many = statements_for(api, token, path, 200)
    repeated = "\n".join(f"{n} x {sql}" for sql, n in Counter(many).most_common(3))
    assert len(many) == len(one), (
        f"GET {path}: {len(one)} statements for 1 workload, {len(many)} for 200; "
        f"the most repeated:\n{repeated}")


def test_workload_list_costs_the_same_statements_for_1_and_200(api: Service) -> None:
    assert_same_cost_for_1_and_200(api, "/workloads")


def test_workload_detail_list_costs_the_same_statements_for_1_and_200(api: Service) -> None:
    assert_same_cost_for_1_and_200(api, "/workloads/detail")
