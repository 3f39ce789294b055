"""`python -m tests.scale.paused_worker worker --name N`: a `cairn worker` whose restore pauses.

For the tests only. Before running the `cairn` command it hooks `Repository.restore` so
that the `CAIRN_TEST_PAUSE_AT`-th disk this process restores (counting from 1) stops at
the data engine's first cancel check: the disk's temporary file exists and the earlier
disks of the restore are complete. It then writes the disk's destination to
`$CAIRN_TEST_PAUSE_DIR/paused` and waits until `$CAIRN_TEST_PAUSE_DIR/release` exists,
so a test can act (kill this process) at that exact moment instead of racing the copy.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any

from cairn.engine.repository import Repository
from cairn.engine.restore import RestoreResult


def install(directory: Path, at: int) -> None:
    original = Repository.restore
    counter = itertools.count(1)
    lock = threading.Lock()

    def restore(self: Repository, manifest_key: str, destination_path: Any, format: str = "raw",
                progress: Any = None, cancel: Any = None, inplace: bool = False) -> RestoreResult:
        with lock:
            number = next(counter)
        if number != at:
            return original(self, manifest_key, destination_path, format, progress, cancel, inplace)
        paused = threading.Event()

        def pausing_cancel() -> bool:
            if not paused.is_set():
                paused.set()
                marker = directory / "paused.tmp"
                marker.write_text(os.fspath(destination_path))
                marker.rename(directory / "paused")
                while not (directory / "release").exists():
                    time.sleep(0.05)
            return bool(cancel()) if cancel is not None else False

        return original(self, manifest_key, destination_path, format, progress, pausing_cancel, inplace)

    Repository.restore = restore  # type: ignore[method-assign]


if __name__ == "__main__":
    install(Path(os.environ["CAIRN_TEST_PAUSE_DIR"]), int(os.environ.get("CAIRN_TEST_PAUSE_AT", "1")))
    from cairn.cli import main

    main()
