"""The relational schema, as SQLAlchemy 2 declarative models.

One set of models serves SQLite, PostgreSQL and MariaDB: strings have lengths (MariaDB
needs them), timestamps keep microseconds everywhere (`Timestamp`), and free-form maps
are JSON columns. The migrations in `cairn/db/migrations` are the authority on the
schema; `tests/db/test_migrations.py` checks that these models and the migrations agree.

All timestamps are naive UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BigInt = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Token(Base):
    """A local API token; only the SHA-256 of the secret is stored."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    roles: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class Instance(Base):
    """An instance of the `local` platform, registered by an operator."""

    __tablename__ = "instances"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    disks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class WorkloadType(Base):
    __tablename__ = "workload_types"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(32), default="available")
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class Workload(Base):
    __tablename__ = "workloads"
    # Lists walk it in order (newest first, id breaking ties) and read the versions from
    # it alone: no sort, no table lookups.
    __table_args__ = (Index("ix_workloads_listing", "project_id", "deleted", "created_at", "id",
                            "updated_at", "next_fire_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    workload_type_id: Mapped[str] = mapped_column(ForeignKey("workload_types.id"))
    status: Mapped[str] = mapped_column(String(32))
    error_msg: Mapped[str | None] = mapped_column(Text, nullable=True)
    availability_zone: Mapped[str] = mapped_column(String(255), default="nova")
    jobschedule: Mapped[dict[str, Any]] = mapped_column(JSON)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    policy_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    backup_target: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: when the scheduler should next look at this workload (NULL: nothing scheduled)
    next_fire_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True, index=True)
    #: the last fire time that produced (or deliberately skipped) a snapshot
    last_fired_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    #: set by reset: the next snapshot must be full
    full_required: Mapped[bool] = mapped_column(Boolean, default=False)
    #: encrypted under a key derived from the Barbican secret `secret_uuid` (docs/encryption.md)
    encryption: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    secret_uuid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: the secret id while the workload is live, NULL once deleted: one live workload per secret
    secret_claim: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    #: set while the schedule is paused (`POST .../pause`): nothing fires until resumed
    schedule_paused_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    #: the Keystone trust scheduled work acts through, as the detail view shows it:
    #: {"trust": <keystone_trusts.id>, "is_valid": bool}; NULL without one
    scheduler_trust: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class WorkloadInstance(Base):
    """Membership of an instance in a workload.

    `claim` holds the instance id while the workload is live and NULL once it is
    deleted; its unique index is what makes "an instance belongs to at most one live
    workload" hold even under concurrent creates (NULLs never collide).
    """

    __tablename__ = "workload_instances"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workload_id: Mapped[str] = mapped_column(ForeignKey("workloads.id"), index=True)
    instance_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(255))
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    claim: Mapped[str | None] = mapped_column(String(36), nullable=True, unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    #: the instance's disks when it joined (what the Volumes quota counts)
    quota_disks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Policy(Base):
    """A workload policy: scheduling and retention values an admin imposes."""

    __tablename__ = "policies"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    field_values: Mapped[dict[str, str]] = mapped_column(JSON)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class PolicyAssignment(Base):
    __tablename__ = "policy_assignments"
    __table_args__ = (UniqueConstraint("policy_id", "project_id", name="uq_policy_assignments_pair"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_id: Mapped[str] = mapped_column(ForeignKey("policies.id"), index=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class KeystoneTrust(Base):
    """A Keystone trust from a user (the trustor) to Cairn's service user (the trustee).

    `id` is Cairn's name for it (`trust-<uuid>`, what /trusts shows); `keystone_trust_id`
    Keystone's. A workload's own trust has `workload_id` and is `hidden`; `status` is
    `available`, or `invalid` once Keystone refused it (revoked, deleted, expired).
    """

    __tablename__ = "keystone_trusts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    keystone_trust_id: Mapped[str] = mapped_column(String(64))
    role_names: Mapped[list[str]] = mapped_column(JSON)
    is_cloud_trust: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    workload_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(32), default="available")
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class ServiceSetting(Base):
    """Service-wide switches that must survive restarts (the global job scheduler)."""

    __tablename__ = "service_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Job(Base):
    """A unit of background work. The row is the truth; a dispatch is only a doorbell.

    `state`: queued → running → succeeded | failed | cancelled. A running job's
    `owner` renews `lease_expires_at`; the reaper fails a running job whose lease has
    expired and settles its subject. `destinations` lists what the job writes outside
    the database (files it creates, data on a backup target), recorded before it writes
    them, so that a `cleanup` job can remove them after the job failed, wherever the
    process that ran it went (`cairn.workloads.cleanup`).
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_lease", "state", "lease_expires_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[str] = mapped_column(String(64))
    workload_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    subject_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    #: what the job writes outside the database, recorded before it writes it (NULL: nothing)
    destinations: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)


class Snapshot(Base):
    """One snapshot of a workload. `instances` describes what was captured: each
    instance with its disks and the manifest key of each disk in the project's
    repository. `fire_time` is set for scheduled snapshots; its unique pairing with
    the workload is what makes each scheduled time fire at most once."""

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("workload_id", "fire_time", name="uq_snapshots_fire"),
                      Index("ix_snapshots_workload_created", "workload_id", "created_at"))
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workload_id: Mapped[str] = mapped_column(ForeignKey("workloads.id"))
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    snapshot_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    size: Mapped[int] = mapped_column(BigInt, default=0)
    restore_size: Mapped[int] = mapped_column(BigInt, default=0)
    uploaded_size: Mapped[int] = mapped_column(BigInt, default=0)
    progress_percent: Mapped[int] = mapped_column(Integer, default=0)
    progress_msg: Mapped[str] = mapped_column(Text, default="")
    error_msg: Mapped[str | None] = mapped_column(Text, nullable=True)
    warning_msg: Mapped[str | None] = mapped_column(Text, nullable=True)
    time_taken: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str] = mapped_column(String(255), default="")
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    instances: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    fire_time: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    #: why the snapshot was removed (a user's delete, or the retention rule that applied)
    deleted_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the tiers of a tiered schedule the snapshot belongs to (["daily", "weekly"];
    #: ["manual"] when taken on request); NULL under the 4.x form
    schedule_tiers: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class Restore(Base):
    __tablename__ = "restores"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    snapshot_id: Mapped[str] = mapped_column(ForeignKey("snapshots.id"), index=True)
    workload_id: Mapped[str] = mapped_column(String(36), index=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    restore_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInt, default=0)
    uploaded_size: Mapped[int] = mapped_column(BigInt, default=0)
    progress_percent: Mapped[int] = mapped_column(Integer, default=0)
    progress_msg: Mapped[str] = mapped_column(Text, default="")
    error_msg: Mapped[str | None] = mapped_column(Text, nullable=True)
    time_taken: Mapped[int] = mapped_column(Integer, default=0)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    instances: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class BackupTargetRow(Base):
    """A backup target an admin created over the API (docs/backup_targets.md). Targets
    from the configuration file have no row; `workloads.backup_target` names either a
    configured target's name or one of these ids."""

    __tablename__ = "backup_targets"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    filesystem_export: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    mount_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    nfs_mount_opts: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    s3_endpoint_url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    s3_bucket: Mapped[str | None] = mapped_column(String(255), nullable=True)
    s3_region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    s3_prefix: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    #: a reference to the Barbican secret holding the S3 keys; never the keys themselves
    secret_ref: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    immutable: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class AllowedQuota(Base):
    """How much of one quota type a project may use (`cairn.workloads.quotas`). The row is
    also the lock that serialises the requests that would use its type."""

    __tablename__ = "allowed_quotas"
    __table_args__ = (UniqueConstraint("project_id", "quota_type_id", name="uq_allowed_quotas_project_type"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    quota_type_id: Mapped[str] = mapped_column(String(36))
    allowed_value: Mapped[int] = mapped_column(BigInt)
    high_watermark: Mapped[int] = mapped_column(BigInt)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class BackupTargetTypeRow(Base):
    """A named way to a backup target, public or assigned to projects; a workload
    created with `backup_target_types` lives on the type's target."""

    __tablename__ = "backup_target_types"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: a configured target's name or a `backup_targets` id
    backup_target: Mapped[str] = mapped_column(String(255), index=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class BackupTargetTypeProject(Base):
    """A project a non-public backup target type is assigned to."""

    __tablename__ = "backup_target_type_projects"
    __table_args__ = (UniqueConstraint("type_id", "project_id", name="uq_backup_target_type_projects_pair"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type_id: Mapped[str] = mapped_column(ForeignKey("backup_target_types.id"), index=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class AuditEntry(Base):
    """One line of the audit log: who did what to which object, when (`cairn.workloads.audit`)."""

    __tablename__ = "audit_log"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    object_name: Mapped[str] = mapped_column(String(255))
    details: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(64))
class ProjectSetting(Base):
    """A setting of a project (`/settings`): the SMTP settings that turn e-mail about
    jobs on, and any other name a client stores. One row per project and name."""

    __tablename__ = "project_settings"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_project_settings_pair"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(255), default="")
    type: Mapped[str] = mapped_column(String(255), default="")
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    is_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
