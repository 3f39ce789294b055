"""Job doorbells and notifications over a broker, through oslo.messaging.

When `transport_url` is set, the roles run as separate processes: whoever commits a job
(the api, the scheduler, a worker) casts `run_job(job_id)` to the topic `cairn-worker`
with `RabbitDispatcher`, and every `cairn worker` serves that topic with `WorkerServer`,
running `JobRunner.run` on a bounded thread pool. A job whose payload names a `worker`
is cast to that worker's own queue, for jobs that must run where a disk is reachable.

The message is only a doorbell: it carries the job id and nothing else, it is not
acknowledged to the sender, and losing it is harmless. The job row stays `queued` and
the reaper (in `cairn scheduler`) rings again after `requeue_after`; claiming is an
atomic UPDATE, so two doorbells for one job still run it once.

A broker restart needs nothing from Cairn: the rabbit driver reconnects every
connection by itself (its defaults: 1 s, then 2 s longer each try, at most 30 s apart),
a worker's server resumes consuming, and the doorbells that died with the broker's
(non-durable) queues are rung again by the reaper.
"""

from __future__ import annotations

import importlib
import logging
import threading
import warnings
from typing import Any

from oslo_config import cfg

with warnings.catch_warnings():
    # oslo.messaging's server pulls in oslo.service, whose default backend is eventlet
    # (seconds to load, and deprecated). Cairn runs on threads: choose that backend
    # before anything asks for one. Eventlet still gets imported (and warns): hush it.
    warnings.simplefilter("ignore")
    from oslo_service import backend as _service_backend

    try:
        _service_backend.init_backend(_service_backend.BackendType.THREADING)
    except _service_backend.exceptions.BackendAlreadySelected:  # the embedding process chose
        pass
    import oslo_messaging

from cairn.db.database import Database
from cairn.db.models import Job
from cairn.jobs.dispatch import WORKER_KEY
from cairn.jobs.runner import JobRunner

log = logging.getLogger(__name__)

TOPIC = "cairn-worker"
#: the broker exchange of Cairn's RPC and notifications (oslo's `control_exchange`)
EXCHANGE = "cairn"
NOTIFICATION_TOPIC = "notifications"
RPC_VERSION = "1.0"
#: how many times a cast is retried when the broker is unreachable; never forever (the
#: oslo default), since an API request waits on it, and the reaper rings again anyway
CAST_RETRIES = 1


class Messaging:
    """One process's connection to the broker: the RPC and notification transports.

    oslo.messaging reads its options from an oslo.config object; Cairn keeps its own
    settings, so this uses a private `ConfigOpts` that no command line ever parses.
    """

    def __init__(self, url: str, executor_threads: int) -> None:
        self.url = url
        self.conf = _private_conf(executor_threads)
        self.rpc = oslo_messaging.get_rpc_transport(self.conf, url=url)
        self._notifications: Any = None
        self._lock = threading.Lock()

    def notification_transport(self) -> Any:
        with self._lock:
            if self._notifications is None:
                self._notifications = oslo_messaging.get_notification_transport(self.conf, url=self.url)
            return self._notifications

    def notifier(self, publisher_id: str) -> oslo_messaging.Notifier:
        # Not the oslo default (retry forever): a notification is sent after a job's
        # commit, on the worker's job thread or the reaper's loop, and blocking those
        # until the broker returns would stall jobs for the sake of an announcement.
        return oslo_messaging.Notifier(self.notification_transport(), publisher_id=publisher_id,
                                       driver="messagingv2", topics=[NOTIFICATION_TOPIC],
                                       retry=CAST_RETRIES)

    def close(self) -> None:
        self.rpc.cleanup()
        if self._notifications is not None:
            self._notifications.cleanup()


def _private_conf(executor_threads: int) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    # oslo.messaging 18 registers its tracing and metrics options on the global CONF
    # only, yet reads them from the transport's conf: register them here too.
    for module, group in (("oslo_messaging._tracing.client", "oslo_messaging_tracing"),
                          ("oslo_messaging._metrics.client", "oslo_messaging_metrics")):
        try:
            options = getattr(importlib.import_module(module), group)
        except (ImportError, AttributeError):  # a release without that feature
            continue
        conf.register_opts(options, group=group)
    # Registered before the transport exists, because its driver reads them once, at
    # construction; registering the library's own option objects again is a no-op.
    from oslo_messaging import server, transport

    conf.register_opts(transport._transport_opts)
    conf.register_opts(server._pool_opts)
    conf.set_override("control_exchange", EXCHANGE)
    conf.set_override("executor_thread_pool_size", executor_threads)
    return conf


class RabbitDispatcher:
    """Rings a job's doorbell on the broker: cast to any worker, or to the named one."""

    def __init__(self, messaging: Messaging, database: Database) -> None:
        self._database = database
        self._client = oslo_messaging.get_rpc_client(
            messaging.rpc, oslo_messaging.Target(topic=TOPIC, version=RPC_VERSION), retry=CAST_RETRIES)

    def dispatch(self, job_id: str) -> None:
        try:
            worker = self._routed_to(job_id)
            client = self._client.prepare(server=worker) if worker else self._client
            client.cast({}, "run_job", job_id=job_id)
        except Exception:  # the row is committed: the reaper rings again, never the caller's error
            log.warning("could not ring the doorbell of job %s; the reaper will ring again",
                        job_id, exc_info=True)

    def _routed_to(self, job_id: str) -> str | None:
        with self._database.reader() as session:
            row = session.get(Job, job_id)
            payload = dict(row.payload or {}) if row is not None else {}
        worker = payload.get(WORKER_KEY)
        return str(worker) if worker else None

    def shutdown(self, wait: bool = True) -> None:
        """Nothing runs here; the transport is closed with its `Messaging`."""


class _WorkerEndpoint:
    target = oslo_messaging.Target(version=RPC_VERSION)

    def __init__(self, runner: JobRunner, slots: threading.BoundedSemaphore) -> None:
        self._runner = runner
        self._slots = slots

    def run_job(self, ctxt: dict[str, Any], job_id: str) -> None:
        # The executor's pool already bounds concurrency; the semaphore keeps the bound
        # exact should oslo.messaging size its pool differently.
        with self._slots:
            try:
                self._runner.run(job_id)
            except Exception:  # a crash must not kill the RPC server thread
                log.exception("job %s: runner crashed", job_id)


class WorkerServer:
    """The RPC server of `cairn worker`: serves `cairn-worker` and `cairn-worker.<name>`."""

    def __init__(self, messaging: Messaging, runner: JobRunner, name: str, threads: int) -> None:
        endpoint = _WorkerEndpoint(runner, threading.BoundedSemaphore(threads))
        with warnings.catch_warnings():
            # 'threading' is the only executor oslo.messaging 18 keeps; naming it still
            # warns, but older releases defaulted to 'blocking', so name it.
            warnings.simplefilter("ignore", DeprecationWarning)
            self._server = oslo_messaging.get_rpc_server(
                messaging.rpc, oslo_messaging.Target(topic=TOPIC, server=name), [endpoint],
                executor="threading")
        self.name = name
        self.running = False

    def start(self) -> None:
        self._server.start()
        self.running = True

    def stop(self) -> None:
        """Stop taking doorbells and wait for the running jobs to end."""
        if self.running:
            self._server.stop()
            self._server.wait()
            self.running = False
