"""`cairn api`: the HTTP API alone, one of any number of stateless replicas.

It validates, writes the database and rings each job's doorbell over the broker; it runs
no job, no scheduler and no reaper (those are `cairn worker` and `cairn scheduler`).
Besides the workloadmgr API it answers `GET /healthcheck` and `GET /metrics`.
"""

from __future__ import annotations

import click

from cairn.commands import settings_from
from cairn.commands.roles import check_ready
from cairn.commands.serve import configure_logging
from cairn.commands.target import prepare_targets
from cairn.runtime import build_runtime


@click.command()
@click.option("--host", default=None, help="Listen address (default 0.0.0.0).")
@click.option("--port", type=int, default=None, help="Listen port (default 8780).")
@click.pass_context
def api(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the HTTP API only; jobs go to `cairn worker` over the broker."""
    import uvicorn

    from cairn.api.app import create_app

    settings = settings_from(ctx, host=host, port=port)
    configure_logging(settings.log_level)
    runtime = build_runtime(settings, broker=True)
    try:
        check_ready(settings, runtime.database, "api")
        prepare_targets(settings, runtime.targets, runtime.database, "api")
        app = create_app(runtime)
        app.state.role = "api"
        uvicorn.run(app, host=settings.host, port=settings.port,
                    log_level=settings.log_level.lower(), access_log=False)
    finally:
        runtime.close()
