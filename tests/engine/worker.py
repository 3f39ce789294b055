"""A separate process running one engine operation, for crash and concurrency tests.

    python tests/engine/worker.py backup REPO DISK KEY [--parent P] [--pause-file F] [--passphrase X]
    python tests/engine/worker.py gc REPO [--passphrase X]
    python tests/engine/worker.py loop REPO WORKDIR SEED [--count N]

REPO is a directory, or `s3:<bucket>/<prefix>` on the Swift of scripts/swift-dev.sh.

`loop` backs up COUNT freshly generated disks (seeds SEED*100+j, see `loop_disk`) as
manifests `c<SEED>/<j>`, so a test can kill it at any moment and still know exactly
what each committed manifest must restore to.

With --pause-file the backup waits, after reading its first chunks (its index is loaded
and it has deduplicated against it), until that file exists: a real process held at a
known point without patching the engine. `READY` is printed when it reaches the pause.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from cairn.engine import LockTiming, Passphrase, Repository
from cairn.targets import FilesystemTarget, Target

TIMING = LockTiming(heartbeat_seconds=0.2, stale_seconds=5.0, gc_wait_seconds=20.0)


def loop_disk(workdir: str, seed: int, j: int) -> str:
    """The disk `loop` backs up as c<seed>/<j>; the same call regenerates it bit for bit."""
    # run as a script, the repository root is not on the path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from tests.engine.diskutil import MIB, make_disk

    return make_disk(os.path.join(workdir, f"loop-{seed}-{j}.raw"), size=3 * MIB, seed=seed * 100 + j,
                     extents=[(0, 512 * 1024, "text"), (MIB, MIB, "random"), (2 * MIB + 4096, 300_000, "text")])


def open_target(spec: str, fsync: bool) -> Target:
    if spec.startswith("s3:"):
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        from cairn.targets.s3 import S3Target
        from tests import swiftdev

        bucket, _, prefix = spec[3:].partition("/")
        return S3Target(swiftdev.settings(prefix=prefix, bucket=bucket))
    return FilesystemTarget(spec, fsync=fsync)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("op")
    parser.add_argument("repo")
    parser.add_argument("disk", nargs="?")
    parser.add_argument("key", nargs="?")
    parser.add_argument("--parent")
    parser.add_argument("--pause-file")
    parser.add_argument("--passphrase")
    parser.add_argument("--fsync", action="store_true")
    parser.add_argument("--count", type=int, default=3)
    args = parser.parse_args()
    key = Passphrase(args.passphrase) if args.passphrase else None
    repo = Repository.open(open_target(args.repo, args.fsync), key=key, timing=TIMING)
    if args.op == "loop":
        for j in range(args.count):
            disk = loop_disk(args.disk, int(args.key), j)
            repo.backup(disk, f"c{args.key}/{j}")
        return
    if args.op == "gc":
        print("STARTED", flush=True)
        report = repo.gc()
        print(json.dumps({"pending": report.pending, "deleted": report.packs_deleted}), flush=True)
        return
    paused = False

    def progress(done: int, total: int) -> None:
        nonlocal paused
        if args.pause_file and not paused and done > 0:
            paused = True
            print("READY", flush=True)
            while not os.path.exists(args.pause_file):
                time.sleep(0.02)

    result = repo.backup(args.disk, args.key, parent_key=args.parent, progress=progress)
    print(json.dumps({"chunks_new": result.chunks_new, "key": result.manifest_key}), flush=True)


if __name__ == "__main__":
    main()
