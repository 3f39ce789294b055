"""Backup targets are written only when they carry their own marker: an unmounted share
(an empty mount point), a missing path, another target's path, a missing bucket or a
bucket prefix holding someone else's objects fails the job naming the target and where
it is, and nothing is written there; `cairn target init` makes it usable."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn.commands.target import init_embedded_default, prepare_targets
from cairn.config import TargetSettings
from cairn.db.database import Database
from cairn.targets.marker import MARKER_NAME
from cairn.workloads.storage import BackupTarget, BackupTargets
from tests import swiftdev
from tests.api.test_snapshots import take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, wait_status
from tests.conftest import Service, variant_service, wait_until


def tree(path: Path) -> list[str]:
    """Everything under `path`, relative (what a `find` would list)."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def run_cairn(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CAIRN_CONFIG_FILE": str(config)}
    return subprocess.run([sys.executable, "-m", "cairn", *args], capture_output=True, text=True,
                          env=environment, timeout=120, check=False)


def write_config(tmp_path: Path, *targets: TargetSettings) -> Path:
    config = tmp_path / "cairn.conf"
    config.write_text("".join(f"[target:{t.name}]\npath = {t.path}\n" for t in targets))
    return config


def bucket_keys(bucket: str, prefix: str) -> list[str] | None:
    """The keys under `prefix/` in `bucket` on the shared Swift; None when the bucket
    does not exist."""
    if not swiftdev.bucket_exists(bucket):
        return None
    listed = swiftdev.client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/").get("Contents", ())
    return sorted(item["Key"][len(prefix) + 1:] for item in listed)


@pytest.fixture
def unready_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TargetSettings, str, Any]]:
    """A target that is not Cairn's, its name in messages, and what it holds (to compare
    before and after): a share's empty mount point, a missing path, a missing bucket, a
    bucket prefix holding someone else's objects."""
    kind = request.param
    if kind in ("empty", "missing"):
        path = tmp_path / "mnt" / "nfs1"
        if kind == "empty":
            path.mkdir(parents=True)  # what an unmounted share's mount point looks like
        yield TargetSettings("nfs1", path), str(path), lambda: tree(path) if path.exists() else None
        return
    swiftdev.require_swift()
    prefix = f"foreign-{os.urandom(4).hex()}"
    bucket = swiftdev.BUCKET if kind == "foreign-bucket" else f"cairn-absent-{os.urandom(4).hex()}"
    if kind == "foreign-bucket":
        swiftdev.ensure_bucket()
        swiftdev.client().put_object(Bucket=bucket, Key=f"{prefix}/photos/cat.jpg", Body=b"not a backup")
    try:
        yield swiftdev.target_settings("nfs1", prefix, bucket=bucket), bucket, lambda: bucket_keys(bucket, prefix)
    finally:
        if kind == "foreign-bucket":
            swiftdev.purge(prefix)


@pytest.mark.parametrize("unready_target", ["empty", "missing", "missing-bucket", "foreign-bucket"],
                         indirect=True)
def test_create_on_a_target_without_its_marker_fails_naming_it_and_writes_nothing(
        api: Service, unready_target: tuple[TargetSettings, str, Any]) -> None:
    settings, where, holds = unready_target
    before = holds()
    token = api.token()
    with variant_service(api, init_targets=False, targets=(settings,)) as unmounted:
        created = create_workload(unmounted, token, [unmounted.add_instance()])
        failed = wait_status(unmounted, token, created["id"], "error")
    assert "nfs1" in failed["error_msg"] and where in failed["error_msg"], failed["error_msg"]
    assert holds() == before, "nothing was written (no directory, bucket, marker or repository)"


