"""The one interface every token validator implements (local tokens, Keystone tokens)."""

from __future__ import annotations

from typing import Protocol

from cairn.auth.context import Identity


class TokenValidator(Protocol):
    def validate(self, token: str) -> Identity:
        """The identity behind `token`; raises NotAuthenticated when it is not valid,
        Unavailable when the identity service cannot be reached."""
        ...

    def remembered(self, token: str) -> Identity | None:
        """The identity behind `token` if it is known without blocking (no database,
        no network), else None; raises NotAuthenticated for a remembered token that has
        expired. Lets the API answer most requests without a thread of their own."""
        ...
