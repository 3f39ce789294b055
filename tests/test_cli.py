"""The `cairn` command, run as a real process."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

CAIRN = [sys.executable, "-m", "cairn"]


def run(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CAIRN_DATA_DIR": str(data_dir), **env}
    environment.pop("CAIRN_CONFIG_FILE", None)
    return subprocess.run([*CAIRN, *args], capture_output=True, text=True, env=environment, timeout=120)


def test_serve_creates_an_admin_token_once_and_answers_on_its_port(tmp_path: Path) -> None:
    port = free_port()
    environment = {**os.environ, "CAIRN_DATA_DIR": str(tmp_path)}
    server = subprocess.Popen([*CAIRN, "serve", "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        token_file = tmp_path / "admin-token"
        deadline = time.monotonic() + 60
        response = None
        while time.monotonic() < deadline:
            if token_file.exists():
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/v1/admin/workloads",
                                         headers={"X-Auth-Token": token_file.read_text().strip()})
                    break
                except httpx.TransportError:  # not listening yet
                    pass
            time.sleep(0.2)
        assert response is not None and response.status_code == 200
        assert response.json() == {"workloads": []}
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=30)
    assert token_file.read_text().strip() in out
    again = run(["token", "create", "--project", "p", "--user", "u"], tmp_path)
    assert again.returncode == 0


def test_token_create_prints_only_the_token(tmp_path: Path) -> None:
    result = run(["token", "create", "--project", "p1", "--user", "u1", "--role", "admin", "--ttl", "2h"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1 and len(result.stdout.strip()) == 43


def test_token_create_refuses_a_bad_ttl(tmp_path: Path) -> None:
    result = run(["token", "create", "--project", "p1", "--user", "u1", "--ttl", "soon"], tmp_path)
    assert result.returncode == 2 and "ttl" in result.stderr


def test_instance_add_prints_the_id_and_list_shows_it(tmp_path: Path) -> None:
    disk = tmp_path / "web1.raw"
    disk.write_bytes(b"\0" * 4096)
    added = run(["instance", "add", "--project", "p1", "--name", "web1", "--disk", str(disk)], tmp_path)
    assert added.returncode == 0, added.stderr
    instance_id = added.stdout.strip()
    listed = run(["instance", "list"], tmp_path)
    assert instance_id in listed.stdout and "web1" in listed.stdout and "raw, 4096 B" in listed.stdout


def test_instance_add_with_a_host_lists_the_worker_and_refuses_a_blank_one(tmp_path: Path) -> None:
    disk = tmp_path / "pinned.raw"
    disk.write_bytes(b"\0" * 4096)
    blank = run(["instance", "add", "--project", "p1", "--name", "a", "--disk", str(disk), "--host", " "], tmp_path)
    assert blank.returncode != 0 and "host:" in blank.stderr
    assert run(["instance", "list"], tmp_path).stdout == ""
    added = run(["instance", "add", "--project", "p1", "--name", "a", "--disk", str(disk), "--host", "w2"], tmp_path)
    assert added.returncode == 0, added.stderr
    assert "(on worker w2)" in run(["instance", "list"], tmp_path).stdout


def test_instance_add_refuses_a_missing_disk(tmp_path: Path) -> None:
    result = run(["instance", "add", "--project", "p1", "--name", "x", "--disk", str(tmp_path / "nope")], tmp_path)
    assert result.returncode == 2 and "cannot be opened" in result.stderr


def test_qcow2_disk_is_recognised_with_its_virtual_size(tmp_path: Path) -> None:
    disk = tmp_path / "d.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "3G"], check=True)
    added = run(["instance", "add", "--project", "p1", "--name", "q", "--disk", str(disk)], tmp_path)
    assert added.returncode == 0, added.stderr
    assert "qcow2, 3221225472 B" in run(["instance", "list"], tmp_path).stdout


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_db_upgrade_on_a_server_database(backend: str, database_urls: dict[str, str], tmp_path: Path) -> None:
    if backend not in database_urls:
        pytest.skip(f"{backend} is not among CAIRN_TEST_BACKENDS")
    result = run(["db", "upgrade"], tmp_path, CAIRN_DATABASE_URL=database_urls[backend])
    assert result.returncode == 0, result.stderr
    assert "newest schema" in result.stdout


def test_config_sample_documents_every_option() -> None:
    from cairn.config import OPTIONS
    result = subprocess.run([*CAIRN, "config", "sample"], capture_output=True, text=True, check=True)
    for option in OPTIONS:
        assert f"#{option.name} = " in result.stdout and option.env in result.stdout


def test_config_file_and_environment_precedence(tmp_path: Path) -> None:
    from cairn.config import load_settings
    config = tmp_path / "cairn.conf"
    config.write_text("[DEFAULT]\nport = 9000\nhost = 127.0.0.1\npublic_endpoint = https://x\n")
    settings = load_settings(config, environ={"CAIRN_PORT": "9100", "CAIRN_DATA_DIR": str(tmp_path)})
    assert settings.port == 9100 and settings.host == "127.0.0.1"
    assert settings.public_endpoint == "https://x"
    assert settings.database_url == f"sqlite:///{tmp_path / 'cairn.sqlite'}"


def test_config_refuses_a_bad_value_naming_it(tmp_path: Path) -> None:
    from cairn.config import load_settings
    from cairn.errors import InvalidInput
    with pytest.raises(InvalidInput, match="CAIRN_PORT"):
        load_settings(None, environ={"CAIRN_PORT": "eighty"})
