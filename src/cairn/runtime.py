"""The objects one Cairn process runs with, built once from the settings.

`Runtime` wires the layers together (database → platform → jobs → workload services)
and owns their start and stop; the API and the CLI receive it and never build these
parts themselves. Tests build one per database backend.

How jobs travel depends on `settings.transport_url`: empty, every job runs on this
process's thread pool (`cairn serve`, the embedded default); set, jobs are rung over
the broker to `cairn worker` processes (`RabbitDispatcher`) when the caller asks for it
(`broker=True`: the role commands), and the job handlers send notifications. `cairn
serve` keeps its in-process pool even with a broker configured; it only notifies.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cairn.auth.key_manager import KeyManager, ServiceUser
from cairn.auth.policy import PolicyEnforcer
from cairn.auth.projects import LocalProjects, ProjectDirectory, project_directory
from cairn.auth.tokens import LocalTokenValidator
from cairn.auth.validator import TokenValidator
from cairn.clock import utcnow
from cairn.config import Settings
from cairn.db.database import Database
from cairn.errors import InvalidInput
from cairn.jobs.dispatch import InProcessDispatcher
from cairn.jobs.notify import FanOut, Notifier, notifying
from cairn.jobs.reaper import Reaper
from cairn.jobs.runner import JobHandler, JobRunner
from cairn.platforms.base import Platform
from cairn.platforms.local import LocalPlatform
from cairn.scheduler import Scheduler
from cairn.workloads import cleanup, lifecycle
from cairn.workloads.backup_targets import BackupTargetService, settings_lookup
from cairn.workloads.encryption import ServiceKeys
from cairn.workloads.import_job import JOB_IMPORT, ImportJob
from cairn.workloads.jobschedule import parse_jobschedule
from cairn.workloads.lifecycle import WorkloadService
from cairn.workloads.lifecycle_jobs import CreateWorkloadJob, DeleteWorkloadJob, ResetWorkloadJob
from cairn.workloads.mail import Mailer
from cairn.workloads.notices import NOTICE_FACTS
from cairn.workloads.quotas import QuotaGuard
from cairn.workloads.reassign import JOB_REASSIGN, ReassignJob
from cairn.workloads.restore_job import JOB_RESTORE, RestoreJob
from cairn.workloads.restore_service import RestoreService
from cairn.workloads.retention_step import RetentionStep
from cairn.workloads.s3_credentials import FIELD as S3_SECRET_FIELD
from cairn.workloads.s3_credentials import SecretReader, credentials_lookup
from cairn.workloads.snapshot_delete import JOB_SNAPSHOT_DELETE, SnapshotDeleteJob
from cairn.workloads.snapshot_job import JOB_SNAPSHOT, SnapshotJob
from cairn.workloads.snapshot_service import SnapshotService
from cairn.workloads.storage import BackupTargets
from cairn.workloads.trusts import TrustService, acting_through_trusts

if TYPE_CHECKING:  # oslo.messaging is imported only by processes that use a broker
    from cairn.auth.trusts import KeystoneTrusts
    from cairn.jobs.messaging import Messaging, RabbitDispatcher

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    database: Database
    platform: Platform
    validator: TokenValidator
    enforcer: PolicyEnforcer
    workloads: WorkloadService
    snapshots: SnapshotService
    restores: RestoreService
    targets: BackupTargets
    #: backup targets and backup target types as API resources
    target_resources: BackupTargetService
    quotas: QuotaGuard
    trusts: TrustService
    dispatcher: InProcessDispatcher | RabbitDispatcher
    reaper: Reaper
    scheduler: Scheduler
    handlers: dict[str, JobHandler] = field(default_factory=dict)
    runner: JobRunner | None = None
    #: the broker connection, when `transport_url` is set
    messaging: Messaging | None = None
    #: Barbican, for encrypted workloads (auth_strategy = keystone only)
    key_manager: KeyManager | None = None
    #: e-mail about the end of snapshots and restores (`cairn.workloads.mail`)
    mailer: Mailer | None = None
    #: which projects exist (Keystone's, or none known under local tokens)
    projects: ProjectDirectory = field(default_factory=LocalProjects)

    def start_background(self, scheduler: bool = True) -> None:
        """Start the reaper and (unless told not to) the scheduler; the worker pool
        starts on first dispatch."""
        self.reaper.reap_once()
        self.reaper.start(interval=max(1.0, self.settings.job_lease_seconds / 4))
        if scheduler:
            self.scheduler.start(interval=self.settings.scheduler_interval_seconds)

    def close(self) -> None:
        self.scheduler.stop()
        self.reaper.stop()
        self.dispatcher.shutdown(wait=True)
        if self.mailer is not None:
            self.mailer.close()
        if self.messaging is not None:
            self.messaging.close()
        self.database.dispose()


#: job kind → the event name its notifications use (`<event>.start|end|error`)
NOTIFIED_EVENTS = {
    lifecycle.JOB_CREATE: "workload.create",
    lifecycle.JOB_DELETE: "workload.delete",
    JOB_SNAPSHOT: "snapshot.create",
    JOB_RESTORE: "restore",
}


#: the jobs that call the platform: each acts through the workload's Keystone trust
ACTING_JOBS = (lifecycle.JOB_CREATE, lifecycle.JOB_RESET, JOB_SNAPSHOT, JOB_RESTORE)


def build_runtime(settings: Settings, broker: bool = False, platform: Platform | None = None) -> Runtime:
    """Wire a runtime. With `broker` (the role commands) jobs go over the broker; without
    (`cairn serve`, tests) they run on this process's pool, whatever `transport_url`.
    `platform` replaces the one `settings.platform` names (tests wrap it to act at a
    chosen moment of a job)."""
    _check_timezone(settings.timezone)
    database = Database(settings.database_url)
    clock = utcnow
    platform = platform if platform is not None else build_platform(settings, database)
    key_manager = build_key_manager(settings)
    # Targets created over the API are found in the database, an S3 one's keys through its
    # secret_ref, read from Barbican as Cairn's service user (the secret's ACL grants it).
    credentials = credentials_lookup(service_secret_reader(key_manager) if key_manager else None)
    targets = BackupTargets(settings.backup_targets, ServiceKeys(key_manager) if key_manager else None,
                            lookup=settings_lookup(database, credentials))
    target_resources = BackupTargetService(targets, settings.target_mount_dir, clock, credentials)
    trusts = TrustService(database, _keystone_trusts(settings), settings.trustee, clock)
    gc_wait = settings.gc_wait_seconds
    handlers: dict[str, JobHandler] = {
        lifecycle.JOB_CREATE: CreateWorkloadJob(platform, targets, clock),
        lifecycle.JOB_RESET: ResetWorkloadJob(platform, targets, clock, gc_wait),
        lifecycle.JOB_DELETE: DeleteWorkloadJob(targets, clock, gc_wait, trusts=trusts),
        JOB_SNAPSHOT: SnapshotJob(platform, targets, clock, retention=RetentionStep(clock, gc_wait)),
        JOB_SNAPSHOT_DELETE: SnapshotDeleteJob(targets, clock, gc_wait),
        JOB_RESTORE: RestoreJob(platform, targets, clock),
        cleanup.JOB_CLEANUP: cleanup.CleanupJob(targets, clock, platform),
        JOB_IMPORT: ImportJob(targets, clock),
        JOB_REASSIGN: ReassignJob(targets, clock),
    }
    # The jobs that call the platform act for the workload's user through its trust.
    handlers = acting_through_trusts(handlers, trusts, ACTING_JOBS)
    messaging: Messaging | None = None
    mailer = Mailer(database)
    notifiers: list[Notifier] = [mailer]
    if settings.transport_url:
        from cairn.jobs.messaging import Messaging, RabbitDispatcher

        messaging = Messaging(settings.transport_url, settings.worker_threads)
        notifiers.insert(0, messaging.notifier(publisher_id=f"cairn.{settings.worker_host}"))
    handlers = notifying(handlers, NOTIFIED_EVENTS, FanOut(*notifiers), database, NOTICE_FACTS)
    lease = timedelta(seconds=settings.job_lease_seconds)
    owner = f"{settings.worker_host}:{os.getpid()}"
    runner = JobRunner(database, handlers, owner, lease, clock)
    dispatcher: InProcessDispatcher | RabbitDispatcher
    if messaging is not None and broker:
        dispatcher = RabbitDispatcher(messaging, database)
    else:
        dispatcher = InProcessDispatcher(runner, settings.worker_threads)
    reaper = Reaper(database, handlers, dispatcher, clock, requeue_after=lease)
    quotas = QuotaGuard(database)
    workloads = WorkloadService(database, platform, targets, dispatcher, clock, settings.timezone, quotas,
                                placement=target_resources, trusts=trusts)
    snapshot_service = SnapshotService(dispatcher, clock, platform, database, quotas)
    return Runtime(settings=settings, database=database, platform=platform,
                   validator=_validator(settings, database),
                   enforcer=PolicyEnforcer(settings.policy_file), workloads=workloads,
                   snapshots=snapshot_service,
                   scheduler=Scheduler(database, snapshot_service, clock, owner),
                   restores=RestoreService(dispatcher, platform, clock), targets=targets, quotas=quotas,
                   target_resources=target_resources, trusts=trusts,
                   dispatcher=dispatcher, reaper=reaper, handlers=handlers,
                   runner=runner, messaging=messaging, key_manager=key_manager, mailer=mailer,
                   projects=project_directory(settings.auth_strategy, settings.keystone))


def build_key_manager(settings: Settings) -> KeyManager | None:
    """Barbican through castellan, for encrypted workloads: only with Keystone tokens,
    which Barbican accepts (castellan is imported on first use, not here)."""
    if settings.auth_strategy != "keystone":
        return None
    return KeyManager(settings.keystone, settings.barbican)


def service_secret_reader(key_manager: KeyManager) -> SecretReader:
    """Reads a target's S3 keys from Barbican as the service user: a target is the
    operator's, used by jobs that have no caller."""
    def read(secret_id: str) -> bytes:
        return key_manager.read_payload(secret_id, ServiceUser(), field=S3_SECRET_FIELD)
    return read


