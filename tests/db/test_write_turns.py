"""On SQLite the units of work of one process take turns on a lock of their own."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from cairn.db import database as database_module
from cairn.db.database import Database
from cairn.db.models import ServiceSetting
from cairn.errors import Unavailable


def settings(db: Database) -> dict[str, str]:
    with db.reader() as session:
        return {row.key: row.value for row in session.scalars(select(ServiceSetting))}


def test_a_unit_of_work_opened_inside_another_in_the_same_thread_goes_ahead(sqlite_database: Database) -> None:
    with sqlite_database.unit_of_work() as outer:
        with sqlite_database.unit_of_work() as inner:
            inner.add(ServiceSetting(key="inner", value="1"))
        outer.add(ServiceSetting(key="outer", value="1"))
    assert settings(sqlite_database) == {"inner": "1", "outer": "1"}


def test_concurrent_units_of_work_all_commit(sqlite_database: Database) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for m in range(10):
                with sqlite_database.unit_of_work() as session:
                    session.add(ServiceSetting(key=f"k{n}-{m}", value=str(m)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(settings(sqlite_database)) == 80


def test_a_writer_that_waits_past_the_limit_is_told_to_retry_and_writes_nothing(
        sqlite_database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database_module, "WRITE_WAIT_SECONDS", 0.5)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with sqlite_database.unit_of_work() as session:
            session.add(ServiceSetting(key="first", value="1"))
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(Unavailable, match="busy with other writes"):
            with sqlite_database.unit_of_work() as session:
                session.add(ServiceSetting(key="second", value="1"))
    finally:
        release.set()
        holder.join()
    assert settings(sqlite_database) == {"first": "1"}
