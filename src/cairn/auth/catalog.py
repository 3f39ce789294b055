"""Cairn in the Keystone catalog: the `workloads` service and its endpoints.

OpenStack clients find a service through the catalog in their token, by service type.
Cairn registers as type `workloads`, name `cairn` (what workloadmgr clients look for),
with one endpoint per interface (public, internal, admin) at `<URL>/v1/$(project_id)s`;
Keystone puts the caller's project into `$(project_id)s` when it hands out the catalog.

Registration is idempotent: what exists as asked is left alone, an endpoint whose URL
changed is updated in place, a missing one is created; running it twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from keystoneauth1 import exceptions as ks_exceptions

from cairn.errors import InvalidInput, NotAuthorized

SERVICE_TYPE = "workloads"
SERVICE_NAME = "cairn"
SERVICE_DESCRIPTION = "Cairn: backup and recovery of workloads (workloadmgr v1 API)"
INTERFACES = ("public", "internal", "admin")
ENDPOINT_PATH = "/v1/$(project_id)s"


@dataclass(frozen=True)
class CatalogChange:
    """One line of what `register` did: the service or an endpoint, and how it ended."""

    kind: str  # "service" or "endpoint"
    name: str  # the service type, or the endpoint's interface
    url: str | None
    outcome: str  # "created", "updated" or "unchanged"
    id: str


def endpoint_url(base_url: str, field: str = "public_url") -> str:
    """`https://backup.example.com:8780` → `https://backup.example.com:8780/v1/$(project_id)s`."""
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise InvalidInput(f"{field}: {base_url!r} is not an http:// or https:// base URL.", field)
    if url.endswith("/v1"):
        url = url[:-3]
    return url + ENDPOINT_PATH


def register(client: Any, urls: dict[str, str], region: str | None) -> list[CatalogChange]:
    """Make the catalog hold the `workloads` service with an endpoint per interface of
    `urls` (interface → base URL) in `region`. `client` is a python-keystoneclient v3
    client whose user may manage the catalog (the admin role)."""
    endpoints = {interface: endpoint_url(base, f"{interface}_url") for interface, base in urls.items()}
    try:
        return _register(client, endpoints, region)
    except ks_exceptions.Forbidden:
        raise NotAuthorized("Keystone refused to change the catalog: the user of "
                            "[keystone_authtoken] needs the admin role to register Cairn.") from None


def _register(client: Any, endpoints: dict[str, str], region: str | None) -> list[CatalogChange]:
    changes: list[CatalogChange] = []
    found = client.services.list(type=SERVICE_TYPE, name=SERVICE_NAME)
    if found:
        service = found[0]
        outcome = "unchanged"
        if not getattr(service, "enabled", True):
            service = client.services.update(service, enabled=True)
            outcome = "updated"
    else:
        service = client.services.create(name=SERVICE_NAME, type=SERVICE_TYPE,
                                         description=SERVICE_DESCRIPTION, enabled=True)
        outcome = "created"
    changes.append(CatalogChange("service", SERVICE_TYPE, None, outcome, service.id))
    for interface, url in endpoints.items():
        existing = [e for e in client.endpoints.list(service=service, interface=interface)
                    if (getattr(e, "region_id", None) or None) == (region or None)]
        if not existing:
            endpoint = client.endpoints.create(service=service, url=url, interface=interface,
                                               region=region, enabled=True)
            changes.append(CatalogChange("endpoint", interface, url, "created", endpoint.id))
            continue
        endpoint = existing[0]
        if endpoint.url != url or not getattr(endpoint, "enabled", True):
            endpoint = client.endpoints.update(endpoint, url=url, enabled=True)
            changes.append(CatalogChange("endpoint", interface, url, "updated", endpoint.id))
        else:
            changes.append(CatalogChange("endpoint", interface, url, "unchanged", endpoint.id))
    return changes
