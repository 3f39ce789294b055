"""Pydantic models of request bodies (validated, unknown keys refused) and of responses
(published in the OpenAPI document; the bodies themselves are built by `views`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Scalar = str | int | bool


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Name = Field(min_length=1, max_length=255)
Text = Field(default=None, max_length=65535)
Metadata = dict[str, str]
MetadataField = Field(default=None, max_length=64)


# -- requests -------------------------------------------------------------------------


class InstanceRef(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    instance_id: str = Field(alias="instance-id", min_length=1, max_length=64)


TierIn = dict[str, Any]


class JobScheduleIn(Strict):
    enabled: Scalar | None = None
    start_date: str | None = Field(default=None, max_length=64)
    start_time: str | None = Field(default=None, max_length=64)
    end_date: str | None = Field(default=None, max_length=64)
    interval: Scalar | None = None
    timezone: str | None = Field(default=None, max_length=64)
    retention_policy_type: str | None = Field(default=None, max_length=64)
    retention_policy_value: Scalar | None = None
    fullbackup_interval: Scalar | None = None
    # The tiered (6.x) form; each tier's fields are validated by the domain
    # (cairn.workloads.tiers), which names the field it refuses.
    hourly: TierIn | None = None
    daily: TierIn | None = None
    weekly: TierIn | None = None
    monthly: TierIn | None = None
    yearly: TierIn | None = None
    manual: TierIn | None = None


class WorkloadCreateBody(Strict):
    name: str = Name
    description: str | None = Text
    workload_type_id: str | None = Field(default=None, max_length=36)
    source_platform: Literal["openstack"] | None = None
    availability_zone: str | None = Field(default=None, max_length=255)
    instances: list[InstanceRef] = Field(min_length=1, max_length=256)
    jobschedule: JobScheduleIn | None = None
    metadata: Metadata | None = MetadataField


class WorkloadCreateRequest(Strict):
    workload: WorkloadCreateBody


class WorkloadUpdateBody(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Text
    instances: list[InstanceRef] | None = Field(default=None, min_length=1, max_length=256)
    jobschedule: JobScheduleIn | None = None
    metadata: Metadata | None = MetadataField


class WorkloadUpdateRequest(Strict):
    workload: WorkloadUpdateBody


class PolicyFieldValues(Strict):
    interval: Scalar | None = None
    retention_policy_type: str | None = Field(default=None, max_length=64)
    retention_policy_value: Scalar | None = None
    fullbackup_interval: Scalar | None = None
    hourly: TierIn | None = None
    daily: TierIn | None = None
    weekly: TierIn | None = None
    monthly: TierIn | None = None
    yearly: TierIn | None = None
    manual: TierIn | None = None


class PolicyBody(Strict):
    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    display_description: str | None = Text
    metadata: Metadata | None = MetadataField
    field_values: PolicyFieldValues | None = None


class PolicyCreateRequest(Strict):
    workload_policy: PolicyBody


class PolicyUpdateRequest(Strict):
    policy: PolicyBody


class PolicyAssignBody(Strict):
    add_projects: list[str] = Field(default_factory=list, max_length=1000)
    remove_projects: list[str] = Field(default_factory=list, max_length=1000)


class PolicyAssignRequest(Strict):
    policy: PolicyAssignBody


class SnapshotBody(Strict):
    name: str | None = Field(default=None, max_length=255)
    description: str | None = Text
    snapshot_type: Literal["full", "incremental"] | None = None


class SnapshotCreateRequest(Strict):
    snapshot: SnapshotBody


#: the integers a JSON column can hold (it is written with orjson: 64 bits, signed or not)
JSON_INTEGERS = range(-(2**63), 2**64)


class Lenient(BaseModel):
    """Restore options: the original's clients send platform keys Cairn does not use
    (flavors, networks, ...); they are kept with the restore and otherwise ignored."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _storable(self) -> Lenient:
        for key, value in (self.__pydantic_extra__ or {}).items():
            where = _integer_out_of_range(value, key)
            if where is not None:
                raise ValueError(f"{where}: integers must fit in 64 bits")
        return self


