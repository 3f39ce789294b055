"""Secrets held in the OpenStack Key Manager (Barbican): Cairn's one way to Barbican.

Everything Cairn asks of Barbican goes through this module:

- `KeyManager.read_payload(secret_id, credentials, field)`: a secret's payload bytes, read
  through castellan (OpenStack's key-manager library) as `credentials` say: the caller's
  token (`CallerToken`, at the API: "may *this caller* read it?") or Cairn's service user
  (`ServiceUser`, in jobs, which have no caller);
- `KeyManager.grant_service_read(secret_id, caller, field)`: adds Cairn's service user to
  the secret's `read` ACL, as the caller (the secret's owner may do that), so that jobs
  can read the secret later without the caller's token. Barbican ACLs live in Barbican,
  so the grant outlives Cairn's database (`cairn workload import` relies on that).

Failures are Cairn's own errors, and nothing else escapes:

    CairnError
    ├── InvalidInput (400, naming `field`)  no such secret, not readable with these
    │                                       credentials, malformed id, empty payload
    └── Unavailable (503)                    Barbican or Keystone unreachable or failing (5xx)

A payload is held in memory only as long as the caller needs it: this module never
writes one anywhere, nor logs it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from cairn.config import BarbicanSettings, KeystoneAuthSettings
from cairn.errors import CairnError, InvalidInput, Unavailable

log = logging.getLogger(__name__)

#: Keystone's catalog type of the Key Manager service
SERVICE_TYPE = "key-manager"


@dataclass(frozen=True)
class CallerToken:
    """The caller's own Keystone token, scoped to `project_id`."""

    token: str = field(repr=False)
    project_id: str


@dataclass(frozen=True)
class ServiceUser:
    """Cairn's service user (`[keystone_authtoken]`), for work without a caller."""


Credentials = CallerToken | ServiceUser