def _validator(settings: Settings, database: Database) -> TokenValidator:
    """The token validator `auth_strategy` names; keystoneauth1 is imported only when used."""
    if settings.auth_strategy == "keystone":
        from cairn.auth.keystone import KeystoneTokenValidator

        return KeystoneTokenValidator(settings.keystone, settings.admin_role)
    return LocalTokenValidator(database.reader)


def _keystone_trusts(settings: Settings) -> KeystoneTrusts | None:
    """Keystone trusts are made with Keystone tokens only, and while `[trustee]` is on."""
    if settings.auth_strategy != "keystone" or not settings.trustee.enabled:
        return None
    from cairn.auth.trusts import KeystoneTrusts

    return KeystoneTrusts(settings.keystone)


def build_platform(settings: Settings, database: Database) -> Platform:
    """The platform `settings.platform` names; libvirt's binding is loaded only when used."""
    if settings.platform == "local":
        return LocalPlatform(database.reader, database.unit_of_work)
    if settings.platform == "libvirt":
        from cairn.platforms.libvirt import LibvirtPlatform

        return LibvirtPlatform(settings.libvirt_uri, settings.data_dir / "scratch",
                               settings.libvirt_shutdown_seconds)
    if settings.platform == "openstack":
        from cairn.platforms.openstack import OpenStackCredentials, OpenStackPlatform

        k = settings.keystone
        if not (k.auth_url and k.username and k.password and k.project_name):
            raise InvalidInput("platform: 'openstack' needs Cairn's service user in [keystone_authtoken] "
                               "(auth_url, username, password, project_name).", "platform")
        credentials = OpenStackCredentials(
            auth_url=k.auth_url, username=k.username, password=k.password, project_name=k.project_name,
            user_domain_name=k.user_domain_name, project_domain_name=k.project_domain_name,
            region_name=k.region_name, interface=k.interface, cafile=str(k.cafile) if k.cafile else None,
            insecure=k.insecure)
        return OpenStackPlatform(credentials, settings.libvirt_uri, settings.data_dir / "scratch",
                                 settings.libvirt_shutdown_seconds, settings.openstack_volume_mounts)
    raise InvalidInput(f"platform: {settings.platform!r} is not supported; use 'local', 'libvirt' or "
                       "'openstack'.", "platform")


def _check_timezone(name: str) -> None:
    try:
        parse_jobschedule({}, service_timezone=name, now=datetime.now(UTC))
    except InvalidInput:
        raise InvalidInput(f"timezone: {name!r} is not a known timezone.", "timezone") from None
