"""The service clock: naive UTC `datetime`s, the form every timestamp is stored in.

Inner layers take "now" from here (or from an injected callable in tests of the
scheduler), never from `datetime.now()` directly, so time can be controlled.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as a naive UTC datetime with microseconds."""
    return datetime.now(UTC).replace(tzinfo=None)


def isoformat(moment: datetime | None) -> str | None:
    """The API's timestamp form: `YYYY-MM-DDTHH:MM:SS.ffffff`, no zone suffix."""
    if moment is None:
        return None
    return moment.isoformat(timespec="microseconds")  # naive: no zone suffix
