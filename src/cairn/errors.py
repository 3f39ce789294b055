"""The domain exceptions every layer raises, and what kind of failure each one is.

Inner layers (engine, targets, platforms, workloads, jobs) raise these; only the API
layer turns them into HTTP faults (`cairn.api.faults`), and only the CLI turns them
into exit messages. Each class carries the *kind* of failure, never an HTTP detail, so
the engine stays free of HTTP while the API maps each kind to exactly one status::

    CairnError                      anything Cairn reports on purpose
    ├── InvalidInput                a request or argument is wrong (names the field)
    ├── NotFound                    the thing asked for does not exist (for this caller)
    ├── Conflict                    the thing exists but its state forbids the action
    ├── NotAuthenticated            no credentials, or credentials that are not valid
    ├── NotAuthorized               valid credentials, but a policy rule says no
    ├── TooLarge                    a body or value above a configured limit
    └── Unavailable                 a dependency (database, identity, target) is down

The engine has its own subtree under these (`cairn.engine.errors`), e.g. a corrupt
chunk is an `Unavailable`-free, data-level `CairnError`.
"""

from __future__ import annotations


class CairnError(Exception):
    """Base of every error Cairn raises on purpose; `message` is written for a human."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(CairnError):
    """A request body, query or argument is wrong; `field` names it (dotted path)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(CairnError):
    """The resource does not exist, or the caller may not know that it exists."""


class Conflict(CairnError):
    """The resource exists but its current state forbids the action."""


class NotAuthenticated(CairnError):
    """Credentials are missing, unknown or expired."""


class NotAuthorized(CairnError):
    """The caller is known but a policy rule refuses the action."""


class TooLarge(CairnError):
    """A request body or value is above a configured limit."""


class Unavailable(CairnError):
    """A service Cairn depends on could not be reached; retrying later may work."""