def _integer_out_of_range(value: Any, path: str) -> str | None:
    """The path of the first integer in `value` no JSON column can store, if any."""
    if isinstance(value, int) and not isinstance(value, bool):
        return None if value in JSON_INTEGERS else path
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _integer_out_of_range(item, f"{path}.{key}")
        if found is not None:
            return found
    return None


class RestoreDiskIn(Lenient):
    id: str = Field(min_length=1, max_length=255)


class RestoreInstanceIn(Lenient):
    id: str = Field(min_length=1, max_length=64)
    include: bool = True
    name: str | None = Field(default=None, min_length=1, max_length=255)
    vdisks: list[RestoreDiskIn] | None = Field(default=None, max_length=64)


class OpenstackRestoreOptions(Lenient):
    instances: list[RestoreInstanceIn] = Field(default_factory=list, max_length=256)


class RestoreOptions(Lenient):
    type: Literal["openstack"] = "openstack"
    restore_type: Literal["oneclick", "selective", "inplace"] | None = None
    oneclickrestore: bool | None = None
    #: in-place restore of a running instance: stop it, restore, start it again
    power_off: bool | None = None
    openstack: OpenstackRestoreOptions | None = None


class RestoreBody(Strict):
    name: str | None = Field(default=None, max_length=255)
    description: str | None = Text
    options: RestoreOptions = Field(default_factory=RestoreOptions)


class RestoreCreateRequest(Strict):
    restore: RestoreBody


class DashboardLoginBody(Strict):
    """`POST /dashboard/login`: a Keystone user and project, or a token to check."""

    method: Literal["password", "token"]
    username: str | None = Field(default=None, min_length=1, max_length=255)
    password: str | None = Field(default=None, min_length=1, max_length=4096)
    user_domain_name: str = Field(default="Default", min_length=1, max_length=255)
    project_name: str | None = Field(default=None, min_length=1, max_length=255)
    project_domain_name: str = Field(default="Default", min_length=1, max_length=255)
    token: str | None = Field(default=None, min_length=1, max_length=8192)


class DashboardLoginRequest(Strict):
    login: DashboardLoginBody


# -- responses (documentation of the bodies `views` builds) ----------------------------


class Link(BaseModel):
    rel: str
    href: str


class WorkloadSummary(BaseModel):
    project_id: str
    user_id: str
    id: str
    name: str
    snapshots_info: str
    description: str
    workload_type_id: str
    status: str
    created_at: str
    updated_at: str
    scheduler_trust: None
    links: list[Link]


class UsageCount(BaseModel):
    snap_count: int
    usage: int


class StorageUsageOut(BaseModel):
    usage: int
    full: UsageCount
    incremental: UsageCount


class MemberInstanceOut(BaseModel):
    id: str
    name: str
    metadata: dict[str, str]


class TierOut(BaseModel):
    """One tier of a tiered schedule, in the request's forms (docs/schedules.md)."""

    interval: int | None = None
    backup_time: list[str] | None = None
    backup_day: list[str] | None = None
    month_backup_day: list[int] | None = None
    backup_month: list[str] | None = None
    retention: int
    snapshot_type: str | None = None
    retention_days_to_keep: int | None = None


class JobScheduleOut(BaseModel):
    """The 4.x form has interval and the retention fields; the tiered form its tiers."""

    enabled: bool
    start_date: str
    start_time: str
    end_date: str
    timezone: str
    interval: str | None = None
    retention_policy_type: str | None = None
    retention_policy_value: str | None = None
    fullbackup_interval: str | None = None
    hourly: TierOut | None = None
    daily: TierOut | None = None
    weekly: TierOut | None = None
    monthly: TierOut | None = None
    yearly: TierOut | None = None
    manual: TierOut | None = None
    appliance_timezone: str
    global_jobscheduler: bool
    nextrun: int | None = None


