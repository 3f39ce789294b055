"""Recognises a disk image's format and virtual size from its first bytes.

qcow2 (any version) starts with the magic `QFI\\xfb`; its virtual size is the big-endian
u64 at byte 24 of the header. Anything else is read as raw, whose size is the file's
(or block device's) length.
"""

from __future__ import annotations

import os
import stat
import struct

from cairn.errors import InvalidInput

QCOW2_MAGIC = b"QFI\xfb"


def probe_disk(path: str) -> tuple[str, int]:
    """(format, virtual size in bytes) of the disk at `path`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise InvalidInput(f"Disk {path} cannot be opened: {exc.strerror}.", "disk") from exc
    try:
        info = os.fstat(fd)
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISBLK(info.st_mode)):
            raise InvalidInput(f"Disk {path} is neither a file nor a block device.", "disk")
        header = os.pread(fd, 32, 0)
        if header[:4] == QCOW2_MAGIC and len(header) >= 32:
            return "qcow2", struct.unpack(">Q", header[24:32])[0]
        return "raw", os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)
