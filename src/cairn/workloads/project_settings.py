"""Project settings (`/settings`): storing, checking, showing and reading them.

A setting is a named string value of one project, with the descriptive fields the
original API carries (`description`, `category`, `type`, `is_public`, `is_hidden`,
`metadata`). Any name a client stores is kept; the SMTP settings that turn e-mail about
jobs on are checked by their meaning, and a bad one is refused naming the field:

    smtp_email_enable        "1"/"0", "true"/"false" (e-mail is sent only when on)
    smtp_server_name         host name or address of the SMTP server
    smtp_port                1..65535 (default 25)
    smtp_server_username     optional; with a password, the client logs in (AUTH)
    smtp_server_password     never shown back: views carry `******`
    smtp_default_sender      the From address (default cairn@<host>)
    smtp_default_recipient   one or more addresses, separated by commas (To)
    smtp_timeout             seconds for each SMTP exchange, 1..300 (default 10)
    smtp_security            "none" (default), "starttls" or "ssl"

A value whose name says it is secret (it contains `password`) is shown as `******`
by every view; the database holds it (the mailer needs it), so the database is where
it must be protected.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cairn.db.models import ProjectSetting
from cairn.errors import InvalidInput, NotFound

MASK = "******"
ENABLE = "smtp_email_enable"
SERVER = "smtp_server_name"
PORT = "smtp_port"
USERNAME = "smtp_server_username"
PASSWORD = "smtp_server_password"
SENDER = "smtp_default_sender"
RECIPIENT = "smtp_default_recipient"
TIMEOUT = "smtp_timeout"
SECURITY = "smtp_security"

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")
_HOST = re.compile(r"^[A-Za-z0-9.:_\[\]-]{1,253}$")
_ADDRESS = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
MAX_VALUE = 65535


@dataclass(frozen=True)
class SettingInput:
    """One setting of a create request."""

    name: str
    value: str
    description: str = ""
    category: str = ""
    type: str = ""
    is_public: bool = False
    is_hidden: bool = False
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SettingRecord:
    id: str
    project_id: str
    user_id: str
    name: str
    value: str
    description: str
    category: str
    type: str
    is_public: bool
    is_hidden: bool
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @property
    def secret(self) -> bool:
        return "password" in self.name.lower()

    @property
    def shown_value(self) -> str:
        """The value as views show it: a secret's is masked."""
        return MASK if self.secret and self.value else self.value


@dataclass(frozen=True)
class SmtpSettings:
    """A project's SMTP settings, read for one e-mail."""

    server: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    username: str | None
    password: str | None
    timeout: float
    security: str


def _record(row: ProjectSetting) -> SettingRecord:
    return SettingRecord(id=row.id, project_id=row.project_id, user_id=row.user_id, name=row.name,
                         value=row.value, description=row.description, category=row.category,
                         type=row.type, is_public=row.is_public, is_hidden=row.is_hidden,
                         metadata=dict(row.meta or {}), created_at=row.created_at,
                         updated_at=row.updated_at)


def parse_flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidInput(f"settings.{name}: {value!r} is not 1/0 or true/false.", f"settings.{name}")


