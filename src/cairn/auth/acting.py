"""The user a running job acts for, through a Keystone trust (`cairn.auth.trusts`).

While a job acts for a user, `acting_as(user)` makes the `ActingUser` what
`current_acting_user()` returns in that thread: a platform that calls cloud APIs
(OpenStack) takes the token and a keystoneauth1 session from there, so it needs no
credentials of its own and no knowledge of trusts; one that does not (local, libvirt)
never asks. Nothing here imports keystoneauth1: it is loaded only where Keystone is used.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cairn.errors import NotAuthenticated


class TrustRefused(NotAuthenticated):
    """Keystone would not give a token through a trust: revoked, deleted or expired."""


@dataclass(frozen=True)
class ActingUser:
    """A trust-scoped token: the trustor's identity as Keystone issued it to Cairn."""

    trust_id: str
    user_id: str
    project_id: str
    token: str = field(repr=False)
    expires_at: datetime | None
    #: a keystoneauth1 session that authenticates through the trust (renews its token)
    session: Any = field(repr=False, compare=False)


_ACTING: contextvars.ContextVar[ActingUser | None] = contextvars.ContextVar("cairn_acting_user",
                                                                           default=None)


def current_acting_user() -> ActingUser | None:
    """The user the running job acts for through a trust, or None (no trust)."""
    return _ACTING.get()


@contextlib.contextmanager
def acting_as(user: ActingUser | None) -> Iterator[None]:
    """Make `user` the current acting user of this thread for the block."""
    reset = _ACTING.set(user)
    try:
        yield
    finally:
        _ACTING.reset(reset)