def test_snapshot_on_a_share_that_is_no_longer_mounted_fails_and_writes_nothing(
        api: Service, tmp_path: Path) -> None:
    path = tmp_path / "nfs1"
    token = api.token()
    with variant_service(api, targets=(TargetSettings("nfs1", path),)) as service:
        created = create_workload(service, token, [service.add_instance()])
        wait_status(service, token, created["id"], "available")
        path.rename(tmp_path / "share")  # the share goes away ...
        path.mkdir()  # ... and leaves its empty mount point
        failed = wait_snapshot(service, token, take_snapshot(service, token, created["id"])["id"], "error")
        assert "nfs1" in failed["error_msg"] and str(path) in failed["error_msg"], failed["error_msg"]
        assert tree(path) == []
        wait_status(service, token, created["id"], "available")

        # Initialising the empty mount point by mistake gives it a marker, not a repository.
        assert run_cairn(write_config(tmp_path, TargetSettings("nfs1", path)), "target", "init",
                         "nfs1").returncode == 0
        missing = wait_snapshot(service, token, take_snapshot(service, token, created["id"])["id"], "error")
        assert "no repository" in missing["error_msg"] and str(path) in missing["error_msg"]
        assert tree(path) == [MARKER_NAME]
        wait_status(service, token, created["id"], "available")

        path.joinpath(MARKER_NAME).unlink()
        path.rmdir()
        (tmp_path / "share").rename(path)  # mounted again: snapshots work
        wait_snapshot(service, token, take_snapshot(service, token, created["id"])["id"], "available")


def test_a_path_holding_another_targets_marker_is_refused(api: Service, tmp_path: Path) -> None:
    path = tmp_path / "nfs1"
    BackupTarget("nfs2", path, None, None).init()
    before = path.joinpath(MARKER_NAME).read_bytes()
    token = api.token()
    with variant_service(api, init_targets=False, targets=(TargetSettings("nfs1", path),)) as service:
        created = create_workload(service, token, [service.add_instance()])
        failed = wait_status(service, token, created["id"], "error")
    assert "nfs1" in failed["error_msg"] and "nfs2" in failed["error_msg"] and str(path) in failed["error_msg"]
    assert tree(path) == [MARKER_NAME] and path.joinpath(MARKER_NAME).read_bytes() == before

    refused = run_cairn(write_config(tmp_path, TargetSettings("nfs1", path)), "target", "init", "nfs1")
    assert refused.returncode == 2 and "nfs2" in refused.stderr and str(path) in refused.stderr, refused.stderr
    assert path.joinpath(MARKER_NAME).read_bytes() == before


def test_target_init_lets_workloads_and_snapshots_use_a_new_target(api: Service, tmp_path: Path) -> None:
    path = tmp_path / "nfs1"
    path.mkdir()
    config = write_config(tmp_path, TargetSettings("nfs1", path))
    token = api.token()
    with variant_service(api, init_targets=False, targets=(TargetSettings("nfs1", path),)) as service:
        refused = create_workload(service, token, [service.add_instance()])
        wait_status(service, token, refused["id"], "error")
        done = run_cairn(config, "target", "init", "nfs1")
        assert done.returncode == 0 and "initialised" in done.stdout, done.stderr
        created = create_workload(service, token, [service.add_instance()])
        wait_status(service, token, created["id"], "available")
        assert (path / "projects" / "p1" / "repo" / "config").is_file()  # made by the create job
        wait_snapshot(service, token, take_snapshot(service, token, created["id"])["id"], "available")
        assert service.runtime.targets.repository("nfs1", "p1").verify(deep=True).ok


def test_new_workloads_go_to_a_target_whose_marker_checks(api: Service, tmp_path: Path) -> None:
    unmounted, ready = tmp_path / "nfs1", tmp_path / "nfs2"
    unmounted.mkdir()
    BackupTarget("nfs2", ready, None, None).init()
    token = api.token()
    admin = api.token("admin", "root", roles=("admin",))
    targets = (TargetSettings("nfs1", unmounted), TargetSettings("nfs2", ready))
    with variant_service(api, init_targets=False, targets=targets) as service:
        created = create_workload(service, token, [service.add_instance()])
        wait_status(service, token, created["id"], "available")
        with service.client(admin) as client:
            seen = client.get(f"/v1/admin/workloads/{created['id']}").json()["workload"]
    assert seen["metadata"]["backup_media_target"] == str(ready)
    assert tree(unmounted) == []


