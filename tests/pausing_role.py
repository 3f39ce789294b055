"""`cairn serve` or `cairn worker` whose reading of one disk stops at a gate (tests only).

    python tests/pausing_role.py serve --port 8780
    python tests/pausing_role.py worker --name worker1

takes the usual arguments, and from the environment:

- `CAIRN_TEST_HOLD_DISK`: the path of the disk to hold;
- `CAIRN_TEST_HOLD_AT`: the byte where the first snapshot of it stops reading;
- `CAIRN_TEST_HOLD_DIR`: the gate's directory: the held read creates `reached` there and
  waits until the test creates `release` (or kills the process).

The process is the real role: only its platform is wrapped (`tests/pausing.py`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cairn.config import Settings
from cairn.platforms.base import Platform
from cairn.runtime import Runtime, build_platform, build_runtime
from tests.pausing import FileGate, PausingPlatform


def build_holding_runtime(settings: Settings, broker: bool = False, platform: Platform | None = None) -> Runtime:
    """`build_runtime`, with the platform reading the held disk through a FileGate."""
    disks = PausingPlatform()
    disks.arm(os.environ["CAIRN_TEST_HOLD_DISK"],
              FileGate(int(os.environ["CAIRN_TEST_HOLD_AT"]), Path(os.environ["CAIRN_TEST_HOLD_DIR"])))
    runtime = build_runtime(settings, broker, platform=disks)
    disks.attach(platform if platform is not None else build_platform(settings, runtime.database))
    return runtime


def main() -> None:
    from cairn.cli import main as cairn_main
    from cairn.commands import serve, worker

    # The role commands build their runtime through the name they imported.
    serve.build_runtime = build_holding_runtime
    worker.build_runtime = build_holding_runtime
    sys.argv[0] = "cairn"
    cairn_main()


if __name__ == "__main__":
    main()
