"""Operators' workload actions: reassign to another project, the import list, import
as a job, and the orphaned workloads (`/workloads/...` fixed paths)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/{project_id}/workloads", tags=["workload operations"])
