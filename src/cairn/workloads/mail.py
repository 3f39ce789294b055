"""E-mail about jobs: a message to the project's recipients when a snapshot or a restore
ends, succeeded or failed, if the project's SMTP settings are on (`project_settings`).

`Mailer` is a notifier (`cairn.jobs.notify.Notifier`): the job layer hands it a job's
end event once the job's closing transaction has committed. It only queues the event;
a thread of its own reads the project's settings and the names of the workload and the
snapshot, writes the message and talks to the SMTP server. So a slow, unreachable or
refusing server never delays or fails the job it reports on: its error is logged, the
message is dropped (no retry: the job's outcome is in the API and the notifications).
"""

from __future__ import annotations

import logging
import queue
import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from cairn.db.database import Database
from cairn.db.models import Restore, Snapshot, Workload
from cairn.workloads.project_settings import SmtpSettings, smtp_settings

log = logging.getLogger(__name__)

#: events that get an e-mail: their `.end` (succeeded) and `.error` (failed, cancelled)
MAILED_EVENTS = ("snapshot.create", "restore")
#: queued messages at most; beyond it a message is dropped (and logged), never waited for
QUEUE_LIMIT = 1000


class Mailer:
    """Sends an e-mail for each job end event it is told of, from a thread of its own."""

    def __init__(self, database: Database, default_sender: str | None = None) -> None:
        self._database = database
        self._sender = default_sender or f"cairn@{socket.getfqdn() or 'localhost'}"
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(QUEUE_LIMIT)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: messages handed to an SMTP server (for the log and the tests' waits)
        self.sent = 0

    # -- the Notifier protocol ---------------------------------------------------------

    def info(self, ctxt: dict[str, Any], event_type: str, payload: dict[str, Any]) -> None:
        self._offer(event_type, payload)

    def error(self, ctxt: dict[str, Any], event_type: str, payload: dict[str, Any]) -> None:
        self._offer(event_type, payload)

    # ------------------------------------------------------------------------------------

    def _offer(self, event_type: str, payload: dict[str, Any]) -> None:
        event, _, phase = event_type.rpartition(".")
        if event not in MAILED_EVENTS or phase not in ("end", "error"):
            return
        self._start()
        try:
            self._queue.put_nowait((event_type, dict(payload)))
        except queue.Full:
            log.warning("e-mail about job %s dropped: %d messages are waiting already",
                        payload.get("job_id"), QUEUE_LIMIT)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="mailer", daemon=True)
                self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (for at most `timeout` seconds), then stop."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            event_type, payload = item
            try:
                self.deliver(event_type, payload)
            except Exception as exc:  # noqa: BLE001 - e-mail never fails anything but itself
                log.warning("could not send the e-mail about job %s (%s) to the project's SMTP server: %s",
                            payload.get("job_id"), event_type, exc)

    def deliver(self, event_type: str, payload: dict[str, Any]) -> bool:
        """Write and send the message about one event; False when the project has no
        e-mail on. Raises what the SMTP exchange raises."""
        project_id = payload.get("project_id") or ""
        with self._database.reader() as session:
            settings = smtp_settings(session, project_id, self._sender)
            if settings is None:
                return False
            facts = _facts(session, event_type, payload)
        message = compose(settings, event_type, payload, facts)
        _send(settings, message)
        self.sent += 1
        log.info("e-mail about job %s (%s) sent to %s", payload.get("job_id"), event_type,
                 ", ".join(settings.recipients))
        return True


def _facts(session: Any, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The names behind the ids of the payload, read after the job's end committed."""
    facts: dict[str, Any] = {}
    workload = session.get(Workload, payload.get("workload_id")) if payload.get("workload_id") else None
    if workload is not None:
        facts["workload_name"] = workload.name
    snapshot_id = payload.get("snapshot_id") or (payload.get("subject_id")
                                                 if event_type.startswith("snapshot.") else None)
    snapshot = session.get(Snapshot, snapshot_id) if snapshot_id else None
    if snapshot is not None:
        facts.update(snapshot_id=snapshot.id, snapshot_name=snapshot.name, snapshot_type=snapshot.snapshot_type,
                     snapshot_status=snapshot.status, error_msg=snapshot.error_msg, size=snapshot.size)
    if event_type.startswith("restore."):
        restore = session.get(Restore, payload.get("subject_id")) if payload.get("subject_id") else None
        if restore is not None:
            facts.update(restore_id=restore.id, restore_name=restore.name, restore_status=restore.status,
                         error_msg=restore.error_msg)
    return facts


def outcome_of(event_type: str, payload: dict[str, Any]) -> str:
    state = payload.get("state") or ""
    if event_type.endswith(".end"):
        return "succeeded"
    return "was cancelled" if state == "cancelled" else "failed"


def compose(settings: SmtpSettings, event_type: str, payload: dict[str, Any],
            facts: dict[str, Any]) -> EmailMessage:
    """The message: a subject naming what ended and how, a plain-text body with the
    workload, the snapshot (and restore) by name and id, the outcome and the error."""
    outcome = outcome_of(event_type, payload)
    workload = facts.get("workload_name") or payload.get("workload_id") or "?"
    snapshot_name = facts.get("snapshot_name") or ""
    restoring = event_type.startswith("restore.")
    what = "Restore" if restoring else "Snapshot"
    subject = f"[Cairn] {what} {facts.get('restore_name') if restoring else snapshot_name} " \
              f"of workload {workload} {outcome}"
    lines = [f"{what} {outcome}.", "",
             f"Project:  {payload.get('project_id')}",
             f"Workload: {workload} ({payload.get('workload_id')})"]
    if facts.get("snapshot_id"):
        lines.append(f"Snapshot: {snapshot_name} ({facts['snapshot_id']}), {facts.get('snapshot_type', '')}")
    if restoring:
        lines.append(f"Restore:  {facts.get('restore_name', '')} ({payload.get('subject_id')})")
    lines.append(f"Outcome:  {outcome} (job {payload.get('job_id')}, state {payload.get('state')})")
    error = payload.get("error") or facts.get("error_msg")
    if error and not event_type.endswith(".end"):
        lines.append(f"Error:    {error}")
    if not restoring and facts.get("size") is not None and event_type.endswith(".end"):
        lines.append(f"Size:     {facts['size']} bytes added to the backup target")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    message.set_content("\n".join(lines) + "\n")
    return message


def _send(settings: SmtpSettings, message: EmailMessage) -> None:
    smtp: smtplib.SMTP
    if settings.security == "ssl":
        smtp = smtplib.SMTP_SSL(settings.server, settings.port, timeout=settings.timeout,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(settings.server, settings.port, timeout=settings.timeout)
    with smtp:
        if settings.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if settings.username and settings.password:
            smtp.login(settings.username, settings.password)
        smtp.send_message(message, from_addr=settings.sender, to_addrs=list(settings.recipients))
