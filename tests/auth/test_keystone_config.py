"""Configuring Keystone authentication: options, their errors, the sample file, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cairn.config import OPTIONS, load_settings, sample_config
from cairn.errors import InvalidInput
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
CAIRN = [sys.executable, "-m", "cairn"]
SERVICE_USER = {"CAIRN_KEYSTONE_AUTHTOKEN__AUTH_URL": "http://keystone.test:5000/v3",
                "CAIRN_KEYSTONE_AUTHTOKEN__USERNAME": "cairn",
                "CAIRN_KEYSTONE_AUTHTOKEN__PASSWORD": "secret",
                "CAIRN_KEYSTONE_AUTHTOKEN__PROJECT_NAME": "service"}


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    environment.update({"CAIRN_DATA_DIR": str(tmp_path / "default-data"), **env})
    if not environment["CAIRN_DATA_DIR"]:
        del environment["CAIRN_DATA_DIR"]
        environment["HOME"] = str(tmp_path / "home")
    return subprocess.run([*CAIRN, *args], capture_output=True, text=True, env=environment, timeout=120)


def test_sample_configuration_file_in_the_repository_is_current() -> None:
    assert (ROOT / "etc" / "cairn.conf.sample").read_text() == sample_config() + "\n"


def test_keystone_options_use_keystonemiddleware_names() -> None:
    names = {o.name for o in OPTIONS if o.section == "keystone_authtoken"}
    assert {"www_authenticate_uri", "auth_url", "auth_type", "username", "password", "project_name",
            "user_domain_name", "project_domain_name", "region_name", "token_cache_time"} <= names


def test_keystone_section_is_read_from_the_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "cairn.conf"
    config.write_text("[DEFAULT]\nauth_strategy = keystone\nadmin_role = backup-admin\n\n"
                      "[keystone_authtoken]\nauth_url = http://keystone.test:5000/v3\nusername = cairn\n"
                      "password = from-file\nproject_name = service\ntoken_cache_time = 60\n")
    settings = load_settings(config, environ={"CAIRN_KEYSTONE_AUTHTOKEN__PASSWORD": "from-env"})
    assert settings.auth_strategy == "keystone" and settings.admin_role == "backup-admin"
    assert settings.keystone.password == "from-env" and settings.keystone.token_cache_time == 60
    assert settings.keystone.user_domain_name == "Default"
    assert settings.www_authenticate_uri == "http://keystone.test:5000/v3"
    assert "from-env" not in repr(settings)


def test_local_strategy_stays_the_default() -> None:
    settings = load_settings(None, environ={})
    assert settings.auth_strategy == "local"
    assert settings.www_authenticate_uri == ""


@pytest.mark.parametrize("missing", ["auth_url", "username", "password", "project_name"])
def test_keystone_strategy_refuses_a_missing_service_option_naming_it(missing: str) -> None:
    environ = {"CAIRN_AUTH_STRATEGY": "keystone", **SERVICE_USER}
    del environ[f"CAIRN_KEYSTONE_AUTHTOKEN__{missing.upper()}"]
    with pytest.raises(InvalidInput, match=rf"\[keystone_authtoken\] {missing}: required") as error:
        load_settings(None, environ=environ)
    assert error.value.field == f"keystone_authtoken.{missing}"


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("CAIRN_AUTH_STRATEGY", "kerberos", "CAIRN_AUTH_STRATEGY"),
    ("CAIRN_KEYSTONE_AUTHTOKEN__TOKEN_CACHE_TIME", "soon", "CAIRN_KEYSTONE_AUTHTOKEN__TOKEN_CACHE_TIME"),
    ("CAIRN_KEYSTONE_AUTHTOKEN__AUTH_TYPE", "token", "CAIRN_KEYSTONE_AUTHTOKEN__AUTH_TYPE"),
])
def test_bad_values_are_refused_naming_the_variable(variable: str, value: str, named: str) -> None:
    with pytest.raises(InvalidInput, match=named):
        load_settings(None, environ={"CAIRN_AUTH_STRATEGY": "keystone", **SERVICE_USER, variable: value})


def test_config_file_is_accepted_after_the_sub_command_too(tmp_path: Path) -> None:
    data_dir = tmp_path / "from-file"
    config = tmp_path / "cairn.conf"
    config.write_text(f"[DEFAULT]\ndata_dir = {data_dir}\n")
    result = run(["token", "create", "--project", "p1", "--user", "u1", "--config-file", str(config)],
                 tmp_path, CAIRN_DATA_DIR="")
    assert result.returncode == 0, result.stderr
    assert (data_dir / "cairn.sqlite").is_file()
    assert not (tmp_path / "home").exists()


def test_register_with_keystone_unreachable_says_so(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v3"
    result = run(["keystone", "register", "--public-url", "http://cairn.test:8780"], tmp_path,
                 **{**SERVICE_USER, "CAIRN_KEYSTONE_AUTHTOKEN__AUTH_URL": dead})
    assert result.returncode == 2
    assert "cannot be reached" in result.stderr and dead in result.stderr


def test_register_refuses_a_url_that_is_not_http(tmp_path: Path) -> None:
    result = run(["keystone", "register", "--public-url", "cairn.test:8780"], tmp_path, **SERVICE_USER)
    assert result.returncode == 2 and "public_url" in result.stderr
