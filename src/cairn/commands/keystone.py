"""`cairn keystone register`: put Cairn in the Keystone catalog (idempotent)."""

from __future__ import annotations

import click

from cairn.commands import settings_from


@click.group()
def keystone() -> None:
    """Cairn as an OpenStack service."""


@keystone.command("register")
@click.option("--public-url", required=True,
              help="Base URL clients reach Cairn at, e.g. https://backup.example.com:8780.")
@click.option("--internal-url", default=None, help="Base URL of the internal endpoint (default: the public one).")
@click.option("--admin-url", default=None, help="Base URL of the admin endpoint (default: the public one).")
@click.option("--region", default=None,
              help="Region of the endpoints (default: [keystone_authtoken] region_name).")
@click.pass_context
def register(ctx: click.Context, public_url: str, internal_url: str | None, admin_url: str | None,
             region: str | None) -> None:
    """Create the `workloads` service and its endpoints (<URL>/v1/$(project_id)s), with
    the credentials of [keystone_authtoken]; what already exists is left as it is."""
    from cairn.auth.catalog import register as register_catalog
    from cairn.auth.keystone import KEYSTONE_ERRORS, identity_client, keystone_failure

    settings = settings_from(ctx).keystone
    urls = {"public": public_url, "internal": internal_url or public_url,
            "admin": admin_url or public_url}
    client = identity_client(settings)
    try:
        changes = register_catalog(client, urls, region or settings.region_name)
    except KEYSTONE_ERRORS as exc:
        raise keystone_failure(exc, settings) from None
    for change in changes:
        where = f" {change.url}" if change.url else ""
        click.echo(f"{change.kind} {change.name}{where}: {change.outcome} ({change.id})")
