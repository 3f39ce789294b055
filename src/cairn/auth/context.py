"""The request context: the caller's identity as every inner layer sees it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Identity:
    """What a validated token says about its holder."""

    project_id: str
    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


@dataclass(frozen=True)
class RequestContext:
    """The identity plus the project the request acts on and its request id."""

    identity: Identity
    project_id: str
    request_id: str
    #: the caller's own token, for calls made on their behalf (Barbican, a Keystone
    #: trust, Nova); never logged or shown
    auth_token: str | None = field(default=None, repr=False, compare=False)

    @property
    def user_id(self) -> str:
        return self.identity.user_id

    @property
    def is_admin(self) -> bool:
        return self.identity.is_admin
