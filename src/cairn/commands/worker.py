"""`cairn worker`: runs the jobs whose doorbells it hears on the broker.

Run one per host that reaches the disks and the backup targets. It serves the topic
`cairn-worker` (any worker may take those jobs) and `cairn-worker.<name>` (jobs routed
to this host by a `worker` in their payload), `worker_threads` jobs at a time. On
SIGTERM it stops taking doorbells and lets its running jobs end; a worker killed outright
leaves its jobs to the reaper, which fails them once their lease expires.
"""

from __future__ import annotations

import logging

import click

from cairn.commands import settings_from
from cairn.commands.roles import HealthServer, check_ready, database_answers, health_option, wait_for_signal
from cairn.commands.serve import configure_logging
from cairn.commands.target import prepare_targets
from cairn.runtime import build_runtime

log = logging.getLogger(__name__)


@click.command()
@click.option("--name", default=None,
              help="This worker's name, which routed jobs name (default $CAIRN_WORKER_NAME, else the host name).")
@health_option()
@click.pass_context
def worker(ctx: click.Context, name: str | None, health_port: int | None) -> None:
    """Run jobs dispatched over the broker."""
    from cairn.jobs.messaging import WorkerServer

    settings = settings_from(ctx, worker_name=name)
    configure_logging(settings.log_level)
    runtime = build_runtime(settings, broker=True)
    server = health = None
    try:
        check_ready(settings, runtime.database, "worker")
        prepare_targets(settings, runtime.targets, runtime.database, "worker")
        assert runtime.messaging is not None and runtime.runner is not None  # check_ready saw a transport
        server = WorkerServer(runtime.messaging, runtime.runner, settings.worker_host, settings.worker_threads)
        server.start()
        if health_port is not None:
            health = HealthServer(health_port, "worker", lambda: {
                "name": settings.worker_host, "database": database_answers(runtime.database),
                "rpc_server": server.running if server else False})
            health.start()
        log.info("worker %s running (owner %s, %d threads)", settings.worker_host, runtime.runner.owner,
                 settings.worker_threads)
        wait_for_signal()
        log.info("worker %s stopping: letting running jobs end", settings.worker_host)
    finally:
        if health is not None:
            health.stop()
        if server is not None:
            server.stop()
        runtime.close()