def test_target_list_shows_each_targets_marker_state(tmp_path: Path) -> None:
    ready, empty, foreign, missing = (tmp_path / n for n in ("ready", "empty", "foreign", "missing"))
    empty.mkdir()
    BackupTarget("other", foreign, None, None).init()
    config = write_config(tmp_path, *(TargetSettings(p.name, p) for p in (ready, empty, foreign, missing)))
    first = run_cairn(config, "target", "init", "ready")
    again = run_cairn(config, "target", "init", "ready")
    assert first.returncode == again.returncode == 0
    marker = json.loads((ready / MARKER_NAME).read_text())
    assert sorted(marker) == ["created_at", "format", "id", "name", "version"]
    assert marker["format"] == "cairn-target" and marker["version"] == 1 and marker["name"] == "ready"
    assert f"already initialised: {ready} (id {marker['id']})" in again.stdout

    listed = run_cairn(config, "target", "list", "--json")
    assert listed.returncode == 1  # not every target is usable
    rows = {row["name"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert {name: row["state"] for name, row in rows.items()} == {
        "ready": "ready", "empty": "unmarked", "foreign": "foreign", "missing": "missing"}
    assert rows["ready"]["id"] == marker["id"] and rows["ready"]["path"] == str(ready)
    assert "'other'" in rows["foreign"]["detail"]
    assert tree(empty) == [] and not missing.exists()
    plain = run_cairn(config, "target", "list")
    assert f"empty\t{empty}\tunmarked" in plain.stdout


def test_a_role_starts_and_logs_each_target_that_fails_its_check(
        sqlite_database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from cairn.config import Settings

    empty = tmp_path / "nfs2"
    empty.mkdir()
    configured = (TargetSettings("nfs1", tmp_path / "nfs1"), TargetSettings("nfs2", empty))
    settings = Settings(data_dir=tmp_path / "data", database_url=sqlite_database.url, targets=configured)
    targets = BackupTargets(configured)
    targets.get("nfs1").init()
    with caplog.at_level(logging.INFO, logger="cairn.commands.target"):
        failing = prepare_targets(settings, targets, sqlite_database, "worker")
    assert failing == ["nfs2"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "nfs2" in errors[0] and str(empty) in errors[0]
    assert tree(empty) == []  # a configured target is never initialised by a role


def test_embedded_default_is_initialised_only_while_no_workload_expects_data_there(
        api: Service, sqlite_database: Database, tmp_path: Path) -> None:
    fresh = BackupTarget("default", tmp_path / "fresh" / "targets" / "default", None, None)
    assert init_embedded_default(fresh, sqlite_database)
    assert fresh.state().ready

    token = api.token()
    created = create_workload(api, token, [api.add_instance()])
    wait_status(api, token, created["id"], "available")
    vanished = BackupTarget("default", tmp_path / "unmounted" / "targets" / "default", None, None)
    assert not init_embedded_default(vanished, api.runtime.database)  # workloads live on "default"
    assert not (tmp_path / "unmounted").exists()


def test_a_workload_whose_create_failed_on_an_unmarked_target_is_deleted_once_it_is_set_up(
        api: Service, tmp_path: Path) -> None:
    path = tmp_path / "nfs1"
    path.mkdir()
    token = api.token()
    with variant_service(api, init_targets=False, targets=(TargetSettings("nfs1", path),)) as service:
        created = create_workload(service, token, [service.add_instance()])
        wait_status(service, token, created["id"], "error")
        with service.client(token) as client:
            assert client.delete(f"/v1/p1/workloads/{created['id']}").status_code == 202
        refused = wait_status(service, token, created["id"], "error")
        assert "Delete did not complete" in refused["error_msg"] and str(path) in refused["error_msg"]
        assert tree(path) == []
        service.runtime.targets.get("nfs1").init()
        with service.client(token) as client:
            assert client.delete(f"/v1/p1/workloads/{created['id']}").status_code == 202
            wait_until(lambda: client.get(f"/v1/p1/workloads/{created['id']}").status_code == 404)
