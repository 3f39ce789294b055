"""Remembered encodings of the workload list views, reused while a workload's version holds.

A list answers with mostly the same, unchanged workloads request after request, and
building and encoding each view again was most of a long list's cost. So each
workload's views are encoded once per version (its `updated_at`; see
`cairn.workloads.records` for why that is one) and kept as bytes. A list request reads
the version of every listed workload, fetches and encodes only the workloads whose
current version it has not seen, and joins bytes.

A summary is kept whole. A detail view is kept in pieces around the values that change
without a new version, which are filled in on every request:

    head <storage_usage> middle <true|false> [,"nextrun":<seconds>] tail

`head` is the object up to and including `"storage_usage":`; `middle` runs from
`,"instances":` through `"global_jobscheduler":` inside `jobschedule`; `tail` starts with
the `}` that closes `jobschedule`. The joined bytes are exactly `orjson.dumps` of what
`views.workload_detail` builds (a test compares them byte for byte).

There is one cache per application, with one map of encodings by workload id per
variant: summaries or details, the endpoint the links name and, for details, whether the
caller may see backup targets. Each map keeps at most `max_entries` entries (about 0.6 KB
a summary and 1.2 KB a detail with one instance); when it is full its oldest tenth is
dropped.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson

from cairn.api import views
from cairn.clock import utcnow
from cairn.workloads.records import (
    NO_USAGE,
    StorageUsage,
    WorkloadRecord,
    WorkloadSummary,
    WorkloadVersion,
    as_datetime,
)

MAX_ENTRIES = 20_000

V = TypeVar("V")


@dataclass(frozen=True, slots=True, eq=False)  # compared by identity: `None in pieces` stays cheap
class DetailPieces:
    """One version of a workload's detail view, encoded around its per-request values."""

    head: bytes
    middle: bytes
    tail: bytes
    #: the schedule is enabled: `nextrun` is shown while the global scheduler is on
    scheduled: bool
    #: the stored jobschedule, for the rare `nextrun` computed from it
    schedule: dict[str, Any]


