"""The running service answers every operation as its own OpenAPI document says.

Schemathesis reads `GET /openapi.json` from the live server and, for every operation,
generates requests (valid ones and deliberately invalid ones), sends them over the real
socket and checks each response: never a 5xx, a documented status code, content type
and headers, a body that matches the documented schema, authentication enforced,
invalid input refused with a 4xx. An admin token sends valid and invalid requests; a
member token of the seeded project sends valid ones (its 400s and 403s must be
documented too).

Generated ids would almost never name a row, so in the valid cases the path ids, the
id-like query parameters and the instances of a workload body are, half of the time,
those of rows seeded beforehand (two workloads, free instances, a snapshot, a restore,
a policy). Generated success is still luck, so a second test sends one known-good
request per resource kind and requires a 2xx whose body matches its schema: the
documented success shapes are always checked.

Runs on SQLite only: what is fuzzed here (routing, validation, faults, views) does not
depend on the backend, the other API tests run on every backend, and one backend keeps
this file near a minute.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from hypothesis.errors import FailedHealthCheck, Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.result import Err, Ok

from tests.api.test_workloads import PARALLEL, SERIAL, create_workload, wait_status
from tests.conftest import Service, wait_for_idle, wait_until

PROJECT = "p1"
PLACEHOLDER = re.compile(r"\{(\w+)\}$")

# The checks that make "answers as documented" concrete. Left out on purpose:
# `positive_data_acceptance` (schema-valid bodies are refused with 400/409 by design when
# they name instances that do not exist or are taken, or break a jobschedule rule the
# schema cannot express) and `unsupported_method` (no operation documents 405).
CHECK_NAMES = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_headers_conformance", "response_schema_conformance",
               "negative_data_rejection", "ignored_auth")

# Examples per operation and generation mode. About 40 operations x (admin: 6 valid +
# 6 invalid, member: 3 valid) is ~600 requests plus the auth probes: about a minute.
# CAIRN_FUZZ_EXAMPLES=100 makes a long local hunt.
EXAMPLES = int(os.environ.get("CAIRN_FUZZ_EXAMPLES", "6"))


@dataclass(frozen=True)
class Seeded:
    """Ids of rows that exist, to put in place of generated ones."""

    workloads: tuple[str, ...]
    instances: tuple[str, ...]
    snapshots: tuple[str, ...]
    restores: tuple[str, ...]
    policies: tuple[str, ...]

    def known_values(self) -> dict[str, tuple[str, ...]]:
        """Parameter name (path or query) → values that name existing things."""
        return {"project_id": (PROJECT,), "workload_id": self.workloads,
                "snapshot_id": self.snapshots, "restore_id": self.restores,
                "policy_id": self.policies, "type_id": (SERIAL, PARALLEL),
                "assigned_project": (PROJECT, "p2"),
                "marker": self.workloads + self.snapshots + self.restores}


@dataclass(frozen=True)
class Caller:
    """Who sends the generated requests, which kinds, and how many of each."""

    name: str
    token: str
    modes: tuple[GenerationMode, ...]
    examples: int


def seed(api: Service, admin: str, member: str) -> Seeded:
    """Two available workloads (one with a snapshot and a restore), four free
    instances, and a policy assigned to p2 — not p1: a project with a policy assigned
    refuses every create without `policy_id`, which would hide the create path."""
    workloads = [create_workload(api, member, [api.add_instance(PROJECT)])["id"] for _ in range(2)]
    for workload_id in workloads:
        wait_status(api, member, workload_id, "available")
    with api.client(member) as client:
        response = client.post(f"/v1/{PROJECT}/workloads/{workloads[0]}",
                               json={"snapshot": {"name": "seed"}})
        assert response.status_code == 200, response.text
        snapshot_id = response.json()["snapshot"]["id"]
        wait_until(lambda: client.get(f"/v1/{PROJECT}/snapshots/{snapshot_id}")
                   .json()["snapshot"]["status"] == "available")
        # the workload unlocks after the snapshot is published (retention runs between)
        wait_status(api, member, workloads[0], "available")
        response = client.post(f"/v1/{PROJECT}/workloads/{workloads[0]}/snapshots/{snapshot_id}"
                               "/restores", json={"restore": {"name": "seed"}})
        assert response.status_code == 202, response.text
        restore_id = response.json()["restore"]["id"]
        wait_until(lambda: client.get(f"/v1/{PROJECT}/restores/{restore_id}")
                   .json()["restore"]["status"] in ("available", "error"))
        wait_status(api, member, workloads[0], "available")
    with api.client(admin) as client:
        response = client.post(f"/v1/{PROJECT}/workload_policy", json={"workload_policy": {
            "display_name": "gold", "field_values": {
                "interval": "12hr", "retention_policy_type": "Number of Snapshots to Keep",
                "retention_policy_value": 7, "fullbackup_interval": 2}}})
        assert response.status_code == 200, response.text
        policy_id = response.json()["policy"]["id"]
        response = client.post(f"/v1/{PROJECT}/workload_policy/{policy_id}/assign",
                               json={"policy": {"add_projects": ["p2"]}})
        assert response.status_code == 200, response.text
    instances = tuple(api.add_instance(PROJECT) for _ in range(4))
    return Seeded(tuple(workloads), instances, (snapshot_id,), (restore_id,), (policy_id,))


@dataclass(frozen=True)
class World:
    """The seeded service, its callers and its operations, in a safe order."""

    api: Service
    seeded: Seeded
    admin: str
    member: str
    operations: list[Any]

    def operation(self, method: str, path: str) -> Any:
        return next(op for op in self.operations
                    if op.method.upper() == method and op.path == f"/v1/{{project_id}}{path}")


def _operation(result: Ok[Any] | Err[Any]) -> Any:
    """An operation of the document; a part of it schemathesis cannot read fails the test."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok()


