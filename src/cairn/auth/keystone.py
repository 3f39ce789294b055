"""Keystone tokens: Cairn as an OpenStack service (`auth_strategy = keystone`).

Cairn logs in to Keystone as its own service user (`[keystone_authtoken]`, through a
keystoneauth1 session with the Identity v3 password plugin) and asks Keystone about each
caller's token (`GET /v3/auth/tokens` with `X-Subject-Token`, through
python-keystoneclient). The token's project, user and roles become the caller's
`Identity`; the configured `admin_role` becomes Cairn's `admin` role.

A validated token is remembered for `token_cache_time` seconds and never past its
expiry, so a burst of requests costs one round trip to Keystone; tokens Keystone refused
are never remembered. The price of the cache is the keystonemiddleware one: a token
revoked in Keystone keeps working here until its entry ages out.

Keystone down, or refusing Cairn's own credentials, is `Unavailable` (503), never a pass
and never a crash: without Keystone nobody can be authenticated.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client as ks_client

from cairn.auth.context import Identity
from cairn.config import KeystoneAuthSettings
from cairn.errors import NotAuthenticated, Unavailable

#: Cairn's own name for the administrator role (policy rules say `role:admin`)
CAIRN_ADMIN_ROLE = "admin"
#: most tokens remembered at once; past that the cache starts over
CACHE_ENTRIES = 10_000

_UNREACHABLE = (ks_exceptions.ConnectFailure, ks_exceptions.ConnectionError,
                ks_exceptions.DiscoveryFailure, ks_exceptions.EndpointNotFound,
                ks_exceptions.RetriableConnectionFailure, ks_exceptions.ServiceUnavailable,
                ks_exceptions.GatewayTimeout, ks_exceptions.BadGateway,
                ks_exceptions.InternalServerError)


def service_session(settings: KeystoneAuthSettings) -> ks_session.Session:
    """A keystoneauth1 session logged in as Cairn's service user (lazily: nothing is
    sent until the first request)."""
    settings.check()
    assert settings.auth_url and settings.password  # check() refused a section without them
    auth = v3.Password(auth_url=settings.auth_url, username=settings.username,
                       password=settings.password, project_name=settings.project_name,
                       user_domain_name=settings.user_domain_name,
                       project_domain_name=settings.project_domain_name)
    verify: bool | str = not settings.insecure
    if settings.cafile is not None and not settings.insecure:
        verify = str(settings.cafile)
    return ks_session.Session(auth=auth, verify=verify, timeout=settings.http_connect_timeout,
                              app_name="cairn")


def identity_client(settings: KeystoneAuthSettings,
                    session: ks_session.Session | None = None) -> ks_client.Client:
    """A python-keystoneclient v3 client on the service session, talking to the Identity
    endpoint of `interface` (and `region_name`) from the catalog."""
    return ks_client.Client(session=session or service_session(settings),
                            interface=settings.interface, region_name=settings.region_name)


#: every failure of a call to Keystone (`keystone_failure` says what it means)
KEYSTONE_ERRORS = ks_exceptions.ClientException


def keystone_failure(exc: Exception, settings: KeystoneAuthSettings) -> Unavailable:
    """The 503 for a Keystone that cannot be reached or will not accept Cairn itself."""
    if isinstance(exc, ks_exceptions.Forbidden):
        return Unavailable("Keystone does not let Cairn's service user validate tokens; "
                           "give it the `service` role in its project.")
    if isinstance(exc, ks_exceptions.Unauthorized):
        return Unavailable("The identity service (Keystone) refused Cairn's own service "
                           "credentials ([keystone_authtoken] username/password); no token "
                           "can be validated until that is fixed.")
    if not isinstance(exc, _UNREACHABLE):
        return Unavailable(f"The identity service (Keystone) failed: {exc}")
    return Unavailable(f"The identity service (Keystone) at {settings.auth_url} cannot be "
                       f"reached ({type(exc).__name__}); try again later.")


@dataclass(frozen=True)
class _Entry:
    identity: Identity
    expires_at: float  # the token's own expiry, epoch seconds
    fresh_until: float  # time.monotonic() past which Keystone is asked again


class KeystoneTokenValidator:
    """Validates Keystone tokens with the service's own credentials, caching the answers."""

    def __init__(self, settings: KeystoneAuthSettings, admin_role: str = CAIRN_ADMIN_ROLE,
                 client: ks_client.Client | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._admin_role = admin_role
        self._client = client or identity_client(settings)
        self._monotonic = monotonic
        self._wall = wall
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        #: token key → the lock held while Keystone is asked about it
        self._asking: dict[str, threading.Lock] = {}

    def remembered(self, token: str) -> Identity | None:
        return self._cached(hashlib.sha256(token.encode()).hexdigest())

    def validate(self, token: str) -> Identity:
        key = hashlib.sha256(token.encode()).hexdigest()
        identity = self._cached(key)
        if identity is not None:
            return identity
        # One question per token at a time: a client's burst of requests with a new token
        # costs one round trip, not one each (which could swamp Keystone into timeouts).
        with self._lock:
            asking = self._asking.setdefault(key, threading.Lock())
        with asking:
            try:
                identity = self._cached(key)
                if identity is not None:
                    return identity
                entry = self._ask_keystone(token)
                if self._settings.token_cache_time > 0:
                    with self._lock:
                        if len(self._cache) >= CACHE_ENTRIES:
                            self._cache.clear()
                        self._cache[key] = entry
                return entry.identity
            finally:
                with self._lock:
                    if self._asking.get(key) is asking:
                        del self._asking[key]

    def _cached(self, key: str) -> Identity | None:
        entry = self._cache.get(key)
        if entry is None or entry.fresh_until <= self._monotonic():
            return None
        if entry.expires_at <= self._wall():
            raise NotAuthenticated("The token has expired.")
        return entry.identity

    def _ask_keystone(self, token: str) -> _Entry:
        try:
            access = self._client.tokens.validate(token, include_catalog=False)
        except (ks_exceptions.NotFound, ks_exceptions.BadRequest):
            # Keystone's answer for a token it did not issue, or that expired or was revoked.
            raise NotAuthenticated("The request you have made requires authentication.") from None
        except KEYSTONE_ERRORS as exc:
            raise keystone_failure(exc, self._settings) from None
        if not access.project_id:
            raise NotAuthenticated("The token is not scoped to a project; Cairn needs a "
                                   "project-scoped token.")
        expires_at = _epoch(access.expires)
        if expires_at <= self._wall():
            raise NotAuthenticated("The token has expired.")
        fresh_until = self._monotonic() + min(float(self._settings.token_cache_time),
                                              expires_at - self._wall())
        return _Entry(Identity(project_id=access.project_id, user_id=access.user_id,
                               roles=self._roles(access.role_names)),
                      expires_at=expires_at, fresh_until=fresh_until)

    def _roles(self, names: list[str] | None) -> frozenset[str]:
        """The token's roles in Cairn's terms: `admin` means `admin_role` and nothing else."""
        roles = set(names or ()) - {CAIRN_ADMIN_ROLE}
        if self._admin_role in (names or ()):
            roles.add(CAIRN_ADMIN_ROLE)
        return frozenset(roles)


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    raise NotAuthenticated("The token has no expiry Cairn can read.")