class WorkloadDetail(BaseModel):
    created_at: str
    updated_at: str
    id: str
    user_id: str
    project_id: str
    workload_type_id: str
    name: str
    description: str
    status: str
    scheduler_trust: None
    links: list[Link]
    availability_zone: str
    interval: None
    storage_usage: StorageUsageOut
    instances: list[MemberInstanceOut]
    metadata: dict[str, str]
    jobschedule: JobScheduleOut
    error_msg: str | None


class WorkloadOne(BaseModel):
    workload: WorkloadDetail


class WorkloadCreated(BaseModel):
    workload: WorkloadSummary


class WorkloadList(BaseModel):
    workloads: list[WorkloadSummary]


class WorkloadDetailList(BaseModel):
    workloads: list[WorkloadDetail]


class WorkloadTypeOut(BaseModel):
    id: str
    name: str
    description: str
    is_public: bool
    status: str
    metadata: dict[str, str]
    links: list[Link]


class WorkloadTypeOne(BaseModel):
    workload_type: WorkloadTypeOut


class WorkloadTypeList(BaseModel):
    workload_types: list[WorkloadTypeOut]


class PolicyFieldValueOut(BaseModel):
    policy_field_name: str
    #: a string for the 4.x fields, an object for a tier
    value: str | dict[str, Any]


class PolicyAssignmentOut(BaseModel):
    project_id: str
    policy_name: str


class PolicyOut(BaseModel):
    id: str
    name: str
    description: str
    field_values: list[PolicyFieldValueOut]
    policy_assignments: list[PolicyAssignmentOut]
    metadata: dict[str, str]
    created_at: str


class PolicyOne(BaseModel):
    policy: PolicyOut


class PolicyList(BaseModel):
    policy_list: list[PolicyOut]


class PolicyAssigned(BaseModel):
    policy: PolicyOut
    failed_ids: list[str]


class AssignedPolicyOut(BaseModel):
    policy_id: str
    policy_name: str


class AssignedPolicies(BaseModel):
    policies: list[AssignedPolicyOut]


class GlobalSchedulerOut(BaseModel):
    global_job_scheduler: bool


class SnapshotSummary(BaseModel):
    id: str
    name: str
    description: str
    workload_id: str
    project_id: str
    user_id: str
    snapshot_type: str
    status: str
    created_at: str
    updated_at: str
    finished_at: str | None
    size: int
    restore_size: int
    uploaded_size: int
    progress_percent: int
    progress_msg: str
    error_msg: str | None
    warning_msg: str | None
    time_taken: int
    host: str
    pinned: bool
    links: list[Link]


class VdiskOut(BaseModel):
    id: str
    name: str
    size: int
    format: str
    restore_size: int
    #: bytes this snapshot read from the disk (a live incremental reads only what changed)
    bytes_read: int = 0


class SnapshotInstanceOut(BaseModel):
    id: str
    name: str
    metadata: dict[str, str]
    vdisks: list[VdiskOut]


class SnapshotDetail(SnapshotSummary):
    instances: list[SnapshotInstanceOut]
    metadata: dict[str, str]


class SnapshotOne(BaseModel):
    snapshot: SnapshotSummary


class SnapshotDetailOne(BaseModel):
    snapshot: SnapshotDetail


class SnapshotList(BaseModel):
    snapshots: list[SnapshotSummary]


class SnapshotDetailList(BaseModel):
    snapshots: list[SnapshotDetail]


class RestoredInstanceOut(BaseModel):
    id: str
    name: str
    status: str


class RestoreOut(BaseModel):
    id: str
    name: str
    description: str
    snapshot_id: str
    status: str
    restore_type: str
    size: int
    uploaded_size: int
    progress_percent: int
    progress_msg: str
    error_msg: str | None
    time_taken: int
    created_at: str
    finished_at: str | None
    instances: list[RestoredInstanceOut]
    links: list[Link]


class RestoreOne(BaseModel):
    restore: RestoreOut


class RestoreList(BaseModel):
    restores: list[RestoreOut]


class FaultBody(BaseModel):
    code: int
    message: str


def fault_schema(name: str) -> dict[str, Any]:
    return {"type": "object", "required": [name],
            "properties": {name: FaultBody.model_json_schema()}}
