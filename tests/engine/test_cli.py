"""`cairn repo ...`: the operator commands the benchmark and scripts call as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cairn.commands.repo import repo
from tests.engine.diskutil import MIB, make_disk, sha256


def _run(*args: str, env: dict[str, str] | None = None, code: int = 0) -> dict:
    result = CliRunner().invoke(repo, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout.splitlines()[0]) if result.stdout.strip() else {}


def test_init_backup_incremental_restore_verify_gc_stats_forget_list(tmp_path: Path) -> None:
    path = str(tmp_path / "repo")
    disk = make_disk(tmp_path / "d.raw", size=4 * MIB)
    out = _run("init", path, "--chunk-size", "65536", "--pack-size", str(MIB))
    assert out["encrypted"] is False and out["chunk_size"] == 65536
    first = _run("backup", path, "--disk", disk, "--name", "w/s0/i/d")
    assert set(first) == {"manifest_key", "disk_size", "bytes_read", "bytes_added", "chunks_total", "chunks_new",
                          "chunks_zero", "seconds"}
    with open(disk, "r+b") as handle:
        handle.seek(100)
        handle.write(b"changed")
    ranges = tmp_path / "ranges.json"
    ranges.write_text(json.dumps([[100, 7]]))
    second = _run("backup", path, "--disk", disk, "--name", "w/s1/i/d", "--parent", "w/s0/i/d",
                  "--changed-ranges", str(ranges))
    assert second["bytes_read"] == 65536 and second["chunks_new"] == 1
    _run("restore", path, "--name", "w/s1/i/d", "--output", str(tmp_path / "o.raw"))
    assert sha256(tmp_path / "o.raw") == sha256(disk)
    assert _run("list", path)["manifests"] == ["w/s0/i/d", "w/s1/i/d"]
    assert _run("verify", path, "--deep")["ok"] is True
    _run("forget", path, "--name", "w/s0/i/d")
    assert _run("gc", path)["pending"] is False
    assert _run("verify", path, "--deep")["ok"] is True
    assert _run("stats", path)["manifests"] == 1


def test_verify_exits_1_and_lists_problems(tmp_path: Path) -> None:
    path = str(tmp_path / "repo")
    disk = make_disk(tmp_path / "d.raw", size=2 * MIB)
    _run("init", path, "--chunk-size", "65536", "--pack-size", str(MIB))
    _run("backup", path, "--disk", disk, "--name", "a")
    manifest = tmp_path / "repo" / "manifests" / "a.manifest"
    data = bytearray(manifest.read_bytes())
    data[70] ^= 1
    manifest.write_bytes(bytes(data))
    result = CliRunner().invoke(repo, ["verify", path])
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
