"""Operations endpoints: `GET /healthcheck` and Prometheus `GET /metrics`.

Neither needs a token and neither is part of the workloadmgr API (both are left out of
the OpenAPI document). `install(app)` adds the routes and the request-metrics middleware.

Request counts and latencies are this process's own (each api replica is scraped on
its own). Everything about jobs and data comes from the database, the one place that
knows what every worker did: jobs by kind and state, bytes backed up and restored, and
snapshot durations. Those are read at most once per `DB_METRICS_TTL` seconds, whatever
the number of scrapers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import func, select
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn import __version__
from cairn.db.database import Database
from cairn.db.models import Job, Restore, Snapshot

router = APIRouter()

DB_METRICS_TTL = 10.0
SNAPSHOT_SECONDS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, float("inf"))


@router.get("/healthcheck", include_in_schema=False)
def healthcheck(request: Request) -> Response:
    """200 while this api answers and reaches its database; 503 with the reason otherwise."""
    runtime = request.app.state.runtime
    body: dict[str, Any] = {"role": getattr(request.app.state, "role", "serve"), "version": __version__}
    try:
        with runtime.database.reader() as session:
            session.execute(select(1))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database is the answer
        body.update(status="error", database=f"{type(exc).__name__}")
        return JSONResponse(body, status_code=503)
    body.update(status="ok", database="ok")
    return JSONResponse(body)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """ASGI middleware: counts requests and times them by method, route template and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("cairn_http_requests", "HTTP requests answered.",
                                ("method", "route", "status"), registry=registry)
        self.latency = Histogram("cairn_http_request_duration_seconds", "HTTP request latency.",
                                 ("method", "route"), registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_seeing_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_seeing_status)
        finally:
            # the route template, not the path: ids would make a series per resource
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.requests.labels(method, route, str(status)).inc()
            self.latency.labels(method, route).observe(time.perf_counter() - started)


class DatabaseCollector:
    """Prometheus collector of what the database knows about jobs, bytes and durations."""

    def __init__(self, database: Database, ttl: float = DB_METRICS_TTL) -> None:
        self._database = database
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._read_at = float("-inf")

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at > self._ttl:
                self._cached = self._read()
                self._read_at = time.monotonic()
            yield from self._cached

    def _read(self) -> list[Metric]:
        jobs = GaugeMetricFamily("cairn_jobs", "Jobs in the database by kind and state.",
                                 labels=("kind", "state"))
        with self._database.reader() as session:
            for kind, state, count in session.execute(
                    select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)):
                jobs.add_metric((kind, state), count)
            backed_up = session.scalar(select(func.coalesce(func.sum(Snapshot.uploaded_size), 0))
                                       .where(Snapshot.status == "available"))
            restored = session.scalar(select(func.coalesce(func.sum(Restore.size), 0))
                                      .where(Restore.status == "available"))
            spans = session.execute(select(Snapshot.created_at, Snapshot.finished_at).where(
                Snapshot.status == "available", Snapshot.finished_at.is_not(None))).all()
        durations = [(finished - created).total_seconds() for created, finished in spans if finished]
        buckets = [(_bucket_name(bound), sum(1 for d in durations if d <= bound))
                   for bound in SNAPSHOT_SECONDS_BUCKETS]
        histogram = HistogramMetricFamily("cairn_snapshot_duration_seconds",
                                          "Durations of the available snapshots.",
                                          buckets=buckets, sum_value=sum(durations))
        return [jobs,
                CounterMetricFamily("cairn_backed_up_bytes", "Bytes uploaded by available snapshots.",
                                    value=int(backed_up or 0)),
                CounterMetricFamily("cairn_restored_bytes", "Bytes written by finished restores.",
                                    value=int(restored or 0)),
                histogram]


def _bucket_name(bound: float) -> str:
    return "+Inf" if bound == float("inf") else str(bound)


def install(app: FastAPI) -> None:
    """Add `/healthcheck`, `/metrics` and the request metrics to an app made by `create_app`."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(app.state.runtime.database))
    app.state.metrics_registry = registry
    app.include_router(router)
    app.add_middleware(RequestMetrics, registry=registry)
