"""`cairn serve`: the embedded default — API, job pool and reaper in one process."""

from __future__ import annotations

import logging
import os
import sys

import click

from cairn.auth.context import Identity
from cairn.auth.tokens import has_tokens, issue_token
from cairn.commands import settings_from
from cairn.config import Settings
from cairn.db.migrate import upgrade
from cairn.runtime import Runtime, build_runtime


def configure_logging(level: str) -> None:
    from cairn.api.middleware import RequestIdFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def ensure_admin_token(runtime: Runtime) -> str | None:
    """On first start (no token at all), create an admin token and write it to a 0600 file.
    Not with Keystone: there, Keystone's users are the only callers."""
    if runtime.settings.auth_strategy != "local":
        return None
    with runtime.database.unit_of_work() as session:
        if has_tokens(session):
            return None
        secret = issue_token(session, Identity("admin", "admin", frozenset({"admin"})), ttl=None)
    path = runtime.settings.admin_token_path
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)
    return secret


def prepare(settings: Settings) -> Runtime:
    from cairn.commands.target import prepare_targets

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    runtime = build_runtime(settings)
    prepare_targets(settings, runtime.targets, runtime.database, "serve")
    return runtime


@click.command()
@click.option("--host", default=None, help="Listen address (default 0.0.0.0).")
@click.option("--port", type=int, default=None, help="Listen port (default 8780).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Data directory (default $CAIRN_DATA_DIR, else ~/.local/share/cairn).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, data_dir: str | None) -> None:
    """Run the API, the job pool and the reaper in one process."""
    import uvicorn

    from cairn.api.app import create_app

    settings = settings_from(ctx, host=host, port=port, data_dir=data_dir)
    configure_logging(settings.log_level)
    runtime = prepare(settings)
    secret = ensure_admin_token(runtime)
    if secret:
        click.echo(f"Created an admin token (project 'admin'), saved to {settings.admin_token_path}:")
        click.echo(secret)
    runtime.start_background()
    try:
        uvicorn.run(create_app(runtime), host=settings.host, port=settings.port,
                    log_level=settings.log_level.lower(), access_log=False)
    finally:
        runtime.close()
