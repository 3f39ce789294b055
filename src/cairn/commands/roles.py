"""What `cairn api`, `cairn scheduler` and `cairn worker` share.

Only `cairn serve` (the embedded default) and `cairn db upgrade` change the schema. A role
process never does: replicas started at once would race to migrate, and an old binary
must not run on a newer schema (nor a new one on an older). So a role refuses to start
unless the database is exactly at the newest migration this build knows, and says how to
fix it. It also refuses to start without `transport_url`: without a broker its jobs
would reach no worker.

Worker and scheduler answer `GET /healthcheck` on an optional `--health-port` (a tiny
HTTP server in a daemon thread): 200 while their loops run and the database answers.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import click
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from cairn import __version__
from cairn.config import Settings
from cairn.db.database import Database
from cairn.db.migrate import alembic_config
from cairn.errors import CairnError

log = logging.getLogger(__name__)


class NotReady(CairnError):
    """A role cannot start: the schema or the broker setting is not what it needs."""


def schema_problem(database: Database) -> str | None:
    """Why the database is not at the newest schema, or None when it is."""
    head = ScriptDirectory.from_config(alembic_config(database.url)).get_current_head()
    try:
        with database.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        where = database.engine.url.render_as_string(hide_password=True)
        cause = (exc.orig if isinstance(exc, DBAPIError) else None) or exc
        return f"the database {where} does not answer ({type(cause).__name__}: {cause})."
    if current == head:
        return None
    return (f"the database is at schema revision {current or 'none (empty)'}, this Cairn needs {head}: "
            "run `cairn db upgrade` (once, from any host) and start this role again.")


def check_ready(settings: Settings, database: Database, role: str) -> None:
    """Refuse to start `role` without a broker or on a database not at the newest schema."""
    if not settings.transport_url:
        raise NotReady(f"cairn {role} needs transport_url (CAIRN_TRANSPORT_URL), the broker its "
                       "jobs travel through; without one, run everything in `cairn serve`.")
    problem = schema_problem(database)
    if problem:
        raise NotReady(f"cairn {role} will not start: {problem}")


def database_answers(database: Database) -> bool:
    try:
        with database.reader() as session:
            session.execute(select(1))
        return True
    except Exception:  # noqa: BLE001 - any failure to reach the database means unhealthy
        return False


def loop_alive(component: object) -> bool:
    """Whether a component's background thread (`_thread`, as Scheduler keeps it) is alive.

    Scheduler has no public flag for it; reading its thread is the least intrusive probe."""
    thread = getattr(component, "_thread", None)
    return isinstance(thread, threading.Thread) and thread.is_alive()


class HealthServer:
    """`GET /healthcheck` → 200 `{"role", "version", "status": "ok", ...}` or 503."""

    def __init__(self, port: int, role: str, probe: Callable[[], dict[str, Any]],
                 host: str = "0.0.0.0") -> None:
        self.role = role
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server naming)
                if self.path.split("?")[0] != "/healthcheck":
                    self.send_error(404)
                    return
                facts = probe()
                healthy = all(v is not False for v in facts.values())
                body = json.dumps({"role": outer.role, "version": __version__,
                                   "status": "ok" if healthy else "error", **facts}).encode()
                self.send_response(200 if healthy else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: quiet
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_for_signal() -> int:
    """Block until SIGTERM or SIGINT; returns the signal number."""
    received = threading.Event()
    which: list[int] = []

    def handle(signum: int, _frame: Any) -> None:
        which.append(signum)
        received.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)
    while not received.wait(1.0):
        pass
    return which[0]


def health_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--health-port", type=int, default=None,
                        help="Answer GET /healthcheck on this port (default: no health endpoint).")