class _Entries(Generic[V]):
    """Encodings of one variant (endpoint, caller kind) by workload id, each with its
    version; bounded. Reads take no lock (a dict read is atomic), writes do."""

    def __init__(self, max_entries: int) -> None:
        self.entries: dict[str, tuple[object, V]] = {}
        self._max = max(1, max_entries)
        self._lock = threading.Lock()

    def lookup(self, versions: Sequence[WorkloadVersion]) -> list[V | None]:
        """The encoding of each listed version, None where there is none yet."""
        get = self.entries.get
        return [entry[1] if (entry := get(workload_id)) is not None and entry[0] == version else None
                for workload_id, version, _ in versions]

    def put(self, workload_id: str, version: object, value: V) -> None:
        with self._lock:
            self.entries.pop(workload_id, None)  # re-inserted last: a dict keeps insertion order
            if len(self.entries) >= self._max:
                for old in list(itertools.islice(self.entries, max(1, self._max // 10))):
                    del self.entries[old]
            self.entries[workload_id] = (version, value)


class WorkloadViewCache:
    def __init__(self, appliance_timezone: str, max_entries: int = MAX_ENTRIES) -> None:
        self.appliance_timezone = appliance_timezone
        self._max_entries = max_entries
        self._variants: dict[Hashable, _Entries[Any]] = {}
        self._lock = threading.Lock()

    def _entries(self, variant: Hashable) -> _Entries[Any]:
        entries = self._variants.get(variant)
        if entries is None:
            with self._lock:
                entries = self._variants.setdefault(variant, _Entries(self._max_entries))
        return entries

    def summaries(self, versions: Sequence[WorkloadVersion],
                  fetch: Callable[[list[str]], dict[str, WorkloadSummary]], links: views.Links) -> bytes:
        """`{"workloads": [...]}` of the listed workloads, in their order; `fetch` reads
        the summaries of the ids whose version has no encoding yet."""
        entries: _Entries[bytes] = self._entries(("summary", links.endpoint))
        encoded = entries.lookup(versions)
        if None in encoded:
            missing = {v[0]: v[1] for v, body in zip(versions, encoded, strict=True) if body is None}
            fresh = {}
            for summary in fetch(list(missing)).values():
                body = orjson.dumps(views.workload_summary(summary, links))
                # Kept under the version listed: the row read is that version or, when a
                # write committed in between (no snapshot isolation), a newer one, which
                # is never wrong to show, and the next list sees the newer version.
                entries.put(summary.id, missing[summary.id], body)
                fresh[summary.id] = body
            encoded = [body if body is not None else fresh.get(v[0]) for v, body in zip(versions, encoded, strict=True)]
        return b"".join((b'{"workloads":[', b",".join([body for body in encoded if body is not None]), b"]}"))

    def details(self, versions: Sequence[WorkloadVersion],
                fetch: Callable[[list[str]], dict[str, WorkloadRecord]],
                usage: dict[str, StorageUsage], links: views.Links, *, global_jobscheduler: bool,
                backup_target_label: Callable[[str], str] | None, now: datetime) -> bytes:
        """`{"workloads": [...]}` of detail views, equal to encoding `views.workload_detail`
        of each; `fetch` reads the workloads whose version has no encoding yet."""
        entries: _Entries[DetailPieces] = self._entries(
            ("detail", links.endpoint, backup_target_label is not None))
        pieces = entries.lookup(versions)
        if None in pieces:
            missing = {v[0]: v[1] for v, p in zip(versions, pieces, strict=True) if p is None}
            fresh = {}
            for record in fetch(list(missing)).values():
                made = self._detail_pieces(record, links, backup_target_label)
                entries.put(record.id, missing[record.id], made)
                fresh[record.id] = made
            pieces = [p if p is not None else fresh.get(v[0]) for v, p in zip(versions, pieces, strict=True)]
        flag = b"true" if global_jobscheduler else b"false"
        usage_json = {wid: _usage_json(u) for wid, u in usage.items() if u is not NO_USAGE}
        # Workloads on the same schedule share their next fire time: convert and encode
        # each one once (keyed by the value as read).
        nextruns: dict[object, bytes] = {}
        out: list[bytes] = []
        for (workload_id, _, fire_value), p in zip(versions, pieces, strict=True):
            if p is None:
                continue
            nextrun = b""
            if global_jobscheduler and p.scheduled:
                nextrun = nextruns.get(fire_value, b"")
                if not nextrun:
                    next_fire_at = as_datetime(fire_value)
                    nextrun = _nextrun_json(views.nextrun(next_fire_at, p.schedule, now))
                    if next_fire_at is not None and next_fire_at > now:
                        nextruns[fire_value] = nextrun  # else it came from this schedule alone
            out += (b",", p.head, usage_json.get(workload_id, _NO_USAGE_JSON), p.middle, flag, nextrun, p.tail)
        if out:
            out[0] = b'{"workloads":['
        else:
            out.append(b'{"workloads":[')
        out.append(b"]}")
        return b"".join(out)

    def _detail_pieces(self, record: WorkloadRecord, links: views.Links,
                       backup_target_label: Callable[[str], str] | None) -> DetailPieces:
        view = views.workload_detail(record, links, appliance_timezone=self.appliance_timezone,
                                     global_jobscheduler=False, backup_target_label=backup_target_label,
                                     now=utcnow())
        keys = list(view)
        at_usage, at_schedule = keys.index("storage_usage"), keys.index("jobschedule")
        schedule = dict(view["jobschedule"])
        if list(schedule)[-1] != "global_jobscheduler" or at_usage == 0 or at_schedule in (
                at_usage + 1, len(keys) - 1):
            raise AssertionError("the detail view's shape no longer matches its cached pieces")
        del schedule["global_jobscheduler"]
        before = {key: view[key] for key in keys[:at_usage]}
        between = {key: view[key] for key in keys[at_usage + 1:at_schedule]}
        after = {key: view[key] for key in keys[at_schedule + 1:]}
        return DetailPieces(
            head=orjson.dumps(before)[:-1] + b',"storage_usage":',
            middle=(b"," + orjson.dumps(between)[1:-1] + b',"jobschedule":'
                    + orjson.dumps(schedule)[:-1] + b',"global_jobscheduler":'),
            tail=b"}," + orjson.dumps(after)[1:],
            scheduled=bool(schedule["enabled"]), schedule=record.jobschedule)


_NO_USAGE_JSON = orjson.dumps(views.storage_usage_view(NO_USAGE))


def _nextrun_json(seconds: int | None) -> bytes:
    return b"" if seconds is None else b',"nextrun":%d' % seconds


def _usage_json(usage: StorageUsage) -> bytes:
    return _NO_USAGE_JSON if usage is NO_USAGE or usage == NO_USAGE else orjson.dumps(views.storage_usage_view(usage))
