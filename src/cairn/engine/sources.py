"""Disks to back up: raw files, qcow2 images and block devices, as readable extent maps.

`open_source(path)` detects the kind and returns a `Source`: its virtual size, its data
extents (everything outside them reads as zeros and is never read) and `read_into`.

- raw file: extents from `SEEK_DATA`/`SEEK_HOLE`; read with `os.preadv`;
- block device: one extent covering the device (holes are not visible through it);
- qcow2: extents from `qemu-img map --output=json`. When every data cluster is stored
  plainly in the image itself (no backing file, no compression), each extent names its
  offset in the file and the data is read straight from the file with `os.preadv`;
  otherwise the image is served by a private read-only `qemu-nbd` and read with libnbd.
"""

from __future__ import annotations

import bisect
import errno
import os
import stat
from dataclasses import dataclass
from typing import Protocol, Self

from cairn.engine.errors import SourceError
from cairn.engine.qemu import NbdExport, image_info, image_map

_QCOW2_MAGIC = b"QFI\xfb"


@dataclass(frozen=True)
class Extent:
    """A range of the virtual disk that holds data (may still contain zeros)."""

    offset: int
    length: int


class Source(Protocol):
    path: str
    kind: str
    size: int

    def data_extents(self) -> list[Extent]: ...

    def read_into(self, buf: memoryview, offset: int) -> None: ...

    def close(self) -> None: ...


class OpenedSource(Source, Protocol):
    """A source this code opened from a path: it closes itself at the end of a `with`."""

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


def _read_fully(fd: int, buf: memoryview, offset: int, path: str) -> None:
    done = 0
    total = len(buf)
    while done < total:
        try:
            n = os.preadv(fd, [buf[done:]], offset + done)
        except OSError as exc:
            raise SourceError(f"reading {path} at {offset + done}: {exc.strerror}") from exc
        if n == 0:
            raise SourceError(f"{path} ended at {offset + done} while reading (did it shrink?)")
        done += n


class _FileSource:
    def __init__(self, path: str, kind: str) -> None:
        self.path = path
        self.kind = kind
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise SourceError(f"cannot open {path}: {exc.strerror}") from exc
        self.size = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except (OSError, AttributeError):
            pass

    def read_into(self, buf: memoryview, offset: int) -> None:
        _read_fully(self._fd, buf, offset, self.path)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RawSource(_FileSource):
    """A raw image file; holes are found with SEEK_DATA/SEEK_HOLE and never read."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "raw")

    def data_extents(self) -> list[Extent]:
        extents: list[Extent] = []
        pos = 0
        while pos < self.size:
            try:
                start = os.lseek(self._fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break
                if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                    return [Extent(0, self.size)] if self.size else []
                raise SourceError(f"SEEK_DATA on {self.path}: {exc.strerror}") from exc
            end = min(os.lseek(self._fd, start, os.SEEK_HOLE), self.size)
            if end <= start:
                break
            extents.append(Extent(start, end - start))
            pos = end
        return extents


class BlockSource(_FileSource):
    """A block device: read whole (holes of the layer below are not visible here)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "block")

    def data_extents(self) -> list[Extent]:
        return [Extent(0, self.size)] if self.size else []


class Qcow2Source:
    """A qcow2 image, read from the file directly when it can be, else through qemu-nbd."""

    def __init__(self, path: str, info: dict | None = None) -> None:
        self.path = path
        self.kind = "qcow2"
        info = info or image_info(path)
        if info.get("format") != "qcow2":
            raise SourceError(f"{path} is not a qcow2 image (qemu-img says {info.get('format')})")
        if info.get("encrypted"):
            raise SourceError(f"{path} is an encrypted qcow2 image; Cairn cannot read it without its secret")
        self.size = int(info["virtual-size"])
        # (virtual start, length, host offset or -1)
        self._map: list[tuple[int, int, int]] = []
        direct = not info.get("backing-filename")
        for ent in image_map(path, "qcow2"):
            if not ent.get("data") or ent.get("zero"):
                continue
            host = ent.get("offset")
            if host is None or ent.get("depth", 0) != 0:
                direct = False
            self._map.append((int(ent["start"]), int(ent["length"]), -1 if host is None else int(host)))
        self._starts = [m[0] for m in self._map]
        self._nbd: NbdExport | None = None
        self._fd = -1
        if direct:
            try:
                self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError as exc:
                raise SourceError(f"cannot open {path}: {exc.strerror}") from exc
        else:
            self._nbd = NbdExport(path, "qcow2", readonly=True)

    @property
    def reads_through_nbd(self) -> bool:
        return self._nbd is not None

    def data_extents(self) -> list[Extent]:
        return [Extent(s, n) for s, n, _h in self._map]

    def read_into(self, buf: memoryview, offset: int) -> None:
        if self._nbd is not None:
            self._nbd.client.pread_into(buf, offset)
            return
        done = 0
        while done < len(buf):
            pos = offset + done
            i = bisect.bisect_right(self._starts, pos) - 1
            start, length, host = self._map[i] if i >= 0 else (0, 0, -1)
            if i < 0 or pos >= start + length:
                # Outside every data extent: zeros (callers normally never ask for these).
                nxt = self._starts[i + 1] if i + 1 < len(self._starts) else offset + len(buf)
                n = min(len(buf) - done, nxt - pos)
                buf[done:done + n] = bytes(n)
            else:
                n = min(len(buf) - done, start + length - pos)
                _read_fully(self._fd, buf[done:done + n], host + (pos - start), self.path)
            done += n

    def close(self) -> None:
        if self._nbd is not None:
            self._nbd.close()
            self._nbd = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(path: str | os.PathLike[str]) -> OpenedSource:
    """Open a disk for reading, detecting block device, qcow2 or raw."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise SourceError(f"cannot open disk {path}: {exc.strerror}") from exc
    if stat.S_ISBLK(st.st_mode):
        return BlockSource(path)
    if not stat.S_ISREG(st.st_mode):
        raise SourceError(f"{path} is neither a regular file nor a block device")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise SourceError(f"cannot read disk {path}: {exc.strerror}") from exc
    if magic == _QCOW2_MAGIC:
        return Qcow2Source(path)
    return RawSource(path)
