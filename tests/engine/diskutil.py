"""Test disks: sparse raw images with seeded content, qcow2 conversion, checksums."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess

MIB = 1024 * 1024


def make_disk(path: str | os.PathLike[str], size: int = 32 * MIB, seed: int = 1,
              extents: list[tuple[int, int, str]] | None = None) -> str:
    """Write a sparse raw disk: `extents` of (offset, length, kind), kind in random/text/zero."""
    path = os.fspath(path)
    rng = random.Random(seed)
    if extents is None:
        s = size // 32  # the layout of a 32 MiB disk, scaled
        extents = [(0, 2 * s, "text"), (5 * s, 3 * s, "random"), (9 * s, s, "zero"),
                   (size // 2, 4 * s, "random"), (size - 3 * s, 2 * s + 12345, "text")]
    with open(path, "wb") as handle:
        handle.truncate(size)
        for off, length, kind in extents:
            handle.seek(off)
            handle.write(_content(rng, length, kind))
    return path


def _content(rng: random.Random, length: int, kind: str) -> bytes:
    if kind == "random":
        return rng.randbytes(length)
    if kind == "zero":
        return bytes(length)
    words = [rng.randbytes(rng.randint(2, 12)).hex().encode() for _ in range(64)]
    out = bytearray()
    while len(out) < length:
        out += rng.choice(words) + b" "
    return bytes(out[:length])


def scribble(path: str | os.PathLike[str], seed: int, count: int = 4, length: int = 8192) -> list[tuple[int, int]]:
    """Overwrite `count` random ranges in place; return them (a changed-range map)."""
    rng = random.Random(seed)
    size = os.path.getsize(path)
    changed = []
    with open(path, "r+b") as handle:
        for _ in range(count):
            off = rng.randrange(0, size - length)
            handle.seek(off)
            handle.write(rng.randbytes(length))
            changed.append((off, length))
    return changed


def sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(4 * MIB):
            digest.update(block)
    return digest.hexdigest()


def to_qcow2(raw: str, qcow2: str, compressed: bool = False) -> str:
    args = ["qemu-img", "convert", "-O", "qcow2"] + (["-c"] if compressed else []) + [raw, qcow2]
    subprocess.run(args, check=True)
    return qcow2


def qcow2_sha256(qcow2: str, scratch: str) -> str:
    subprocess.run(["qemu-img", "convert", "-O", "raw", qcow2, scratch], check=True)
    return sha256(scratch)
