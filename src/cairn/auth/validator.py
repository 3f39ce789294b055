"""The one interface every token validator implements (local tokens, Keystone tokens)."""

from __future__ import annotations

from typing import Protocol

from cairn.auth.context import Identity


class TokenValidator(Protocol):
    def validate(self, token: str) -> Identity:
        """The identity behind `token`; raises NotAuthenticated when it is not valid,
        Unavailable when the identity service cannot be reached."""
        ...
