"""Trusts in the workload's life: made when a workload is created with a Keystone token,
used by every job that works on the workload without its user at hand (a scheduled
snapshot above all), deleted with the workload; and the /trusts resource.

The Keystone call that makes a trust needs the caller's token, so it is made by the API
before the unit of work that creates the workload (no row is locked meanwhile), and
undone when that unit of work fails: a refused request leaves no trust behind.

A job that calls the platform (create, reset, snapshot, restore: `ActingJob`) acts
through the workload's trust (`TrustService.acting_for`): it gets a trust-scoped token
as the service user and runs with it as the current acting user
(`cairn.auth.acting.current_acting_user`). A trust Keystone refuses fails the job with
a message naming the trust; the trust is marked invalid (`is_valid: false` in the
workload's `scheduler_trust`), and the job's settlement unlocks the workload as for any
failure. Without a trust (local tokens, `[trustee] enabled = false`) jobs run as before.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.auth.acting import TrustRefused, acting_as
from cairn.auth.context import RequestContext
from cairn.config import TrusteeSettings
from cairn.db.database import Database, reconnecting
from cairn.db.models import KeystoneTrust, Workload
from cairn.errors import CairnError, InvalidInput, NotAuthorized
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobContext, JobHandler, Outcome
from cairn.workloads import trust_records
from cairn.workloads.trust_records import TrustRecord

if TYPE_CHECKING:  # keystoneauth1 is loaded only where Keystone is used
    from cairn.auth.trusts import KeystoneTrusts

log = logging.getLogger(__name__)


class TrustUnusable(NotAuthorized):
    """The workload's trust no longer gives Cairn a token (revoked, deleted, expired)."""


@dataclass(frozen=True)
class NewTrust:
    """A trust made in Keystone whose row is not written yet."""

    id: str
    keystone_trust_id: str
    role_names: tuple[str, ...]


