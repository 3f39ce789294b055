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
    # Trilio 4.2+: a workload encrypted with a Barbican secret (docs/encryption.md);
    # clients send both always, `false` with "" or null when unencrypted.
    encryption: bool | None = None
    secret_uuid: str | None = Field(default=None, max_length=64)
    #: 6.x: the backup target type (id or name) the workload lives on
    backup_target_types: str | None = Field(default=None, min_length=1, max_length=255)


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


class TrustBody(Strict):
    role_name: str = Name
    is_cloud_trust: bool | Literal["True", "False", "true", "false"] = False


class TrustCreateRequest(Strict):
    trusts: TrustBody


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
    #: start the restored instance at once on the snapshot (served over NBD) and copy its
    #: data in the background (libvirt platform; oneclick and selective restores)
    instant: bool | None = None
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
    encryption: bool
    secret_uuid: str | None


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


class TrustMetadataOut(BaseModel):
    id: str
    settings_name: str
    settings_project_id: str
    key: str
    value: str


class TrustOut(BaseModel):
    id: str
    name: str
    project_id: str
    user_id: str
    value: str
    description: str
    category: str
    type: str
    public: bool
    hidden: bool
    status: str
    created_at: str
    updated_at: str | None
    deleted_at: str | None
    deleted: bool
    metadata: list[TrustMetadataOut]


class TrustList(BaseModel):
    trust: list[TrustOut]


class TrustOne(BaseModel):
    trust: TrustOut


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


# -- quotas, usage, audit log (docs/operations.md) -------------------------------------

QuotaValue = Field(ge=0, le=2**63 - 1)


class AllowedQuotaIn(Strict):
    quota_type_id: str = Field(min_length=1, max_length=36)
    project_id: str | None = Field(default=None, min_length=1, max_length=64)
    allowed_value: int = QuotaValue
    high_watermark: int | None = Field(default=None, ge=0, le=2**63 - 1)


class AllowedQuotaCreateRequest(Strict):
    allowed_quotas: list[AllowedQuotaIn] = Field(min_length=1, max_length=16)


class AllowedQuotaUpdateBody(Strict):
    project_id: str | None = Field(default=None, min_length=1, max_length=64)
    allowed_value: int | None = Field(default=None, ge=0, le=2**63 - 1)
    high_watermark: int | None = Field(default=None, ge=0, le=2**63 - 1)


class AllowedQuotaUpdateRequest(Strict):
    allowed_quotas: AllowedQuotaUpdateBody


class QuotaTypeOut(BaseModel):
    id: str
    display_name: str
    display_description: str
    status: str


class QuotaTypeList(BaseModel):
    quota_types: list[QuotaTypeOut]


class AllowedQuotaOut(BaseModel):
    id: str
    project_id: str
    quota_type_id: str
    allowed_value: int
    high_watermark: int
    version: str
    quota_type_name: str


class AllowedQuotaList(BaseModel):
    allowed_quotas: list[AllowedQuotaOut]


class AllowedQuotaOne(BaseModel):
    allowed_quotas: AllowedQuotaOut


class TargetUsageOut(BaseModel):
    storage_type: str
    name: str
    nfs_share: str
    total_capacity: int | None
    total_capacity_humanized: str | None
    total_utilization: int | None
    total_utilization_humanized: str | None
    available_capacity: int | None
    available_capacity_humanized: str | None
    backup_usage: int
    backup_usage_humanized: str
    workloads: int
    snapshots: int


class StorageUsageList(BaseModel):
    storage_usage: list[TargetUsageOut]


class ProjectUsageOut(BaseModel):
    vms_protected: int
    total_vms: int | None
    workloads: int
    snapshots: int
    used_capacity: int
    used_capacity_humanized: str


class GlobalUsageOut(BaseModel):
    vms_protected: int
    total_vms: int | None
    workloads: int
    snapshots: int
    used_capacity: int
    used_capacity_humanized: str


class TenantsUsage(BaseModel):
    global_usage: GlobalUsageOut
    tenants_usage: dict[str, ProjectUsageOut]


class ChargedVmOut(BaseModel):
    id: str
    name: str


class ChargedWorkloadOut(BaseModel):
    id: str
    name: str
    snapshots: int
    size: int
    size_humanized: str
    protected_vms: dict[str, ChargedVmOut]


class TenantChargebackOut(BaseModel):
    tenant_id: str
    tenant_name: str
    workloads: dict[str, ChargedWorkloadOut]
    vms_protected: int
    size: int
    size_humanized: str


class ProtectedVmOut(BaseModel):
    id: str
    name: str
    workload_id: str
    workload_name: str
    project_id: str


class ProtectedVms(BaseModel):
    protected_vms: list[ProtectedVmOut]


class AuditLineOut(BaseModel):
    Timestamp: str
    UserName: str
    UserId: str
    ProjectId: str
    Action: str
    ObjectType: str
    ObjectId: str
    ObjectName: str
    Details: str
    RequestId: str


class AuditLog(BaseModel):
    auditlog: list[AuditLineOut]
# -- settings, reassign, import (cairn.api.routes.project_ops) ------------------------


class SettingIn(Strict):
    name: str = Field(min_length=1, max_length=255)
    value: Scalar
    description: str | None = Text
    category: str | None = Field(default=None, max_length=255)
    type: str | None = Field(default=None, max_length=255)
    is_public: bool = False
    is_hidden: bool = False
    metadata: Metadata | None = MetadataField


class SettingsCreateRequest(Strict):
    settings: list[SettingIn] = Field(min_length=1, max_length=100)


class ReassignIn(Strict):
    workload_ids: list[str] = Field(default_factory=list, max_length=1000)
    new_tenant_id: str = Field(min_length=1, max_length=64)
    user_id: str = Field(min_length=1, max_length=64)
    old_tenant_ids: list[str] = Field(default_factory=list, max_length=1000)
    migrate_cloud: bool = False


class ImportRequest(Strict):
    workload_ids: list[str] = Field(default_factory=list, max_length=10000)
    upgrade: bool = True
    target: str | None = Field(default=None, min_length=1, max_length=255)


class SettingOut(BaseModel):
    id: str
    name: str
    value: str
    description: str
    category: str
    type: str
    is_public: bool
    is_hidden: bool
    metadata: dict[str, str]
    project_id: str
    user_id: str
    created_at: str
    updated_at: str


class SettingList(BaseModel):
    settings: list[SettingOut]


class SettingOne(BaseModel):
    setting: SettingOut


class ReassignedOut(BaseModel):
    id: str
    name: str
    status: str
    project_id: str
    user_id: str


class ReassignFailedOut(BaseModel):
    id: str
    error: str


class ReassignResult(BaseModel):
    reassigned_workloads: list[ReassignedOut]
    failed_workloads: list[ReassignFailedOut]


class ReassignOut(BaseModel):
    workloads: ReassignResult


class TargetWorkloadOut(BaseModel):
    id: str
    name: str
    project_id: str
    user_id: str
    backup_target: str
    snapshots: int
    created_at: str | None
    reason: str


class TargetWorkloadList(BaseModel):
    workloads: list[TargetWorkloadOut]


class ImportJobOut(BaseModel):
    id: str
    status: str
    progress_percent: int
    progress_msg: str
    imported_workloads: list[str]
    imported_snapshots: list[str]
    skipped: list[str]
    error_msg: str | None
    created_at: str
    finished_at: str | None


class ImportJobOne(BaseModel):
    import_workloads: ImportJobOut
