"""The keys of an S3 backup target created over the API, from its `secret_ref`.

A target created over the API never stores S3 keys: it stores `secret_ref`, a reference
to where they are kept, and `lookup_s3_credentials` is the one place that turns the
reference into keys, each time a process opens the target (nothing is cached on disk).

Two forms of reference:

- A Barbican secret (`https://barbican.example.com:9311/v1/secrets/<uuid>`, or the
  bare `<uuid>`): its payload is a JSON object with `access_key` and `secret_key`
  (Trilio's `s3_access_key_id` and `s3_secret_access_key` are accepted too). Reading
  it needs a key manager (`SecretReader`, given to `credentials_lookup` by the runtime);
  without one, such a reference is refused with a message that says so.
- `file:///etc/cairn/s3-keys.json`: the same JSON object in a file on every host that
  runs Cairn, readable by Cairn alone (for installations without Barbican, and tests).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from cairn.auth.key_manager import CallerToken, KeyManager
from cairn.errors import InvalidInput

FIELD = "backup_target.secret_ref"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

#: reads a Barbican secret's payload (bytes or text) by its uuid; raises
#: `InvalidInput` for a secret that does not exist or cannot be read, `Unavailable`
#: when the key manager cannot be reached
SecretReader = Callable[[str], bytes | str]


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str = field(repr=False)


#: what a created S3 target's keys are looked up with: a reference in, keys out
CredentialsLookup = Callable[[str], S3Credentials]


def credentials_lookup(reader: SecretReader | None = None) -> CredentialsLookup:
    """The lookup the runtime hands to the target registry and the target service:
    `lookup_s3_credentials` with `reader` reading Barbican secrets (None: no key manager,
    so only file:// references work)."""
    def lookup(secret_ref: str) -> S3Credentials:
        return lookup_s3_credentials(secret_ref, reader)
    return lookup


def check_reference(secret_ref: str) -> str:
    """The reference, stripped, if it has one of the accepted forms; else a 400 naming it."""
    ref = secret_ref.strip()
    if ref.startswith("file://"):
        parsed = urlparse(ref)
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise InvalidInput("secret_ref: a file:// reference needs an absolute path (file:///etc/...).", FIELD)
        return ref
    if _barbican_id(ref) is None:
        raise InvalidInput(f"secret_ref: {secret_ref!r} is neither a Barbican secret reference "
                           "(.../v1/secrets/<uuid>, or the uuid) nor a file:// URL.", FIELD)
    return ref


def share_with_service(key_manager: KeyManager | None, secret_ref: str, token: str | None,
                       project_id: str) -> None:
    """Before a target is created on a Barbican `secret_ref`: the caller must be able to
    read the secret, and Cairn's service user is added to its read ACL (as for an
    encrypted workload's secret), since the jobs that open the target have no caller.
    A `file://` reference, or a service without a key manager, is left to the lookup."""
    secret_id = _barbican_id(check_reference(secret_ref))
    if secret_id is None or key_manager is None or not token:
        return
    caller = CallerToken(token, project_id)
    key_manager.read_payload(secret_id, caller, FIELD)
    key_manager.grant_service_read(secret_id, caller, FIELD)


def lookup_s3_credentials(secret_ref: str, reader: SecretReader | None = None) -> S3Credentials:
    """The S3 keys `secret_ref` points at, a Barbican secret read through `reader`;
    `InvalidInput` (naming `secret_ref`) when it cannot be read or holds no keys; what
    `reader` raises (`Unavailable` when the key manager is down) passes through."""
    ref = check_reference(secret_ref)
    if ref.startswith("file://"):
        path = Path(unquote(urlparse(ref).path))
        try:
            payload: bytes | str = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"secret_ref: cannot read {path}: {exc.strerror}.", FIELD) from None
    else:
        if reader is None:
            raise InvalidInput(f"secret_ref: {ref} is a Barbican secret, and this Cairn has no key manager "
                               "configured to read it; use a file:// reference.", FIELD)
        payload = reader(_barbican_id(ref) or ref)
    return _parse(payload, ref)


def _barbican_id(ref: str) -> str | None:
    if _UUID.fullmatch(ref):
        return ref
    parsed = urlparse(ref)
    if parsed.scheme in ("http", "https") and parsed.netloc:
        match = re.search(r"/secrets/(" + _UUID.pattern + r")/?$", parsed.path)
        if match:
            return match.group(1)
    return None


def _parse(payload: bytes | str, ref: str) -> S3Credentials:
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(f"secret_ref: the secret {ref} is not a JSON object with access_key and "
                           "secret_key.", FIELD) from None
    if not isinstance(document, dict):
        raise InvalidInput(f"secret_ref: the secret {ref} is not a JSON object.", FIELD)
    access = document.get("access_key") or document.get("s3_access_key_id")
    secret = document.get("secret_key") or document.get("s3_secret_access_key")
    if not isinstance(access, str) or not access or not isinstance(secret, str) or not secret:
        raise InvalidInput(f"secret_ref: the secret {ref} has no access_key and secret_key.", FIELD)
    return S3Credentials(access_key=access, secret_key=secret)


