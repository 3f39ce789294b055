"""What the commands share: the client, finding a resource by name or id, `key=value`
options, waiting for a job to end, and turning API bodies into OpenStackClient columns.

Show commands print the API's own field names (so `-c status` and `-f json` speak the
wire contract); nested objects and lists are formattable columns: readable in a table,
real JSON and YAML structures with `-f json` / `-f yaml`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cliff import columns
from osc_lib import exceptions

from cairn_osc.client import Fault, WorkloadsClient

#: seconds between two reads of a job's status while waiting
POLL_SECONDS = 0.5


def client_of(command: Any) -> WorkloadsClient:
    client: WorkloadsClient = command.app.client_manager.workloads
    return client


@dataclass(frozen=True)
class Kind:
    """One kind of resource: its collection path, the keys its bodies use, its name."""

    path: str  # e.g. "/workloads"
    one: str  # key of a single resource's body: {"workload": {...}}
    many: str  # key of a list's body: {"workloads": [...]}
    noun: str  # for messages: "workload"


WORKLOAD = Kind("/workloads", "workload", "workloads", "workload")
SNAPSHOT = Kind("/snapshots", "snapshot", "snapshots", "snapshot")
RESTORE = Kind("/restores", "restore", "restores", "restore")
POLICY = Kind("/workload_policy", "policy", "policy_list", "policy")
WORKLOAD_TYPE = Kind("/workload_types", "workload_type", "workload_types", "workload type")


def find(client: WorkloadsClient, kind: Kind, name_or_id: str, **list_params: Any) -> dict[str, Any]:
    """The resource whose id is `name_or_id`, or else the only one of that name. When
    neither exists the server's own 404 is what the user sees."""
    try:
        body: dict[str, Any] = client.get(f"{kind.path}/{name_or_id}")[kind.one]
        return body
    except Fault as fault:
        if fault.status != 404:
            raise
        not_found = fault
    listed = client.get(kind.path, **list_params)[kind.many]
    named = [item for item in listed if item.get("name") == name_or_id]
    if len(named) > 1:
        raise exceptions.CommandError(
            f"More than one {kind.noun} is named '{name_or_id}': give its ID "
            f"({', '.join(item['id'] for item in named)}).")
    if not named:
        raise not_found
    # a list's entry may be a summary: read the whole resource by its id
    found: dict[str, Any] = client.get(f"{kind.path}/{named[0]['id']}")[kind.one]
    return found


def find_id(client: WorkloadsClient, kind: Kind, name_or_id: str, **list_params: Any) -> str:
    resource_id: str = find(client, kind, name_or_id, **list_params)["id"]
    return resource_id


def parse_value(text: str) -> Any:
    """A `key=value` option's value: JSON when it is an object or a list, else the text."""
    if text[:1] in "{[":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise exceptions.CommandError(f"{text!r} is not valid JSON: {exc}") from None
    return text


def key_values(pairs: Iterable[str] | None, option: str) -> dict[str, Any]:
    """`['a=1', 'b={"x": 1}']` → `{'a': '1', 'b': {'x': 1}}`; a pair without `=` is an
    error naming the option."""
    result: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise exceptions.CommandError(f"{option}: {pair!r} is not of the form KEY=VALUE.")
        result[key.strip()] = parse_value(value)
    return result


def read_json_file(path: str, option: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise exceptions.CommandError(f"{option}: cannot read {path}: {exc.strerror}.") from None
    except json.JSONDecodeError as exc:
        raise exceptions.CommandError(f"{option}: {path} is not valid JSON: {exc}") from None


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "))


class DictColumn(columns.FormattableColumn[dict[str, Any]]):
    """An object: one `key=value` line per key in a table (nested values as compact
    JSON), the object itself in JSON and YAML."""

    def human_readable(self) -> str:
        return "\n".join(f"{k}={_compact(v)}" for k, v in sorted((self._value or {}).items()))

    def machine_readable(self) -> dict[str, Any]:
        return dict(self._value or {})


class ListColumn(columns.FormattableColumn[list[Any]]):
    """A list: one item per line in a table (objects as compact JSON), the list itself
    in JSON and YAML."""

    def human_readable(self) -> str:
        return "\n".join(_compact(item) for item in self._value or [])

    def machine_readable(self) -> list[Any]:
        return list(self._value or [])


def formatted(value: Any) -> Any:
    """A field's value as a column: structures become formattable columns."""
    if isinstance(value, dict):
        return DictColumn(value)
    if isinstance(value, list):
        return ListColumn(value)
    return value


def show_columns(body: dict[str, Any], hidden: Sequence[str] = ("links",)) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """A ShowOne's (columns, values): the body's fields sorted by name, `links` left out."""
    names = tuple(sorted(k for k in body if k not in hidden))
    return names, tuple(formatted(body[k]) for k in names)


def list_rows(items: Iterable[dict[str, Any]], fields: Sequence[str],
              shape: dict[str, Callable[[Any], Any]] | None = None) -> list[tuple[Any, ...]]:
    """A Lister's rows: the `fields` of each item, through `shape[field]` where given."""
    shape = shape or {}
    rows = []
    for item in items:
        rows.append(tuple(shape[f](item.get(f)) if f in shape else formatted(item.get(f)) for f in fields))
    return rows


def wait_for(client: WorkloadsClient, path: str, key: str, until: Callable[[dict[str, Any]], bool],
             timeout: float | None) -> dict[str, Any]:
    """Read `path` until `until(body[key])`; its progress goes to stderr when that is a
    terminal (stdout stays the command's output)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(path)[key]
        if until(body):
            if sys.stderr.isatty():
                sys.stderr.write("\n")
            return body
        if sys.stderr.isatty() and "progress_percent" in body:
            sys.stderr.write(f"\r{body.get('status')}: {body.get('progress_percent')}% ")
            sys.stderr.flush()
        if deadline is not None and time.monotonic() > deadline:
            raise exceptions.CommandError(
                f"Gave up waiting after {timeout:g} s: {path.strip('/')} is still {body.get('status')}.")
        time.sleep(POLL_SECONDS)


def add_wait_options(parser: Any, what: str) -> None:
    parser.add_argument("--wait", action="store_true", help=f"Wait until the {what} has ended")
    parser.add_argument("--wait-timeout", metavar="<seconds>", type=float, default=None,
                        help="With --wait: give up after this many seconds (default: wait as long as it takes)")


def ended_badly(kind: str, body: dict[str, Any]) -> exceptions.CommandError:
    message = body.get("error_msg") or "no message"
    return exceptions.CommandError(f"{kind} {body['id']} ended {body.get('status')}: {message}")


def delete_each(client: WorkloadsClient, kind: Kind, names: Sequence[str], path_of: Callable[[str], str],
                params: dict[str, Any] | None = None) -> None:
    """Delete every one named; report each failure and fail at the end if any did."""
    failed = 0
    for name in names:
        try:
            client.delete(path_of(find_id(client, kind, name)), **(params or {}))
        except exceptions.CommandError as exc:
            failed += 1
            sys.stderr.write(f"Failed to delete {kind.noun} '{name}': {exc}\n")
    if failed:
        raise exceptions.CommandError(f"{failed} of {len(names)} {kind.noun}s failed to delete.")
