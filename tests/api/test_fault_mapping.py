"""Every kind of domain error renders as an OpenStack fault with a status chosen for it,
and every lower-level error Cairn wraps (OS, database, libvirt, NBD) becomes one of them.

The class tree is walked after importing every module of the package, so a new error
class anywhere fails `test_every_error_kind_has_a_deliberate_status` until it is given a
status here and in `cairn.api.faults`.
"""

from __future__ import annotations

import ast
import errno
import importlib
import inspect
import os
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import cairn
from cairn import errors
from cairn.api import faults
from cairn.db.database import ConnectionLost, Database
from cairn.engine import errors as engine_errors
from cairn.errors import CairnError
from cairn.jobs.runner import JobCancelled
from cairn.targets import FilesystemTarget
from cairn.targets import errors as target_errors
from tests.conftest import free_port, start_server

# Kinds whose status is 500 on purpose (OpenStack's computeFault): damaged stored data.
MEANT_AS_500 = {engine_errors.IntegrityError}
# Kinds raised only by the `cairn` command before or outside the API, which never
# imports their modules; the CLI renders them as exit messages.
CLI_ONLY_MODULES = ("cairn.commands", "cairn.cli", "cairn.__main__")

EXPECTED = {
    errors.InvalidInput: 400, errors.NotAuthenticated: 401, errors.NotAuthorized: 403,
    errors.NotFound: 404, errors.Conflict: 409, errors.TooLarge: 413, errors.Unavailable: 503,
    JobCancelled: 409, engine_errors.IntegrityError: 500,
}


def _import_everything() -> None:
    for module in pkgutil.walk_packages(cairn.__path__, "cairn."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)


def _kinds() -> list[type[CairnError]]:
    _import_everything()
    found: list[type[CairnError]] = []
    todo: list[type[CairnError]] = [CairnError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__qualname__}")


KINDS = _kinds()


def _expected_status(cls: type[CairnError]) -> int | None:
    for base in cls.__mro__:
        if base in EXPECTED:
            return EXPECTED[base]
    return None


