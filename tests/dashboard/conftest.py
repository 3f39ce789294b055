"""What the dashboard's tests share: instances with real data on their disks. The browser
and its pages are the fixtures of tests/browser.py."""

from __future__ import annotations

import os
from pathlib import Path

from cairn.platforms.local import register_instance
from tests.conftest import Service


def add_filled_instance(service: Service, project: str, name: str, size: int) -> tuple[str, Path]:
    """An instance of the local platform whose one disk holds `size` bytes of data (a
    sparse disk would be read in no time, and never reach a gate)."""
    path = service.data_dir / "disks" / f"{name}-{os.urandom(4).hex()}.raw"
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        for index in range(size >> 20):
            handle.write(block[index:] + block[:index])  # no two MiB alike: nothing deduplicates
    with service.runtime.database.unit_of_work() as session:
        return register_instance(session, project, name, [str(path)]).id, path
