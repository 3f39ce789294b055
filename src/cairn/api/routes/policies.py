"""Workload policies (admin): create, list, show, update, delete, assign, assigned."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import Response

from cairn.api import deps, models, views
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.workloads import policies
from cairn.workloads.policies import PolicyInput

router = APIRouter(prefix="/v1/{project_id}/workload_policy", tags=["workload policies"])


def _input(body: models.PolicyBody) -> PolicyInput:
    values = body.field_values.model_dump(exclude_unset=True) if body.field_values else None
    return PolicyInput(name=body.display_name, description=body.display_description,
                       metadata=body.metadata, field_values=values)


@router.post("", response_model=models.PolicyOne, summary="Create a workload policy")
def create_policy(request: Request, project_id: str, body: models.PolicyCreateRequest,
                  ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_POLICY_CREATE)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        record = policies.create_policy(session, _input(body.workload_policy))
    return deps.json_response({"policy": views.policy(record)})


@router.get("", response_model=models.PolicyList, summary="List workload policies")
def list_policies(request: Request, project_id: str,
                  ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_POLICY_GET)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        records = policies.list_policies(session)
    return deps.json_response({"policy_list": [views.policy(r) for r in records]})


@router.get("/assigned/{assigned_project}", response_model=models.AssignedPolicies,
            summary="List the policies assigned to a project")
def assigned(request: Request, project_id: str, assigned_project: str,
             ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_POLICY_GET_ASSIGNED,
                                                target="assigned_project")]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        records = policies.assigned_policies(session, assigned_project)
    return deps.json_response({"policies": [{"policy_id": r.id, "policy_name": r.name} for r in records]})


@router.get("/{policy_id}", response_model=models.PolicyOne, summary="Show a workload policy")
def show_policy(request: Request, project_id: str, policy_id: str,
                ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_POLICY_GET)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        record = policies.get_policy(session, policy_id)
    return deps.json_response({"policy": views.policy(record)})


@router.put("/{policy_id}", response_model=models.PolicyOne, summary="Modify a workload policy")
def update_policy(request: Request, project_id: str, policy_id: str, body: models.PolicyUpdateRequest,
                  ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_POLICY_UPDATE)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        record = policies.update_policy(session, policy_id, _input(body.policy))
    return deps.json_response({"policy": views.policy(record)})


@router.delete("/{policy_id}", status_code=202, response_class=Response, summary="Delete a workload policy")
def delete_policy(request: Request, project_id: str, policy_id: str,
                  ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_POLICY_DELETE)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        policies.delete_policy(session, policy_id)
    return deps.accepted()


@router.post("/{policy_id}/assign", response_model=models.PolicyAssigned,
             summary="Assign a workload policy to projects")
def assign_policy(request: Request, project_id: str, policy_id: str, body: models.PolicyAssignRequest,
                  ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_POLICY_ASSIGN)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        record, failed = policies.assign_policy(session, policy_id, body.policy.add_projects,
                                                body.policy.remove_projects)
    return deps.json_response({"policy": views.policy(record), "failed_ids": failed})
