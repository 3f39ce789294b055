"""The read-only NBD export of a snapshot, read by QEMU's own client (qemu-img, qemu-io)
and by libnbd, with structured replies and block status and without."""

from __future__ import annotations

import errno
import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cairn.engine import Repository
from cairn.engine.qemu import NBD_STATE_HOLE, import_nbd, nbd_extents
from cairn.engine.snapshot_reader import SnapshotReader
from cairn.platforms import nbd_server
from cairn.platforms.base import DiskReader
from cairn.platforms.nbd_server import NbdServer
from cairn.targets import FilesystemTarget
from tests.engine.diskutil import MIB, make_disk, sha256

# 1 MiB chunks: 0-1 data, 2-3 zero (the zeros written into 2 too), 4 data, 5-6 zero, 7 data
LAYOUT = [(0, MIB + 5, "text"), (MIB + 100, 3000, "random"), (2 * MIB + 4096, 8192, "zero"),
          (4 * MIB + 4096, 512 * 1024, "random"), (8 * MIB - 4096, 4096, "text")]
ZERO_RANGES = [(2 * MIB, 2 * MIB), (5 * MIB, 2 * MIB)]
DATA_RANGES = [(0, 2 * MIB), (4 * MIB, MIB), (7 * MIB, MIB)]


@contextmanager
def _export(tmp_path: Path, wrap: Callable[[SnapshotReader], DiskReader] = lambda reader: reader
            ) -> Iterator[tuple[NbdServer, str]]:
    """A snapshot of an 8 MiB disk of LAYOUT exported over NBD (its reader wrapped in
    `wrap`), and the disk's path."""
    raw = make_disk(tmp_path / "disk.raw", size=8 * MIB, seed=9, extents=LAYOUT)
    repo = Repository.init(FilesystemTarget(tmp_path / "repo", fsync=False), chunk_size=MIB)
    repo.backup(raw, "a/1")
    reader = repo.open_reader("a/1")
    server = NbdServer(wrap(reader), str(tmp_path / "nbd.sock"), "vda")
    try:
        yield server, raw
    finally:
        server.close()
        reader.close()


@contextmanager
def _libnbd(url: str, structured: bool) -> Iterator[Any]:
    """A libnbd handle on the export that asks for base:allocation, and for structured
    replies or not."""
    handle = import_nbd().NBD()
    handle.set_request_structured_replies(structured)
    handle.add_meta_context("base:allocation")
    handle.connect_uri(url)
    try:
        yield handle
    finally:
        handle.shutdown()


class _GoneTarget:
    """A reader whose target went away after the first MiB."""

    def __init__(self, inner: SnapshotReader) -> None:
        self.inner = inner
        self.size = inner.size

    def read_into(self, buf: memoryview, offset: int) -> None:
        if offset + len(buf) > MIB:
            raise OSError("the backup target is unreachable")
        self.inner.read_into(buf, offset)

    def extents(self, offset: int, length: int) -> list[tuple[int, bool]]:
        return self.inner.extents(offset, length)


def test_the_byte_layouts_have_the_protocols_sizes() -> None:
    sizes = {"HANDSHAKE": 18, "OPTION": 16, "OPTION_REPLY": 20, "EXPORT_NAME_REPLY": 10, "INFO_EXPORT_REPLY": 12,
             "INFO_BLOCK_SIZE_REPLY": 14, "LENGTH": 4, "REQUEST": 28, "SIMPLE_REPLY": 16, "CHUNK": 20,
             "OFFSET": 8, "OFFSET_HOLE": 12, "ERROR": 6, "EXTENT": 8}
    assert {name: getattr(nbd_server, name).size for name in sizes} == sizes


def test_qemu_reads_the_snapshot_bit_for_bit_through_the_export(tmp_path: Path) -> None:
    with _export(tmp_path) as (server, raw):
        out = tmp_path / "out.raw"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", server.url, str(out)], check=True)
        assert sha256(out) == sha256(raw)
        assert server.failure is None
        # a qcow2 overlay reads through it as its backing file
        overlay = tmp_path / "overlay.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", server.url, str(overlay)],
                       check=True)
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(overlay), str(tmp_path / "via.raw")], check=True)
        assert sha256(tmp_path / "via.raw") == sha256(raw)