def _instance(cls: type[CairnError]) -> CairnError:
    """An instance of `cls` with the message "boom" and a placeholder for every other
    argument its constructor requires (a field, a key, a target's name and path)."""
    required = [p for p in list(inspect.signature(cls).parameters.values())[1:]
                if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    return cls("boom", *["field"] * len(required))


def test_the_walk_finds_the_engine_target_database_and_job_errors() -> None:
    for cls in (engine_errors.CorruptChunk, engine_errors.WrongKey, engine_errors.Cancelled,
                target_errors.TargetFull, target_errors.ObjectNotFound, ConnectionLost, JobCancelled):
        assert cls in KINDS


@pytest.mark.parametrize("kind", [k for k in KINDS if not k.__module__.startswith(CLI_ONLY_MODULES)],
                         ids=lambda k: k.__qualname__)
def test_every_error_kind_has_a_deliberate_status(kind: type[CairnError]) -> None:
    if kind is CairnError:
        return  # the base itself is never raised
    expected = _expected_status(kind)
    assert expected is not None, f"{kind.__module__}.{kind.__qualname__} has no status: add it to faults.STATUS_OF"
    error = _instance(kind)
    assert any(isinstance(error, listed) for listed, _ in faults.STATUS_OF), "only the fallback renders it"
    assert faults.status_of(error) == expected
    assert expected != 500 or any(issubclass(kind, meant) for meant in MEANT_AS_500)


def test_cli_only_errors_cannot_reach_the_api() -> None:
    api_dir = Path(faults.__file__).parent
    for path in api_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(CLI_ONLY_MODULES), f"{path} imports {name}"


@pytest.fixture(scope="module")
def raising_server() -> Iterator[str]:
    """A real HTTP server whose one route raises the error class it is named after."""
    by_name = {f"{k.__module__}.{k.__qualname__}": k for k in KINDS}
    app = FastAPI()
    faults.install(app, auth_uri="http://keystone.example:5000")

    @app.get("/raise/{name}")
    def _raise(name: str) -> None:
        raise _instance(by_name[name])

    port = free_port()
    server, thread = start_server(app, port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.parametrize("kind", [k for k in KINDS if k is not CairnError], ids=lambda k: k.__qualname__)
def test_every_error_kind_renders_as_an_openstack_fault(raising_server: str, kind: type[CairnError]) -> None:
    response = httpx.get(f"{raising_server}/raise/{kind.__module__}.{kind.__qualname__}")
    status = faults.status_of(_instance(kind))
    assert response.status_code == status
    body = response.json()
    if status == 401:
        assert body == {"error": {"code": 401, "title": "Unauthorized", "message": "boom"}}
        assert response.headers["WWW-Authenticate"] == 'Keystone uri="http://keystone.example:5000"'
    else:
        assert body == {faults.FAULT_NAMES.get(status, "computeFault"): {"code": status, "message": "boom"}}


# --- lower-level errors ------------------------------------------------------------------

@pytest.mark.parametrize(("err", "key", "kind", "status"), [
    (errno.ENOENT, "packs/x", target_errors.ObjectNotFound, 404),
    (errno.ENOENT, None, target_errors.TargetIOError, 503),
    (errno.ENOSPC, "packs/x", target_errors.TargetFull, 503),
    (errno.EDQUOT, "packs/x", target_errors.TargetFull, 503),
    (errno.EIO, "packs/x", target_errors.TargetIOError, 503),
    (errno.EACCES, "packs/x", target_errors.TargetIOError, 503),
    (errno.ESTALE, "packs/x", target_errors.TargetIOError, 503),
    (errno.EROFS, "packs/x", target_errors.TargetIOError, 503),
    (errno.ENOTDIR, "packs/x", target_errors.TargetIOError, 503),
], ids=lambda v: errno.errorcode.get(v, str(v)) if isinstance(v, int) else None)
def test_os_errors_map_to_target_errors(err: int, key: str | None, kind: type[CairnError], status: int) -> None:
    mapped = target_errors.map_os_error(OSError(err, os.strerror(err)) if err != errno.ENOENT
                                        else FileNotFoundError(err, os.strerror(err)), "reading", key)
    assert type(mapped) is kind and faults.status_of(mapped) == status


def test_a_filesystem_target_reports_os_failures_as_target_errors(tmp_path: Path) -> None:
    target = FilesystemTarget(tmp_path / "t", fsync=False)
    target.put("packs/a", b"x")
    with pytest.raises(target_errors.ObjectNotFound):
        target.get("packs/missing")
    # A directory where a file must go: the OS says EISDIR/ENOTDIR, Cairn says TargetIOError.
    with pytest.raises(target_errors.TargetIOError):
        target.put("packs/a/b", b"y")


def test_a_lost_database_connection_is_connection_lost(sqlite_database: Database) -> None:
    lost = OperationalError("SELECT 1", {}, Exception("server closed the connection"), connection_invalidated=True)
    with pytest.raises(ConnectionLost) as caught, sqlite_database.unit_of_work() as session:
        session.execute(text("SELECT 1"))
        raise lost
    assert faults.status_of(caught.value) == 503
    with pytest.raises(ConnectionLost), sqlite_database.reader():
        raise lost


def test_an_unreachable_libvirt_is_unavailable_and_a_missing_domain_not_found() -> None:
    from cairn.platforms.libvirt import LibvirtPlatform

    with pytest.raises(errors.Unavailable) as caught:
        LibvirtPlatform(uri="qemu+unix:///system?socket=/nonexistent/libvirt-sock").list_domains()
    assert faults.status_of(caught.value) == 503
    with pytest.raises(errors.NotFound) as missing:
        LibvirtPlatform(uri="test:///default").adopt("p1", "no-such-domain")
    assert faults.status_of(missing.value) == 404


def test_an_nbd_export_that_cannot_be_reached_is_a_source_error(tmp_path: Path) -> None:
    from cairn.engine.qemu import NbdClient

    with pytest.raises(engine_errors.SourceError) as caught:
        NbdClient("disk.raw", str(tmp_path / "nobody-listens.sock"))
    assert faults.status_of(caught.value) == 400 and "disk.raw" in caught.value.message


def test_the_errors_module_draws_every_kind_in_its_tree() -> None:
    tree = errors.__doc__ or ""
    missing = [k.__qualname__ for k in KINDS if f" {k.__qualname__} " not in tree]
    assert not missing, f"add {missing} to the tree in cairn/errors.py's docstring"
