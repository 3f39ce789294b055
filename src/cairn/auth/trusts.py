"""Keystone trusts: how Cairn acts for a user when that user's token is long gone.

A trust (Keystone's OS-TRUST API) delegates roles on one project from a user, the
trustor, to Cairn's service user, the trustee, with impersonation: a token Cairn gets
through the trust (its own password plus the trust id) says the trustor, the project and
the delegated roles, so every OpenStack service sees the user's request, not Cairn's.

- `KeystoneTrusts.create`: made with the trustor's own token (Keystone lets only the
  trustor delegate their roles), the roles named by `[trustee] trusted_roles`.
- `KeystoneTrusts.act`: the trust-scoped token, as an `ActingUser`; a trust that was
  revoked, deleted or expired is `TrustRefused`.
- `KeystoneTrusts.delete`: as the service user (Keystone's default policy lets an admin,
  and the trustor, delete a trust); one already gone counts as deleted.

What a job does with the token is in `cairn.auth.acting`.
"""

from __future__ import annotations

import threading

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from keystoneauth1.identity import v3
from keystoneclient.v3 import client as ks_client

from cairn.auth.acting import ActingUser, TrustRefused
from cairn.auth.keystone import KEYSTONE_ERRORS, keystone_failure, service_session
from cairn.config import KeystoneAuthSettings
from cairn.errors import NotAuthorized, Unavailable


class KeystoneTrusts:
    """Creates, uses and deletes trusts to Cairn's service user."""

    def __init__(self, settings: KeystoneAuthSettings) -> None:
        self._settings = settings
        self._service = service_session(settings)
        self._lock = threading.Lock()
        self._trustee_id: str | None = None

    def _verify(self) -> bool | str:
        if self._settings.insecure:
            return False
        return str(self._settings.cafile) if self._settings.cafile is not None else True

    @property
    def trustee_user_id(self) -> str:
        """Cairn's service user id (asked of Keystone once)."""
        with self._lock:
            if self._trustee_id is None:
                try:
                    self._trustee_id = self._service.get_user_id()
                except KEYSTONE_ERRORS as exc:
                    raise keystone_failure(exc, self._settings) from None
            assert self._trustee_id is not None
            return self._trustee_id

    def _identity_url(self) -> str:
        """The Identity v3 endpoint trust calls go to: the one tokens are validated on."""
        assert self._settings.auth_url
        try:
            url = self._service.get_endpoint(service_type="identity", interface=self._settings.interface,
                                             region_name=self._settings.region_name)
        except KEYSTONE_ERRORS:
            url = None
        base = (url or self._settings.auth_url).rstrip("/")
        return base if base.endswith("/v3") else f"{base}/v3"

    def create(self, user_token: str, trustor_user_id: str, project_id: str,
               role_names: tuple[str, ...]) -> str:
        """A new trust from the holder of `user_token` to Cairn; its Keystone id."""
        trustee = self.trustee_user_id
        session = ks_session.Session(auth=token_endpoint.Token(self._identity_url(), user_token),
                                     verify=self._verify(), timeout=self._settings.http_connect_timeout,
                                     app_name="cairn")
        client = ks_client.Client(session=session)
        try:
            trust = client.trusts.create(trustee_user=trustee, trustor_user=trustor_user_id,
                                         project=project_id, role_names=list(role_names),
                                         impersonation=True)
        except ks_exceptions.Forbidden as exc:
            raise NotAuthorized(
                f"Keystone refused to create a trust delegating the roles {', '.join(role_names)} on "
                f"project {project_id} to Cairn's service user: the caller must hold each of them "
                f"there ({_detail(exc)}).") from None
        except ks_exceptions.NotFound as exc:
            # Keystone's answer both for a role nobody has and for one the trustor lacks
            raise NotAuthorized(
                f"Keystone would not delegate the roles {', '.join(role_names)} on project {project_id}: the "
                f"caller holds no such role there ({_detail(exc)}).") from None
        except (ks_exceptions.Unauthorized, ks_exceptions.BadRequest) as exc:
            raise NotAuthorized(f"Keystone refused the caller's token for creating a trust ({_detail(exc)}).") \
                from None
        except KEYSTONE_ERRORS as exc:
            raise keystone_failure(exc, self._settings) from None
        return str(trust.id)

    def delete(self, keystone_trust_id: str) -> None:
        """Delete the trust in Keystone; one that is already gone is fine."""
        client = ks_client.Client(session=self._service, interface=self._settings.interface,
                                  region_name=self._settings.region_name)
        try:
            client.trusts.delete(keystone_trust_id)
        except ks_exceptions.NotFound:
            return
        except ks_exceptions.Forbidden:
            raise Unavailable(f"Keystone does not let Cairn's service user delete the trust {keystone_trust_id}: "
                              "give it the admin role (Keystone's policy: an admin or the trustor).") from None
        except KEYSTONE_ERRORS as exc:
            raise keystone_failure(exc, self._settings) from None

    def act(self, keystone_trust_id: str) -> ActingUser:
        """A token through the trust, as the service user; `TrustRefused` when Keystone
        will not give one (the trust was revoked, deleted or has expired)."""
        settings = self._settings
        assert settings.auth_url and settings.password
        auth = v3.Password(auth_url=settings.auth_url, username=settings.username,
                           password=settings.password, user_domain_name=settings.user_domain_name,
                           trust_id=keystone_trust_id)
        session = ks_session.Session(auth=auth, verify=self._verify(), timeout=settings.http_connect_timeout,
                                     app_name="cairn")
        try:
            access = auth.get_access(session)
        except (ks_exceptions.Unauthorized, ks_exceptions.NotFound, ks_exceptions.Forbidden) as exc:
            raise TrustRefused(_detail(exc)) from None
        except KEYSTONE_ERRORS as exc:
            raise keystone_failure(exc, settings) from None
        if not (access.user_id and access.project_id and access.auth_token):
            raise TrustRefused("Keystone's answer names no user, project or token")
        return ActingUser(trust_id=keystone_trust_id, user_id=access.user_id, project_id=access.project_id,
                          token=access.auth_token, expires_at=access.expires, session=session)


def _detail(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return " ".join(str(message).split())[:300]
