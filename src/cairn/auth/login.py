"""Logging a dashboard user in to Keystone with a user name and password.

The dashboard's browser never talks to Keystone: Cairn asks Keystone for a
project-scoped token (`POST /v3/auth/tokens`, the Identity v3 password method, through
keystoneauth1) at the `auth_url` of its own `[keystone_authtoken]` section, and hands the
token back. So Keystone needs no CORS settings and no public address the browser can
reach, and the browser then calls the v1 API with that token like any other client. The
password passes through this process once and is kept nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from cairn.auth.keystone import KEYSTONE_ERRORS, keystone_failure
from cairn.config import KeystoneAuthSettings
from cairn.errors import NotAuthenticated


@dataclass(frozen=True)
class PasswordLogin:
    """Who logs in, and to which project."""

    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"


def keystone_token(settings: KeystoneAuthSettings, login: PasswordLogin) -> str:
    """A token Keystone issues for `login`, scoped to its project.

    Raises NotAuthenticated when Keystone refuses the credentials or the project (it
    answers both with 401 and does not say which, on purpose), Unavailable when Keystone
    cannot be reached."""
    assert settings.auth_url  # auth_strategy = keystone requires it (KeystoneAuthSettings.check)
    auth = v3.Password(auth_url=settings.auth_url, username=login.username, password=login.password,
                       user_domain_name=login.user_domain_name, project_name=login.project_name,
                       project_domain_name=login.project_domain_name)
    verify: bool | str = not settings.insecure
    if settings.cafile is not None and not settings.insecure:
        verify = str(settings.cafile)
    session = ks_session.Session(auth=auth, verify=verify, timeout=settings.http_connect_timeout,
                                 app_name="cairn-dashboard")
    try:
        token = session.get_token()
    except (ks_exceptions.Unauthorized, ks_exceptions.NotFound, ks_exceptions.BadRequest):
        raise NotAuthenticated("Keystone refused the user name, password or project "
                               f"(user {login.username!r} in domain {login.user_domain_name!r}, "
                               f"project {login.project_name!r}).") from None
    except KEYSTONE_ERRORS as exc:
        raise keystone_failure(exc, settings) from None
    if not token:
        raise NotAuthenticated("Keystone issued no token.")
    return token