@pytest.fixture
def world(sqlite_service: Service) -> Iterator[World]:
    api = sqlite_service
    api.reset_tables()
    load_all_checks()
    admin = api.token("admin", "admin", ("admin",))
    member = api.token(PROJECT, "u1")
    seeded = seed(api, admin, member)
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    # Deletes last, so that the seeded rows stay for every other operation.
    operations = sorted((_operation(result) for result in schema.get_all_operations()),
                        key=lambda op: op.method.upper() == "DELETE")
    yield World(api, seeded, admin, member, operations)
    wait_for_idle(api)


@st.composite
def aimed_case(draw: st.DrawFn, cases: st.SearchStrategy[Any], seeded: Seeded) -> Any:
    """A generated valid case aimed at the seeded rows.

    Each path id is, half of the time, the id of a row that exists. Each query
    parameter is kept as generated, set to a seeded id (the ids, `project_id`,
    `marker`) or dropped, one time in three each: a generated `nfs_share` or
    `project_id` filter would otherwise empty nearly every list, and an empty list
    checks no item's schema.

    Only valid cases are aimed: an invalid one is refused before any row is looked
    up, and editing it would desynchronise schemathesis' record of what it made
    invalid (a dropped invalid parameter then reads as "invalid data accepted").
    """
    case = draw(cases)
    known = seeded.known_values()
    for name in list(case.path_parameters or {}):
        if name in known and draw(st.booleans()):
            case.path_parameters[name] = draw(st.sampled_from(known[name]))
    for name in list(case.query or {}):
        choice = draw(st.integers(0, 2))
        if choice == 1 and name in known:
            case.query[name] = draw(st.sampled_from(known[name]))
        elif choice == 2:
            del case.query[name]
    body = case.body
    if (isinstance(body, dict) and isinstance(body.get("workload"), dict)
            and isinstance(body["workload"].get("instances"), list) and draw(st.booleans())):
        for ref in body["workload"]["instances"]:
            if isinstance(ref, dict) and "instance-id" in ref:
                ref["instance-id"] = draw(st.sampled_from(seeded.instances))
    # Reading `meta` re-validates the edited parts: a seeded id may break a
    # constraint the generated value met, and the case must then read as invalid.
    _ = case.meta
    return case


def failure_report(exc: BaseException) -> str:
    """Schemathesis' own report (check, response, curl line) from what Hypothesis raised.

    A failure that does not repeat on Hypothesis' replay (the server's state moved on:
    the workload was deleted meanwhile) comes wrapped in FlakyFailure; it is still a
    failure, and its first occurrence is the report.
    """
    if isinstance(exc, BaseExceptionGroup) and not isinstance(exc, schemathesis.errors.FailureGroup):
        return "\n".join(failure_report(inner) for inner in exc.exceptions)
    return str(exc) or repr(exc)


