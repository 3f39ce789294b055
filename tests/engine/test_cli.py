"""`cairn repo ...`: the operator commands the benchmark and scripts call as subprocesses,
on a repository named by its directory, by an s3:// URL (a bucket of the development
Swift), or by a configured backup target and a project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from cairn.commands.repo import repo
from cairn.config import load_settings
from cairn.targets import FilesystemTarget, Target
from cairn.targets.s3 import S3Target
from cairn.workloads.storage import BackupTargets
from tests import swiftdev
from tests.engine.diskutil import MIB, make_disk, sha256


def _run(*args: str, env: dict[str, str] | None = None, code: int = 0) -> dict:
    result = CliRunner().invoke(repo, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout.splitlines()[0]) if result.stdout.strip() else {}


@dataclass
class Where:
    """How the commands name a repository (`args` where REPOSITORY goes), the environment
    they need, and the store itself (to damage it behind their back)."""

    args: list[str]
    store: Target
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(params=["directory", "s3-url", "configured-target"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Where]:
    if request.param == "directory":
        path = tmp_path / "repo"
        yield Where([str(path)], FilesystemTarget(path))
        return
    swiftdev.require_swift()
    swiftdev.ensure_bucket()
    prefix = f"cli-{os.urandom(4).hex()}"
    try:
        if request.param == "s3-url":
            yield Where([f"s3://{swiftdev.BUCKET}/{prefix}", "--endpoint", swiftdev.ENDPOINT],
                        S3Target(swiftdev.settings(prefix)),
                        {"AWS_ACCESS_KEY_ID": swiftdev.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": swiftdev.SECRET_KEY})
            return
        config = tmp_path / "cairn.conf"
        config.write_text(f"[DEFAULT]\ndata_dir = {tmp_path / 'data'}\n\n" + swiftdev.target_section("swift", prefix))
        target = BackupTargets(load_settings(config).targets).get("swift")
        target.init()  # `cairn target init swift`
        yield Where(["--target", "swift", "--project", "p1"], target.repository_target("p1"),
                    {"CAIRN_CONFIG_FILE": str(config)})
    finally:
        swiftdev.purge(prefix)


def test_init_backup_incremental_restore_verify_gc_stats_forget_list(tmp_path: Path, where: Where) -> None:
    path, env = where.args, where.env
    disk = make_disk(tmp_path / "d.raw", size=4 * MIB)
    out = _run("init", *path, "--chunk-size", "65536", "--pack-size", str(MIB), env=env)
    assert out["encrypted"] is False and out["chunk_size"] == 65536
    first = _run("backup", *path, "--disk", disk, "--name", "w/s0/i/d", env=env)
    assert set(first) == {"manifest_key", "disk_size", "bytes_read", "bytes_added", "chunks_total", "chunks_new",
                          "chunks_zero", "seconds"}
    with open(disk, "r+b") as handle:
        handle.seek(100)
        handle.write(b"changed")
    ranges = tmp_path / "ranges.json"
    ranges.write_text(json.dumps([[100, 7]]))
    second = _run("backup", *path, "--disk", disk, "--name", "w/s1/i/d", "--parent", "w/s0/i/d",
                  "--changed-ranges", str(ranges), env=env)
    assert second["bytes_read"] == 65536 and second["chunks_new"] == 1
    _run("restore", *path, "--name", "w/s1/i/d", "--output", str(tmp_path / "o.raw"), env=env)
    assert sha256(tmp_path / "o.raw") == sha256(disk)
    assert _run("list", *path, env=env)["manifests"] == ["w/s0/i/d", "w/s1/i/d"]
    assert _run("verify", *path, "--deep", env=env)["ok"] is True
    _run("forget", *path, "--name", "w/s0/i/d", env=env)
    assert _run("gc", *path, env=env)["pending"] is False
    assert _run("verify", *path, "--deep", env=env)["ok"] is True
    assert _run("stats", *path, env=env)["manifests"] == 1


def test_verify_exits_1_and_lists_problems(tmp_path: Path, where: Where) -> None:
    disk = make_disk(tmp_path / "d.raw", size=2 * MIB)
    _run("init", *where.args, "--chunk-size", "65536", "--pack-size", str(MIB), env=where.env)
    _run("backup", *where.args, "--disk", disk, "--name", "a", env=where.env)
    data = bytearray(where.store.get("manifests/a.manifest"))
    data[70] ^= 1
    where.store.put("manifests/a.manifest", data)
    result = CliRunner().invoke(repo, ["verify", *where.args], env=where.env)
    assert result.exit_code == 1
    assert "corrupt-manifest" in result.stderr


def test_encrypted_repository_takes_passphrase_from_file_or_environment(tmp_path: Path) -> None:
    path = str(tmp_path / "repo")
    secret = tmp_path / "pass"
    secret.write_text("s3cret\n")
    disk = make_disk(tmp_path / "d.raw", size=2 * MIB)
    assert _run("init", path, "--encrypt", "--passphrase-file", str(secret))["encrypted"] is True
    _run("backup", path, "--disk", disk, "--name", "e/1", env={"CAIRN_REPO_PASSPHRASE": "s3cret"})
    _run("restore", path, "--name", "e/1", "--output", str(tmp_path / "o.raw"), "--passphrase-file", str(secret))
    assert sha256(tmp_path / "o.raw") == sha256(disk)


def test_the_installed_command_reports_a_wrong_passphrase_with_status_2(tmp_path: Path) -> None:
    path = str(tmp_path / "repo")
    env = dict(os.environ, CAIRN_REPO_PASSPHRASE="right")
    _run("init", path, "--encrypt", env={"CAIRN_REPO_PASSPHRASE": "right"})
    env["CAIRN_REPO_PASSPHRASE"] = "wrong"
    proc = subprocess.run([sys.executable, "-m", "cairn.commands.repo", "stats", path], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "wrong passphrase" in proc.stderr


S3_KEYS = {"AWS_ACCESS_KEY_ID": swiftdev.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": swiftdev.SECRET_KEY}


def test_a_missing_bucket_is_an_error_and_init_creates_it_only_when_asked(tmp_path: Path) -> None:
    swiftdev.require_swift()
    bucket = f"cairn-cli-{os.urandom(4).hex()}"
    url = [f"s3://{bucket}/backups", "--endpoint", swiftdev.ENDPOINT]
    for command in (["verify", *url], ["init", *url]):
        result = subprocess.run([sys.executable, "-m", "cairn.commands.repo", *command], capture_output=True,
                                text=True, env={**os.environ, **S3_KEYS})
        assert result.returncode == 2 and f"bucket {bucket!r} does not exist" in result.stderr, result.stderr
    assert swiftdev.bucket_exists(bucket) is False, "nothing was created"
    try:
        made = _run("init", *url, "--create-bucket", env=S3_KEYS)
        assert made["path"] == f"s3://{bucket}/backups at {swiftdev.ENDPOINT}"
        assert _run("list", *url, env=S3_KEYS)["manifests"] == []
    finally:
        swiftdev.purge("backups", bucket=bucket)
        swiftdev.client().delete_bucket(Bucket=bucket)


@pytest.mark.parametrize(("args", "env", "field"), [
    ([], {}, "repository"),
    (["/tmp", "--target", "t"], {}, "repository"),
    (["--target", "t"], {}, "project"),
    (["/tmp", "--project", "p1"], {}, "project"),
    (["/tmp", "--endpoint", "http://x"], {}, "endpoint"),
    (["s3://b/p"], {"AWS_ENDPOINT_URL": None, **S3_KEYS}, "endpoint"),
    (["s3://b/p", "--endpoint", "http://x"], {"AWS_ACCESS_KEY_ID": None}, "AWS_ACCESS_KEY_ID"),
    (["s3://b/p", "--endpoint", "http://x"], {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": None},
     "AWS_SECRET_ACCESS_KEY"),
    (["s3://b/p", "--endpoint", "ftp://x"], S3_KEYS, "endpoint"),
    (["s3:///p", "--endpoint", "http://x"], S3_KEYS, "bucket"),
])
def test_a_repository_named_wrongly_is_refused_naming_the_option(
        args: list[str], env: dict[str, str | None], field: str) -> None:
    from cairn.errors import InvalidInput

    with pytest.raises(InvalidInput) as info:
        CliRunner().invoke(repo, ["list", *args], env=env, catch_exceptions=False)
    assert info.value.field == field


def test_a_configured_target_without_its_marker_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    from cairn.targets.errors import TargetNotReady

    swiftdev.require_swift()
    swiftdev.ensure_bucket()
    prefix = f"cli-{os.urandom(4).hex()}"
    config = tmp_path / "cairn.conf"
    config.write_text(f"[DEFAULT]\ndata_dir = {tmp_path / 'data'}\n\n" + swiftdev.target_section("swift", prefix))
    for command in ("init", "list"):
        with pytest.raises(TargetNotReady, match="cairn target init swift"):
            CliRunner().invoke(repo, [command, "--target", "swift", "--project", "p1"],
                               env={"CAIRN_CONFIG_FILE": str(config)}, catch_exceptions=False)
    assert swiftdev.client().list_objects_v2(Bucket=swiftdev.BUCKET, Prefix=f"{prefix}/")["KeyCount"] == 0