class KeyManager:
    """Reads Barbican secrets through castellan; one per process, thread-safe."""

    def __init__(self, keystone: KeystoneAuthSettings, barbican: BarbicanSettings) -> None:
        keystone.check()
        assert keystone.auth_url and keystone.password  # check() refused a section without them
        self._keystone = keystone
        self._auth_url: str = keystone.auth_url
        self._password: str = keystone.password
        self._barbican = barbican
        self._lock = threading.Lock()
        self._manager: Any = None
        self._service_user_id: str | None = None

    # -- what the rest of Cairn calls ------------------------------------------------

    def read_payload(self, secret_id: str, credentials: Credentials, field: str = "secret_uuid") -> bytes:
        """The payload of secret `secret_id` as `credentials` may read it; `InvalidInput`
        naming `field` when there is no such secret or it is not theirs to read,
        `Unavailable` when Barbican (or Keystone) cannot answer."""
        from castellan.common import exception as km_exceptions

        _check_id(secret_id, field)
        try:
            managed = self._castellan().get(self._context(credentials), secret_id)
            payload = managed.get_encoded()
        except km_exceptions.ManagedObjectNotFoundError:
            raise InvalidInput(f"{field}: Barbican has no secret {secret_id}.", field) from None
        except km_exceptions.KeyManagerError as exc:
            # castellan raises it while handling the client's error: that is the reason
            raise self._failure(exc, secret_id, field, exc.__context__) from None
        except Exception as exc:  # noqa: BLE001 - every other failure is mapped, none escapes
            raise self._failure(exc, secret_id, field, exc) from None
        if not payload:
            raise InvalidInput(f"{field}: Barbican secret {secret_id} has no payload to derive a key from.",
                               field)
        return bytes(payload)

    def grant_service_read(self, secret_id: str, caller: CallerToken, field: str = "secret_uuid") -> None:
        """Add Cairn's service user to the secret's `read` ACL, as the caller; users
        already listed stay, and so does the project's own access."""
        _check_id(secret_id, field)
        try:
            user_id = self.service_user_id()
            session = self._token_session(caller)
            url = f"{self._endpoint(session)}/v1/secrets/{secret_id}/acl"
            current = session.get(url, raise_exc=False)
            if current.status_code >= 400:
                raise _HTTPStatus(current.status_code, current.text)
            read = current.json().get("read") or {}
            users = list(read.get("users") or [])
            if user_id in users:
                return
            body = {"read": {"users": [*users, user_id],
                             "project-access": read.get("project-access", True)}}
            answer = session.put(url, json=body, raise_exc=False)
            if answer.status_code >= 400:
                raise _HTTPStatus(answer.status_code, answer.text)
        except CairnError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is mapped, none escapes
            raise self._failure(exc, secret_id, field, exc, granting=True) from None
        log.info("Barbican secret %s: read access granted to Cairn's service user %s", secret_id, user_id)

    def service_user_id(self) -> str:
        """The Keystone id of Cairn's service user (asked once)."""
        if self._service_user_id is None:
            session = self._service_session()
            try:
                self._service_user_id = session.get_user_id()
            except Exception as exc:  # noqa: BLE001 - mapped to Cairn's errors
                raise _unavailable(exc, "Keystone") from None
        assert self._service_user_id is not None
        return self._service_user_id

    # -- castellan and keystoneauth --------------------------------------------------

    def _castellan(self) -> Any:
        with self._lock:
            if self._manager is None:
                from castellan import key_manager, options
                from oslo_config import cfg

                conf = cfg.ConfigOpts()
                conf([], project="cairn", default_config_files=[], default_config_dirs=[])
                options.set_defaults(conf, backend="barbican", barbican_endpoint=self._barbican.barbican_endpoint,
                                     auth_endpoint=self._keystone.auth_url,
                                     barbican_endpoint_type=self._barbican.barbican_endpoint_type)
                conf.set_override("barbican_region_name", self._region(), group="barbican")
                # No retries: an unreachable Barbican is a 503 now, not a minute from now.
                conf.set_override("number_of_retries", 0, group="barbican")
                conf.set_override("verify_ssl", not self._keystone.insecure, group="barbican")
                if self._keystone.cafile is not None:
                    conf.set_override("verify_ssl_path", str(self._keystone.cafile), group="barbican")
                self._manager = key_manager.API(conf)
            return self._manager

    def _context(self, credentials: Credentials) -> Any:
        if isinstance(credentials, CallerToken):
            from castellan.common.credentials import keystone_token

            return keystone_token.KeystoneToken(token=credentials.token, auth_url=self._keystone.auth_url,
                                                project_id=credentials.project_id)
        from castellan.common.credentials import keystone_password

        k = self._keystone
        return keystone_password.KeystonePassword(
            password=self._password, auth_url=self._auth_url, username=k.username,
            user_domain_name=k.user_domain_name, project_name=k.project_name,
            project_domain_name=k.project_domain_name)

    def _region(self) -> str | None:
        return self._barbican.barbican_region_name or self._keystone.region_name

    def _verify(self) -> bool | str:
        if self._keystone.insecure:
            return False
        return str(self._keystone.cafile) if self._keystone.cafile is not None else True

    def _token_session(self, caller: CallerToken) -> Any:
        from keystoneauth1 import session
        from keystoneauth1.identity import v3

        auth = v3.Token(auth_url=self._auth_url, token=caller.token, project_id=caller.project_id)
        return session.Session(auth=auth, verify=self._verify(), timeout=self._keystone.http_connect_timeout,
                               app_name="cairn")

    def _service_session(self) -> Any:
        from cairn.auth.keystone import service_session

        return service_session(self._keystone)

    def _endpoint(self, session: Any) -> str:
        if self._barbican.barbican_endpoint:
            return self._barbican.barbican_endpoint.rstrip("/")
        url = session.get_endpoint(service_type=SERVICE_TYPE, interface=self._barbican.barbican_endpoint_type,
                                   region_name=self._region())
        if not url:
            raise Unavailable("Keystone's catalog has no key-manager (Barbican) endpoint; set "
                              "[barbican] barbican_endpoint.")
        return str(url).rstrip("/")

    # -- what a failure means ----------------------------------------------------------

    def _failure(self, exc: BaseException, secret_id: str, field: str, reason: Any,
                 granting: bool = False) -> CairnError:
        status = _status_of(reason) or _status_of(exc)
        if status in (401, 403):
            if granting:
                return InvalidInput(f"{field}: Barbican does not let this caller grant Cairn read access to "
                                    f"secret {secret_id}; only its owner or a project admin can.", field)
            return InvalidInput(f"{field}: Barbican secret {secret_id} is not readable by this project.", field)
        if status == 404:
            return InvalidInput(f"{field}: Barbican has no secret {secret_id}.", field)
        if status is not None and 400 <= status < 500:
            return InvalidInput(f"{field}: Barbican refused secret {secret_id} ({status}).", field)
        if isinstance(reason, ValueError) or isinstance(exc, ValueError):
            return InvalidInput(f"{field}: {secret_id!r} is not a Barbican secret id.", field)
        return _unavailable(reason if isinstance(reason, BaseException) else exc, "Barbican")


class _HTTPStatus(Exception):
    def __init__(self, status_code: int, text: str) -> None:
        super().__init__(f"{status_code}: {text[:200]}")
        self.status_code = status_code


def _status_of(exc: Any) -> int | None:
    for name in ("status_code", "http_status"):
        value = getattr(exc, name, None)
        if isinstance(value, int):
            return value
    return None


def _unavailable(exc: BaseException, service: str) -> Unavailable:
    log.warning("the key manager failed: %s: %s", type(exc).__name__, exc)
    return Unavailable(f"The key manager ({service}) cannot be reached or failed ({type(exc).__name__}); "
                       "encrypted workloads cannot be created or used until it answers. Try again later.")


def _check_id(secret_id: str, field: str) -> None:
    # Barbican ids are UUIDs; anything with a slash or space would change the URL asked.
    if not secret_id or any(c in secret_id for c in "/?#% \t\r\n"):
        raise InvalidInput(f"{field}: {secret_id!r} is not a Barbican secret id.", field)
