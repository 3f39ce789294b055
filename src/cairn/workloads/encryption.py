"""Encrypted workloads (docs/encryption.md): what a create must say, what it asks of
Barbican, and how jobs read the key.

A workload created with `"encryption": true, "secret_uuid": ID` keeps its data in a
repository of its own on its target, whose data key is wrapped under a key derived from
the payload of Barbican secret ID (engine/crypto.py, `SecretPayload`). At create, with
the caller's token: the secret must be readable by the caller's project (else 400 naming
`workload.secret_uuid`), and Cairn's service user is added to its read ACL; then the
service user must be able to read it too, since every later job (the create job itself,
scheduled snapshots, restores, import) reads it as the service, with no caller present.
Barbican down is a 503 and the create writes nothing. One live workload per secret.
"""

from __future__ import annotations

from collections.abc import Callable

from cairn.auth.key_manager import CallerToken, KeyManager, ServiceUser
from cairn.errors import InvalidInput

#: the request field every refusal about the secret names
SECRET_FIELD = "workload.secret_uuid"
ENCRYPTION_FIELD = "workload.encryption"


def requested_secret(encryption: bool | None, secret_uuid: str | None) -> str | None:
    """The secret id an encrypted create names, or None for an unencrypted one.

    Clients since Trilio 4.2 send both fields always: `false` with "" or null means
    unencrypted. A secret without encryption is refused rather than ignored: the caller
    asked for something Cairn would not do."""
    secret = (secret_uuid or "").strip()
    if not encryption:
        if secret:
            raise InvalidInput(f"{SECRET_FIELD}: a secret is given but encryption is false; set "
                               "encryption to true to encrypt the workload with it.", SECRET_FIELD)
        return None
    if not secret:
        raise InvalidInput(f"{SECRET_FIELD}: an encrypted workload needs the id of a Barbican secret.",
                           SECRET_FIELD)
    return secret


def secret_confirmer(key_manager: KeyManager | None, token: str | None,
                     project_id: str) -> Callable[[str], None]:
    """What a create calls, once its other fields passed, to confirm the secret with
    Barbican as the caller (`token`, scoped to `project_id`) and let the service read it."""
    def confirm(secret_uuid: str) -> None:
        if key_manager is None:
            raise InvalidInput(f"{ENCRYPTION_FIELD}: this service has no key manager: encrypted workloads "
                               "need auth_strategy = keystone and a Barbican.", ENCRYPTION_FIELD)
        if not token:
            raise InvalidInput(f"{ENCRYPTION_FIELD}: an encrypted workload needs the caller's token.",
                               ENCRYPTION_FIELD)
        caller = CallerToken(token, project_id)
        key_manager.read_payload(secret_uuid, caller, SECRET_FIELD)
        key_manager.grant_service_read(secret_uuid, caller, SECRET_FIELD)
        try:
            key_manager.read_payload(secret_uuid, ServiceUser(), SECRET_FIELD)
        except InvalidInput:
            raise InvalidInput(f"{SECRET_FIELD}: Cairn's service user cannot read secret {secret_uuid} even "
                               "with read access granted; its jobs could not open the workload.",
                               SECRET_FIELD) from None
    return confirm


class ServiceKeys:
    """`storage.WorkloadKeys` through the key manager, as Cairn's service user."""

    def __init__(self, key_manager: KeyManager) -> None:
        self.key_manager = key_manager

    def payload(self, secret_uuid: str) -> bytes:
        return self.key_manager.read_payload(secret_uuid, ServiceUser(), "secret_uuid")