def fuzz(operation: Any, base_url: str, caller: Caller, seeded: Seeded) -> list[str]:
    """Failures for one operation and caller: schemathesis' reports, with curl lines."""
    failures: list[str] = []
    checks = CHECKS.get_by_names(list(CHECK_NAMES))
    for mode in caller.modes:
        # The token is fixed in the strategy, not added at send time: a negative case
        # must be invalid for a reason the checks can see, not "missing token" while
        # one is sent.
        cases = operation.as_strategy(generation_mode=mode, headers={"X-Auth-Token": caller.token})

        # No shrinking: every replay hits a server whose state the first run changed.
        @hypothesis.settings(max_examples=caller.examples, deadline=None, database=None,
                             phases=[hypothesis.Phase.generate],
                             suppress_health_check=list(hypothesis.HealthCheck))
        @hypothesis.given(case=aimed_case(cases, seeded) if mode is GenerationMode.POSITIVE else cases)
        def run(case: Any) -> None:
            case.call_and_validate(base_url=base_url, checks=checks, timeout=30)

        try:
            run()
        except (Unsatisfiable, FailedHealthCheck):
            if mode is GenerationMode.NEGATIVE:
                continue  # nothing to make invalid: no body and no constrained parameter
            raise
        # Collected, so that one run reports every operation. FailureGroup is a
        # BaseExceptionGroup, not an Exception: it is named.
        except (Exception, schemathesis.errors.FailureGroup) as exc:  # noqa: BLE001
            failures.append(f"{operation.label} as {caller.name}, {mode.value} data:\n"
                            f"{failure_report(exc)}")
    return failures


def test_every_operation_answers_as_its_openapi_document_says(world: World) -> None:
    callers = (Caller("admin", world.admin, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE), EXAMPLES),
               Caller("member", world.member, (GenerationMode.POSITIVE,), max(1, EXAMPLES // 2)))
    assert len(world.operations) >= 21, [op.label for op in world.operations]
    failures: list[str] = []
    for operation in world.operations:
        for caller in callers:
            failures += fuzz(operation, world.api.url, caller, world.seeded)
    assert not failures, "\n\n".join(failures)


def test_documented_success_responses_match_their_schemas(world: World) -> None:
    s = world.seeded
    # (method, path, the id in the path if any, body): one success per resource kind.
    requests: list[tuple[str, str, str | None, Any]] = [
        ("GET", "/workloads", None, None), ("GET", "/workloads/detail", None, None),
        ("GET", "/workloads/{workload_id}", s.workloads[0], None),
        ("PUT", "/workloads/{workload_id}", s.workloads[1], {"workload": {"name": "renamed"}}),
        ("GET", "/snapshots", None, None), ("GET", "/snapshots/detail", None, None),
        ("GET", "/snapshots/{snapshot_id}", s.snapshots[0], None),
        ("GET", "/restores", None, None), ("GET", "/restores/detail", None, None),
        ("GET", "/restores/{restore_id}", s.restores[0], None),
        ("GET", "/workload_types", None, None), ("GET", "/workload_types/{type_id}", SERIAL, None),
        ("GET", "/workload_policy", None, None),
        ("GET", "/workload_policy/{policy_id}", s.policies[0], None),
        ("GET", "/workload_policy/assigned/{assigned_project}", "p2", None),
        ("GET", "/global_job_scheduler", None, None),
        ("GET", "/backup_targets", None, None), ("GET", "/backup_targets/detail", None, None),
        ("GET", "/backup_targets/{target_id}", "default", None),
        ("GET", "/backup_target_types", None, None), ("GET", "/backup_target_types/detail", None, None),
    ]
    checks = CHECKS.get_by_names(list(CHECK_NAMES))
    for method, path, resource_id, body in requests:
        params = {"project_id": PROJECT}
        if resource_id is not None:
            params[PLACEHOLDER.search(path).group(1)] = resource_id  # type: ignore[union-attr]
        case = world.operation(method, path).Case(
            path_parameters=params, headers={"X-Auth-Token": world.admin},
            **({"body": body} if body is not None else {}))
        response = case.call_and_validate(base_url=world.api.url, checks=checks, timeout=30)
        assert 200 <= response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
