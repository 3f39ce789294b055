"""The global job scheduler switch: stored, so it survives restarts. On by default."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.db.models import ServiceSetting

_KEY = "global_job_scheduler"


def is_enabled(session: Session) -> bool:
    value = session.scalar(select(ServiceSetting.value).where(ServiceSetting.key == _KEY))
    return value != "false"


def set_enabled(session: Session, enabled: bool) -> None:
    row = session.get(ServiceSetting, _KEY)
    if row is None:
        session.add(ServiceSetting(key=_KEY, value="true" if enabled else "false"))
    else:
        row.value = "true" if enabled else "false"
