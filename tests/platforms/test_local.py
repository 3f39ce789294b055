"""The `local` platform's inventory: registering restored instances."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.db.database import Database
from cairn.platforms.local import LocalPlatform, list_instances


@pytest.fixture
def platform(sqlite_database: Database) -> tuple[LocalPlatform, Database]:
    return LocalPlatform(sqlite_database.reader, sqlite_database.unit_of_work), sqlite_database


def test_registering_a_restored_instance_again_finds_the_first_one(
        platform: tuple[LocalPlatform, Database], tmp_path: Path) -> None:
    local, database = platform
    disk = tmp_path / "restored.raw"
    disk.write_bytes(b"\0" * 65536)
    # what a restore step run a second time after its commit was lost would do
    first = local.restore_instance("p1", "web", [("vda", str(disk), "raw")], {}, "restore-1", "worker2")
    again = local.restore_instance("p1", "web", [("vda", str(disk), "raw")], {}, "restore-1", "worker2")
    assert again == first and first.host == "worker2"
    with database.reader() as session:
        assert [i.id for i in list_instances(session, "p1")] == [first.id]


def test_each_restore_registers_an_instance_of_its_own(
        platform: tuple[LocalPlatform, Database], tmp_path: Path) -> None:
    local, database = platform
    disks = [tmp_path / "one.raw", tmp_path / "two.raw"]
    for disk in disks:
        disk.write_bytes(b"\0" * 65536)
    made = [local.restore_instance("p1", "web", [("vda", str(disk), "raw")], {}, label, None)
            for disk, label in zip(disks, ("restore-1", "restore-2"), strict=True)]
    assert made[0].id != made[1].id
    with database.reader() as session:
        assert sorted(i.id for i in list_instances(session, "p1")) == sorted(i.id for i in made)