def _integer(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise InvalidInput(f"settings.{name}: {value!r} is not a whole number.", f"settings.{name}") from None
    if not low <= number <= high:
        raise InvalidInput(f"settings.{name}: {number} is not between {low} and {high}.", f"settings.{name}")
    return number


def addresses(name: str, value: str) -> tuple[str, ...]:
    found = tuple(part.strip() for part in value.split(",") if part.strip())
    for address in found:
        if not _ADDRESS.match(address):
            raise InvalidInput(f"settings.{name}: {address!r} is not an e-mail address.", f"settings.{name}")
    return found


def check_setting(setting: SettingInput) -> None:
    """Refuse a setting whose name or value is wrong, naming it."""
    name = setting.name
    if not _NAME.match(name):
        raise InvalidInput(f"settings.name: {name!r} must be 1 to 255 letters, digits or _ . : -.",
                           "settings.name")
    if len(setting.value) > MAX_VALUE:
        raise InvalidInput(f"settings.{name}: the value is longer than {MAX_VALUE} characters.",
                           f"settings.{name}")
    value = setting.value
    if name == ENABLE:
        parse_flag(name, value)
    elif name == PORT:
        _integer(name, value, 1, 65535)
    elif name == TIMEOUT:
        _integer(name, value, 1, 300)
    elif name == SERVER and value and not _HOST.match(value.strip()):
        raise InvalidInput(f"settings.{name}: {value!r} is not a host name or address.", f"settings.{name}")
    elif name in (SENDER, RECIPIENT) and value:
        addresses(name, value)
        if name == SENDER and "," in value:
            raise InvalidInput(f"settings.{name}: only one sender address is allowed.", f"settings.{name}")
    elif name == SECURITY and value.strip().lower() not in ("none", "starttls", "ssl"):
        raise InvalidInput(f"settings.{name}: {value!r} is not none, starttls or ssl.", f"settings.{name}")


def store_settings(session: Session, project_id: str, user_id: str, settings: list[SettingInput],
                   now: datetime) -> list[SettingRecord]:
    """Create or replace each setting (by name) of the project; all are checked first, so
    a refused request writes nothing."""
    names = [s.name for s in settings]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise InvalidInput(f"settings: {duplicate!r} is given twice.", "settings.name")
    for setting in settings:
        check_setting(setting)
    existing = {row.name: row for row in session.scalars(select(ProjectSetting).where(
        ProjectSetting.project_id == project_id, ProjectSetting.name.in_(names)))}
    stored = []
    for setting in settings:
        row = existing.get(setting.name)
        if row is None:
            row = ProjectSetting(id=str(uuid.uuid4()), project_id=project_id, name=setting.name,
                                 created_at=now)
            session.add(row)
        row.user_id = user_id
        row.value = setting.value
        row.description = setting.description
        row.category = setting.category
        row.type = setting.type
        row.is_public = setting.is_public
        row.is_hidden = setting.is_hidden
        row.meta = dict(setting.metadata)
        row.updated_at = now
        stored.append(row)
    session.flush()
    return [_record(row) for row in stored]


def list_settings(session: Session, project_id: str) -> list[SettingRecord]:
    rows = session.scalars(select(ProjectSetting).where(ProjectSetting.project_id == project_id)
                           .order_by(ProjectSetting.name))
    return [_record(row) for row in rows]


def get_setting(session: Session, project_id: str, name: str) -> SettingRecord:
    row = session.scalar(select(ProjectSetting).where(ProjectSetting.project_id == project_id,
                                                       ProjectSetting.name == name))
    if row is None:
        raise NotFound(f"Setting {name} could not be found in project {project_id}.")
    return _record(row)


def delete_setting(session: Session, project_id: str, name: str) -> None:
    result = session.execute(delete(ProjectSetting).where(ProjectSetting.project_id == project_id,
                                                          ProjectSetting.name == name))
    if not getattr(result, "rowcount", 0):
        raise NotFound(f"Setting {name} could not be found in project {project_id}.")


def delete_all(session: Session, project_id: str) -> None:
    session.execute(delete(ProjectSetting).where(ProjectSetting.project_id == project_id))


def smtp_settings(session: Session, project_id: str, default_sender: str) -> SmtpSettings | None:
    """The project's SMTP settings when e-mail is on and a server and a recipient are
    set; None otherwise (no e-mail)."""
    values: dict[str, Any] = {row.name: row.value for row in session.scalars(
        select(ProjectSetting).where(ProjectSetting.project_id == project_id,
                                     ProjectSetting.name.like("smtp\\_%", escape="\\")))}
    try:
        if not parse_flag(ENABLE, values.get(ENABLE, "0")):
            return None
    except InvalidInput:
        return None
    server = (values.get(SERVER) or "").strip()
    recipients = addresses(RECIPIENT, values.get(RECIPIENT) or "")
    if not server or not recipients:
        return None
    return SmtpSettings(server=server, port=_integer(PORT, values.get(PORT) or "25", 1, 65535),
                        sender=(values.get(SENDER) or "").strip() or default_sender,
                        recipients=recipients, username=values.get(USERNAME) or None,
                        password=values.get(PASSWORD) or None,
                        timeout=float(_integer(TIMEOUT, values.get(TIMEOUT) or "10", 1, 300)),
                        security=(values.get(SECURITY) or "none").strip().lower())
