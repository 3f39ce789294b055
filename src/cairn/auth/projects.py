"""Which projects exist: asked of Keystone under `auth_strategy = keystone`.

Orphaned workloads (a workload on a backup target whose project is gone) and reassign
(the new project must exist) need to know. With local tokens there is no registry of
projects (a project is any name a token carries), so `LocalProjects` knows of none that
is gone and accepts every name; Keystone's answer is final where it is used.
"""

from __future__ import annotations

from typing import Protocol

from cairn.config import KeystoneAuthSettings


class ProjectDirectory(Protocol):
    def missing(self, project_ids: set[str]) -> set[str]:
        """The projects among `project_ids` known not to exist."""
        ...


class LocalProjects:
    """Local tokens: no project is known to be gone."""

    def missing(self, project_ids: set[str]) -> set[str]:
        return set()


class KeystoneProjects:
    """Asks Keystone (as Cairn's service user) for each project; one that Keystone does
    not find is gone. Keystone unreachable is `Unavailable`, never "gone"."""

    def __init__(self, settings: KeystoneAuthSettings) -> None:
        self._settings = settings

    def missing(self, project_ids: set[str]) -> set[str]:
        from keystoneauth1 import exceptions as ks_exceptions

        from cairn.auth.keystone import KEYSTONE_ERRORS, identity_client, keystone_failure

        if not project_ids:
            return set()
        gone = set()
        try:
            client = identity_client(self._settings)
            for project_id in sorted(project_ids):
                try:
                    client.projects.get(project_id)
                except ks_exceptions.NotFound:
                    gone.add(project_id)
        except KEYSTONE_ERRORS as exc:
            raise keystone_failure(exc, self._settings) from exc
        return gone


def project_directory(auth_strategy: str, settings: KeystoneAuthSettings) -> ProjectDirectory:
    return KeystoneProjects(settings) if auth_strategy == "keystone" else LocalProjects()
