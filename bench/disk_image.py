"""The benchmark's test disk: a sparse raw image holding an ext4 filesystem of real files.

Synthetic data (random bytes, repeated patterns) flatters or punishes compression and
dedup in ways no VM disk does, so the disk is filled with the files of this machine's
`/usr`: binaries, libraries, headers and text, the mix a root filesystem holds.
`mkfs.ext4 -d` copies a directory into the new filesystem without mounting it, so the
build needs no loop device and no privileges beyond reading `/usr`.

Images are cached in the work directory keyed by size, because building one copies
gigabytes and takes longer than a backup; every run then starts from the same bytes.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

GiB = 1 << 30
MiB = 1 << 20
FS_BLOCK = 4096

# ext4 on 4 GiB keeps ~5% for its journal and inode tables; 70% full leaves room for
# small-file rounding and still makes most chunks of the disk real data.
FILL_FRACTION = 0.70
# Larger disks get the same data as a 4 GiB one: the RSS check wants disk size to vary
# while the work (bytes to read, hash, compress) stays put, so memory can be compared.
DATA_BASIS = 4 * GiB


@dataclass(frozen=True)
class DiskImage:
    """A built image and what went into it."""

    path: Path
    size: int
    data_bytes: int  # bytes of file content copied into the filesystem
    files: int
    allocated: int  # bytes the sparse image occupies on the host


def parse_size(text: str) -> int:
    """Parse '4G', '512M', '16GiB' or a plain byte count into bytes (binary units)."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2).upper() or " "))


def format_size(n: int) -> str:
    """Bytes as the shortest exact binary-unit size ('4G', '1536M'), for cache keys."""
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def allocated_bytes(path: Path) -> int:
    """Bytes a file or directory tree really occupies (du: st_blocks, not st_size)."""
    if path.is_file():
        return path.stat().st_blocks * 512
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:  # a tool's temp file vanished under us
                pass
    return total


def _stage_usr(dest: Path, budget: int, source: Path = Path("/usr")) -> tuple[int, int]:
    """Copy regular files and symlinks of `source` into `dest` until `budget` bytes.

    The walk is sorted so the same machine always yields the same selection. A file
    that would overflow the budget is skipped, not truncated, and the walk goes on so
    smaller files still fill the remainder. Sizes count in whole filesystem blocks,
    as ext4 will store them.
    """
    used = files = data = 0
    for root, dirs, names in os.walk(source):
        dirs.sort()
        rel = Path(root).relative_to(source)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in sorted(names):
            src = Path(root) / name
            try:
                st = src.lstat()
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                (dest / rel / name).symlink_to(os.readlink(src))
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # device nodes, sockets: nothing a backup of data cares about
            cost = -(-st.st_size // FS_BLOCK) * FS_BLOCK + FS_BLOCK  # + inode/dir share
            if used + cost > budget:
                continue
            try:
                shutil.copyfile(src, dest / rel / name)
            except OSError:
                continue  # unreadable file: skip, the selection stays deterministic enough
            used += cost
            files += 1
            data += st.st_size
    return data, files


def build_image(workdir: Path, size: int) -> DiskImage:
    """Return the cached ext4 image of `size` bytes in `workdir`, building it if missing."""
    images = workdir / "images"
    images.mkdir(parents=True, exist_ok=True)
    path = images / f"usr-ext4-{format_size(size)}.raw"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        return DiskImage(path, size, meta["data_bytes"], meta["files"], allocated_bytes(path))

    budget = int(min(size, DATA_BASIS) * FILL_FRACTION)
    staging = images / f"staging-{format_size(size)}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    tmp = path.with_suffix(".raw.part")
    try:
        data, files = _stage_usr(staging, budget)
        tmp.unlink(missing_ok=True)
        with open(tmp, "wb") as f:
            f.truncate(size)  # sparse: only what mkfs writes is allocated
        # -m 0: no root reserve, a data disk; -E nodiscard keeps mkfs from punching the
        # file (it is already all holes); -F because the target is a regular file.
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-m", "0", "-L", "cairn-bench",
             "-E", "nodiscard", "-d", str(staging), str(tmp)],
            check=True,
        )
        os.replace(tmp, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        tmp.unlink(missing_ok=True)
    meta_path.write_text(json.dumps({"data_bytes": data, "files": files}))
    return DiskImage(path, size, data, files, allocated_bytes(path))


def copy_sparse(src: Path, dst: Path) -> None:
    """Copy an image keeping its holes (cp knows SEEK_DATA/SEEK_HOLE and reflinks)."""
    dst.unlink(missing_ok=True)
    subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(src), str(dst)], check=True)


def scatter_writes(path: Path, count: int = 200, length: int = MiB,
                   seed: int = 20261126) -> list[list[int]]:
    """Overwrite `count` random places of the image with random data; return the ranges.

    Offsets are 4 KiB aligned, as a guest's block writes are, and drawn over the
    whole disk, holes included, since a guest writes wherever its filesystem
    allocates. The ranges are sorted and merged where they touch, which is what a
    dirty bitmap reports; they are the changed-range map handed to Cairn.
    """
    size = path.stat().st_size
    rng = random.Random(seed)
    ranges = []
    with open(path, "r+b") as f:
        for _ in range(count):
            offset = rng.randrange(0, (size - length) // FS_BLOCK + 1) * FS_BLOCK
            f.seek(offset)
            f.write(rng.randbytes(length))
            ranges.append([offset, length])
        f.flush()
        os.fsync(f.fileno())
    ranges.sort()
    merged: list[list[int]] = []
    for off, ln in ranges:
        if merged and off <= merged[-1][0] + merged[-1][1]:
            last = merged[-1]
            last[1] = max(last[0] + last[1], off + ln) - last[0]
        else:
            merged.append([off, ln])
    return merged
