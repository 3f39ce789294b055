"""Fixtures for Keystone authentication: one real Keystone per test session (and, for
encrypted workloads, one real Barbican beside it), and Cairn services that validate its
tokens (SQLite: the database plays no part in this)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn.config import KeystoneAuthSettings
from cairn.db.migrate import upgrade
from tests.auth.barbican_server import BarbicanServer, start_barbican
from tests.auth.keystone_server import REGION, KeystoneServer, start_keystone
from tests.conftest import Service, free_port, make_settings, serving


def cairn_keystone_settings(keystone: KeystoneServer, **overrides: Any) -> KeystoneAuthSettings:
    """`[keystone_authtoken]` for the service user `cairn` of `keystone`."""
    values: dict[str, Any] = {
        "www_authenticate_uri": keystone.url, "auth_url": keystone.auth_url, "username": "cairn",
        "password": "cairn-secret", "project_name": "service", "region_name": REGION,
        "token_cache_time": 300, "http_connect_timeout": 5.0}
    values.update(overrides)
    return KeystoneAuthSettings(**values)


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneServer]:
    server = start_keystone(tmp_path_factory.mktemp("keystone"), free_port())
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def keystone_service(data_dir: Path, keystone: KeystoneServer, admin_role: str = "admin",
                     **keystone_overrides: Any) -> Iterator[Service]:
    """Cairn with `auth_strategy = keystone` behind a real server on a loopback port."""
    url = f"sqlite:///{data_dir / 'cairn.sqlite'}"
    upgrade(url)
    settings = make_settings(data_dir, url, auth_strategy="keystone", admin_role=admin_role,
                             keystone=cairn_keystone_settings(keystone, **keystone_overrides))
    with serving(settings, "sqlite") as service:
        yield service


@pytest.fixture(scope="session")
def keystone_cairn(keystone: KeystoneServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with keystone_service(tmp_path_factory.mktemp("cairn-keystone"), keystone) as service:
        yield service


@pytest.fixture(scope="session")
def barbican(keystone: KeystoneServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BarbicanServer]:
    """A real Barbican in Keystone's catalog (`key-manager`), for the session."""
    server = start_barbican(tmp_path_factory.mktemp("barbican"), free_port(), keystone)
    try:
        yield server
    finally:
        server.stop()