class TrustService:
    """Makes, uses and deletes the trusts of workloads and of /trusts. `keystone` None:
    Cairn does not make trusts (local tokens, or `[trustee] enabled = false`)."""

    def __init__(self, database: Database, keystone: KeystoneTrusts | None, settings: TrusteeSettings,
                 clock: Callable[[], datetime]) -> None:
        self.database = database
        self.keystone = keystone
        self.settings = settings
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.keystone is not None

    # -- a workload's trust ------------------------------------------------------------

    def open_for_workload(self, ctx: RequestContext) -> NewTrust | None:
        """The trust for a workload `ctx` is creating in their own project (None without
        Keystone; None for an admin acting in another project: their token delegates no
        role there, and the workload's jobs then run without an acting user)."""
        if self.keystone is None or not ctx.auth_token or ctx.identity.project_id != ctx.project_id:
            return None
        return self._make(ctx, self.settings.trusted_roles)

    def open_for_update(self, ctx: RequestContext, workload_id: str, project_scope: str | None) -> NewTrust | None:
        """A new trust for a workload being modified whose trust is missing or was refused,
        when the caller is a user of its project (their token makes it)."""
        if self.keystone is None or not ctx.auth_token or ctx.identity.project_id != ctx.project_id:
            return None
        with self.database.reader() as session:
            owner = session.scalar(select(Workload.project_id).where(
                Workload.id == workload_id, Workload.deleted.is_(False)))
            current = trust_records.workload_trusts(session, workload_id)
        if owner is None or owner != ctx.project_id or (project_scope is not None and owner != project_scope):
            return None
        if current and current[-1].status == trust_records.AVAILABLE:
            return None
        return self._make(ctx, self.settings.trusted_roles)

    def discard(self, trust: NewTrust | None) -> None:
        """Undo `open_for_workload` when its workload was not created."""
        if trust is None or self.keystone is None:
            return
        try:
            self.keystone.delete(trust.keystone_trust_id)
        except CairnError as exc:  # the request already failed; say what is left over
            log.warning("Keystone trust %s of a refused request could not be deleted: %s",
                        trust.keystone_trust_id, exc.message)

    def add(self, session: Session, trust: NewTrust, ctx: RequestContext, workload_id: str | None,
            hidden: bool, is_cloud_trust: bool = False) -> None:
        session.add(KeystoneTrust(
            id=trust.id, project_id=ctx.project_id, user_id=ctx.user_id,
            keystone_trust_id=trust.keystone_trust_id, role_names=list(trust.role_names),
            is_cloud_trust=is_cloud_trust, hidden=hidden, workload_id=workload_id,
            status=trust_records.AVAILABLE, created_at=self.clock(), updated_at=None, deleted=False))

    @contextlib.contextmanager
    def acting_for(self, workload_id: str) -> Iterator[None]:
        """Run the block as the user of the workload's trust (as is, without a trust)."""
        trust = self._workload_trust(workload_id)
        if trust is None or self.keystone is None:
            yield
            return
        if trust.status == trust_records.INVALID:
            raise TrustUnusable(_unusable(trust, "Keystone refused it before"))
        try:
            user = self.keystone.act(trust.keystone_trust_id)
        except TrustRefused as exc:
            for attempt in reconnecting():
                with attempt, self.database.unit_of_work() as session:
                    trust_records.mark_invalid(session, trust.id, self.clock())
            raise TrustUnusable(_unusable(trust, exc.message)) from None
        with acting_as(user):
            yield

    def delete_for_workload(self, workload_id: str) -> None:
        """Delete the workload's trusts in Keystone, then their rows."""
        for attempt in reconnecting():
            with attempt, self.database.reader() as session:
                trusts = trust_records.workload_trusts(session, workload_id)
        for trust in trusts:
            self._delete(trust)

    def _workload_trust(self, workload_id: str) -> TrustRecord | None:
        for attempt in reconnecting():
            with attempt, self.database.reader() as session:
                trusts = trust_records.workload_trusts(session, workload_id)
        return trusts[-1] if trusts else None

    # -- /trusts ---------------------------------------------------------------------

    def create(self, ctx: RequestContext, role_name: str, is_cloud_trust: bool) -> TrustRecord:
        """A trust of the caller's role `role_name` on their project, to Cairn."""
        if self.keystone is None or not ctx.auth_token:
            raise InvalidInput("Trusts need auth_strategy = keystone and [trustee] enabled = true: "
                               "Cairn makes Keystone trusts only for Keystone tokens.", "trusts")
        trust = self._make(ctx, (role_name,))
        try:
            with self.database.unit_of_work() as session:
                self.add(session, trust, ctx, workload_id=None, hidden=False, is_cloud_trust=is_cloud_trust)
                session.flush()
                return trust_records.get_trust(session, trust.id, None)
        except BaseException:
            self.discard(trust)
            raise

    def delete(self, trust_id: str, project_scope: str | None) -> None:
        with self.database.reader() as session:
            trust = trust_records.get_trust(session, trust_id, project_scope)
        self._delete(trust)

    # -- Keystone ----------------------------------------------------------------------

    def _make(self, ctx: RequestContext, role_names: tuple[str, ...]) -> NewTrust:
        assert self.keystone is not None and ctx.auth_token
        keystone_id = self.keystone.create(ctx.auth_token, ctx.user_id, ctx.project_id, role_names)
        return NewTrust(f"trust-{uuid.uuid4()}", keystone_id, role_names)

    def _delete(self, trust: TrustRecord) -> None:
        if self.keystone is not None:
            self.keystone.delete(trust.keystone_trust_id)
        for attempt in reconnecting():
            with attempt, self.database.unit_of_work() as session:
                trust_records.mark_deleted(session, trust.id, self.clock())


class ActingJob:
    """A job handler that runs `inner` as the user of its workload's trust."""

    def __init__(self, inner: JobHandler, trusts: TrustService) -> None:
        self.inner = inner
        self.trusts = trusts

    def run(self, job: JobContext) -> None:
        if job.record.workload_id is None:
            self.inner.run(job)
            return
        with self.trusts.acting_for(job.record.workload_id):
            self.inner.run(job)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        self.inner.settle(session, job, outcome)


def acting_through_trusts(handlers: dict[str, JobHandler], trusts: TrustService,
                          kinds: tuple[str, ...]) -> dict[str, JobHandler]:
    """`handlers` with those of `kinds` acting through trusts (as they are without Keystone)."""
    if not trusts.enabled:
        return handlers
    return {kind: ActingJob(handler, trusts) if kind in kinds else handler for kind, handler in handlers.items()}


def replace_workload_trust(session: Session, row: Workload, trust: NewTrust, ctx: RequestContext,
                           service: TrustService, now: datetime) -> None:
    """Make `trust` the workload's own (in the unit of work that modifies the workload);
    the rows of the trusts it replaces are marked deleted (Keystone refused them)."""
    for old in trust_records.workload_trusts(session, row.id):
        trust_records.mark_deleted(session, old.id, now)
    service.add(session, trust, ctx, workload_id=row.id, hidden=True)
    row.scheduler_trust = {"trust": trust.id, "is_valid": True}
    row.updated_at = now


def _unusable(trust: TrustRecord, why: str) -> str:
    return (f"The Keystone trust {trust.id} (Keystone id {trust.keystone_trust_id}) through which Cairn "
            f"acts for user {trust.user_id} in project {trust.project_id} no longer gives a token: it was "
            f"revoked, deleted or has expired ({why}). Modify the workload with a valid token to "
            "give it a new trust.")