def test_qemu_img_maps_the_zero_chunks_as_holes_and_the_rest_as_data(tmp_path: Path) -> None:
    with _export(tmp_path) as (server, _raw):
        out = subprocess.run(["qemu-img", "map", "--output=json", "-f", "raw", server.url], check=True,
                             capture_output=True, text=True).stdout
        mapped = [(e["start"], e["length"], e["data"], e["zero"]) for e in json.loads(out)]
        expected = [(at, n, True, False) for at, n in DATA_RANGES] + [(at, n, False, False) for at, n in ZERO_RANGES]
        assert mapped == sorted(expected)


def test_writes_are_refused(tmp_path: Path) -> None:
    with _export(tmp_path) as (server, _raw):
        proc = subprocess.run(["qemu-io", "-f", "raw", "-c", "write 0 4k", server.url], capture_output=True, text=True)
        assert proc.returncode != 0 or "failed" in proc.stdout + proc.stderr


def test_a_read_that_fails_is_an_io_error_never_zeros_and_is_kept(tmp_path: Path) -> None:
    with _export(tmp_path, _GoneTarget) as (server, _raw):
        proc = subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", server.url,
                               str(tmp_path / "out.raw")], capture_output=True, text=True)
        assert proc.returncode != 0
        assert "Input/output error" in proc.stderr
        assert server.failure == "the backup target is unreachable"


def test_libnbd_with_structured_replies_reads_bit_for_bit_and_gets_block_status(tmp_path: Path) -> None:
    nbd = import_nbd()
    with _export(tmp_path) as (server, raw), _libnbd(server.url, structured=True) as handle:
        disk = Path(raw).read_bytes()
        assert handle.get_structured_replies_negotiated()
        assert handle.can_meta_context("base:allocation")
        assert handle.pread(len(disk), 0) == disk
        assert server.bytes_served == sum(n for _at, n in DATA_RANGES)  # the zero chunks went as holes
        # a read across data and zeros, unaligned
        assert handle.pread(3 * MIB + 777, MIB + 3) == disk[MIB + 3:4 * MIB + 780]
        holes = nbd_extents(handle, len(disk), "base:allocation", lambda flags: flags == NBD_STATE_HOLE)
        assert holes == ZERO_RANGES
        assert nbd_extents(handle, len(disk), "base:allocation", lambda flags: flags == 0) == DATA_RANGES
        seen: list[list[int]] = []

        def collect(_context: str, _offset: int, entries: list[int], _err: Any) -> int:
            seen.append(entries)
            return 0

        handle.block_status(4 * MIB, 3 * MIB, collect, nbd.CMD_FLAG_REQ_ONE)  # one extent, the first
        assert seen == [[MIB, NBD_STATE_HOLE]]


def test_the_metadata_contexts_are_listed(tmp_path: Path) -> None:
    nbd = import_nbd()
    with _export(tmp_path) as (server, _raw):
        handle = nbd.NBD()
        handle.set_opt_mode(True)
        handle.connect_uri(server.url)
        try:  # no query lists every context; base: is the namespace's wildcard
            for query, expected in (([], ["base:allocation"]), (["base:"], ["base:allocation"]),
                                    (["base:allocation"], ["base:allocation"]), (["qemu:dirty-bitmap:x"], [])):
                listed: list[str] = []
                handle.clear_meta_contexts()
                for name in query:
                    handle.add_meta_context(name)
                handle.opt_list_meta_context(listed.append)
                assert listed == expected
        finally:
            handle.opt_abort()


def test_a_client_without_structured_replies_gets_every_byte(tmp_path: Path) -> None:
    with _export(tmp_path) as (server, raw), _libnbd(server.url, structured=False) as handle:
        disk = Path(raw).read_bytes()
        assert not handle.get_structured_replies_negotiated()
        assert not handle.can_meta_context("base:allocation")
        assert handle.pread(len(disk), 0) == disk
        assert server.bytes_served == len(disk)


@pytest.mark.parametrize("structured", [True, False])
def test_a_read_that_fails_is_eio_for_libnbd_with_and_without_structured_replies(tmp_path: Path,
                                                                                 structured: bool) -> None:
    nbd = import_nbd()
    with _export(tmp_path, _GoneTarget) as (server, raw), _libnbd(server.url, structured) as handle:
        assert handle.get_structured_replies_negotiated() == structured
        assert handle.pread(MIB, 0) == Path(raw).read_bytes()[:MIB]
        with pytest.raises(nbd.Error) as failed:
            handle.pread(MIB, MIB)
        assert failed.value.errnum == errno.EIO
        assert server.failure == "the backup target is unreachable"
        if structured:  # the zero chunks need no read
            assert handle.pread(MIB, 2 * MIB) == bytes(MIB)
