"""The running service answers every operation as its own OpenAPI document says.

Schemathesis reads `GET /openapi.json` from the live server and, for every operation,
generates requests (valid ones and deliberately invalid ones), sends them over the real
socket with an admin token and with a member token, and checks each response: never a
5xx, a documented status code, a documented content type and headers, a body that
matches the documented schema, authentication enforced, invalid input refused with 4xx.

Generated ids would almost never hit a row, so path and query ids, and the instances in
request bodies, are drawn half of the time from rows seeded beforehand (two workloads,
free instances, a policy): GET/PUT/DELETE of existing workloads take their real paths.

Runs on SQLite only: the fuzzing exercises the HTTP layer and the views, which do not
depend on the backend (the query-count and workload tests cover the backends), and one
backend keeps the test near 30 s.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests.conftest import Service, wait_until

SERIAL = "f82ce76f-17fe-438b-aa37-7a023058e50d"
PARALLEL = "2ddd528d-c9b4-4d7e-8722-cc395140255a"
PROJECT = "p1"

# The checks that make "answers as documented" concrete. Left out on purpose:
# `positive_data_acceptance` (schema-valid bodies are refused with 400/409 by design when
# they name instances that do not exist or are taken) and `unsupported_method`
# (405 is not a documented status of any operation, by FastAPI's convention).
CHECK_NAMES = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_headers_conformance", "response_schema_conformance",
               "negative_data_rejection", "ignored_auth")

# Examples per operation, per token, per generation mode. 20 operations x 2 tokens x
# 2 modes x 15 = 1,200 requests: about 30 s on SQLite. CAIRN_FUZZ_EXAMPLES raises it
# for a longer local hunt.
EXAMPLES = int(os.environ.get("CAIRN_FUZZ_EXAMPLES", "15"))


@dataclass(frozen=True)
class Seeded:
    """Ids of rows that exist, to substitute for generated ones."""

    workloads: tuple[str, ...]
    instances: tuple[str, ...]
    policies: tuple[str, ...]

    def path_values(self) -> dict[str, tuple[str, ...]]:
        return {"project_id": (PROJECT,), "workload_id": self.workloads,
                "policy_id": self.policies, "type_id": (SERIAL, PARALLEL),
                "assigned_project": (PROJECT, "p2")}


def seed(api: Service, admin: str, member: str) -> Seeded:
    """Two available workloads, four free instances and a policy assigned to p2.

    The policy goes to p2, not p1: a project with a policy assigned refuses every
    create without `policy_id`, which would hide the create path from the fuzzer.
    """
    with api.client(member) as client:
        workloads = []
        for n in range(2):
            response = client.post(f"/v1/{PROJECT}/workloads", json={"workload": {
                "name": f"seed-{n}", "instances": [{"instance-id": api.add_instance(PROJECT)}]}})
            assert response.status_code == 202, response.text
            workloads.append(response.json()["workload"]["id"])
        for workload_id in workloads:
            wait_until(lambda: client.get(f"/v1/{PROJECT}/workloads/{workload_id}")
                       .json()["workload"]["status"] == "available")
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
    return Seeded(tuple(workloads), instances, (policy_id,))


@st.composite
def aimed_case(draw: st.DrawFn, operation: Any, mode: GenerationMode, token: str,
               seeded: Seeded) -> Any:
    """A generated case whose ids are, half of the time, ids of rows that exist.

    The token is fixed in the strategy, not added at send time: a negative case must
    be invalid for a reason the checks can see, not "missing token" while one is sent.
    """
    case = draw(operation.as_strategy(generation_mode=mode, headers={"X-Auth-Token": token}))
    for name, values in seeded.path_values().items():
        if name in (case.path_parameters or {}) and values and draw(st.booleans()):
            case.path_parameters[name] = draw(st.sampled_from(values))
    if case.query and "marker" in case.query and draw(st.booleans()):
        case.query["marker"] = draw(st.sampled_from(seeded.workloads))
    body = case.body
    if (isinstance(body, dict) and isinstance(body.get("workload"), dict)
            and isinstance(body["workload"].get("instances"), list) and draw(st.booleans())):
        refs = body["workload"]["instances"]
        for ref in refs:
            if isinstance(ref, dict) and "instance-id" in ref:
                ref["instance-id"] = draw(st.sampled_from(seeded.instances))
    # Reading `meta` re-validates the edited parts, so a case stays labelled negative
    # only if what is sent is still invalid (the negative-data check relies on it).
    _ = case.meta
    return case


def fuzz_operation(operation: Any, base_url: str, token: str, seeded: Seeded) -> list[str]:
    """Failures (schemathesis' report, with a curl line) for one operation and token."""
    failures: list[str] = []
    checks = CHECKS.get_by_names(list(CHECK_NAMES))
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                             phases=[hypothesis.Phase.generate],
                             suppress_health_check=list(hypothesis.HealthCheck))
        @hypothesis.given(case=aimed_case(operation, mode, token, seeded))
        def run(case: Any) -> None:
            case.call_and_validate(base_url=base_url, checks=checks, timeout=30)

        try:
            run()
        except Unsatisfiable:
            continue  # no negative variant exists for an operation without inputs
        except Exception as exc:  # noqa: BLE001 - every failure is collected, then reported
            failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    return failures


@pytest.fixture
def sqlite_api(api: Service) -> Iterator[Service]:
    if api.backend != "sqlite":
        pytest.skip("the conformance fuzz runs on SQLite only (see the module docstring)")
    yield api


def test_every_operation_answers_as_its_openapi_document_says(sqlite_api: Service) -> None:
    api = sqlite_api
    load_all_checks()
    admin = api.token("admin", "admin", ("admin",))
    member = api.token(PROJECT, "u1")
    seeded = seed(api, admin, member)
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]
    failures: list[str] = []
    for operation in operations:
        for token in (admin, member):
            failures += fuzz_operation(operation, api.url, token, seeded)
    assert not failures, "\n\n".join(failures)
