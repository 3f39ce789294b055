"""`cairn scheduler`: fires due jobschedules and reaps stale jobs; run two or more.

Replicas never fire one time twice (due rows are claimed with `FOR UPDATE SKIP
LOCKED`) and reaping is a conditional UPDATE, so every replica can do both. The reaper
fails running jobs whose lease expired (their worker died) and rings again the doorbell
of queued jobs nobody claimed (a message lost on the broker, no worker running).
"""

from __future__ import annotations

import logging

import click

from cairn.commands import settings_from
from cairn.commands.roles import HealthServer, check_ready, database_answers, health_option, loop_alive, wait_for_signal
from cairn.commands.serve import configure_logging
from cairn.runtime import build_runtime

log = logging.getLogger(__name__)


@click.command()
@health_option()
@click.pass_context
def scheduler(ctx: click.Context, health_port: int | None) -> None:
    """Run the jobschedule loop and the reaper; jobs go to `cairn worker` over the broker."""
    settings = settings_from(ctx)
    configure_logging(settings.log_level)
    runtime = build_runtime(settings, broker=True)
    health = None
    try:
        check_ready(settings, runtime.database, "scheduler")
        runtime.start_background(scheduler=True)
        if health_port is not None:
            health = HealthServer(health_port, "scheduler", lambda: {
                "database": database_answers(runtime.database),
                "scheduler": loop_alive(runtime.scheduler), "reaper": runtime.reaper.running})
            health.start()
        log.info("scheduler running (owner %s)", runtime.runner.owner if runtime.runner else "?")
        wait_for_signal()
        log.info("scheduler stopping")
    finally:
        if health is not None:
            health.stop()
        runtime.close()
