"""The caller's own token, for the layers that act in OpenStack on the caller's behalf.

The API layer sets it for the request it serves (`cairn.api.deps.authenticate`); the
`openstack` platform reads it to ask Nova which servers the caller's project has. Jobs
on workers run without a caller (the variable is unset there).
"""

from __future__ import annotations

from contextvars import ContextVar

#: the X-Auth-Token of the request being served; None outside a request
caller_token: ContextVar[str | None] = ContextVar("cairn_caller_token", default=None)
