"""Copying a disk's manifest from one repository into another (a workload moving to
another project: each project has its own chunk store, so chunks cannot be shared).

`ManifestSource` reads the disk a manifest describes, chunk by chunk, decoded from the
source repository: its data extents are the chunks that are not all zeros. The copy is
a backup of that source into the destination repository, so it follows the
destination's own commit order (packs → index segment → manifest) and deduplicates
against what the destination stores already; a crash leaves only garbage there, and
the source repository is only read. While it reads, the copy holds the source's
`restore` lock, so the garbage collection of the source cannot move packs under it.

A copy whose destination manifest exists already is not made again (`copy_manifest`
answers None): a move run again after a crash carries on where it stopped.
"""

from __future__ import annotations

import threading

from cairn.engine.backup import BackupResult, CancelFn, ProgressFn
from cairn.engine.chunks import ZERO_ID
from cairn.engine.errors import ManifestExists
from cairn.engine.index import load_index
from cairn.engine.locks import Lock
from cairn.engine.manifest import Manifest, manifest_object_key
from cairn.engine.repository import Repository
from cairn.engine.restore import ChunkFetcher
from cairn.engine.sources import Extent


class ManifestSource:
    """The disk of a manifest of `repository`, as a `Source` for a backup."""

    kind = "manifest"

    def __init__(self, repository: Repository, manifest_key: str) -> None:
        self.manifest: Manifest = repository.load_manifest(manifest_key)
        self.path = f"{repository.target.describe()}:{manifest_key}"
        self.size = self.manifest.disk_size
        self._chunk = self.manifest.chunk_size
        self._fetcher = ChunkFetcher(repository.target, repository.sealer,
                                     load_index(repository.target, repository.sealer))
        self._lock = threading.Lock()
        self._cached: tuple[int, bytes] | None = None

    def data_extents(self) -> list[Extent]:
        extents: list[Extent] = []
        for index in range(self.manifest.chunk_count):
            if self.manifest.chunk_id(index) == ZERO_ID:
                continue
            start = index * self._chunk
            length = min(self._chunk, self.size - start)
            if extents and extents[-1].offset + extents[-1].length == start:
                extents[-1] = Extent(extents[-1].offset, extents[-1].length + length)
            else:
                extents.append(Extent(start, length))
        return extents

    def _chunk_data(self, index: int) -> bytes:
        with self._lock:
            if self._cached is not None and self._cached[0] == index:
                return self._cached[1]
        cid = self.manifest.chunk_id(index)
        data = bytes(min(self._chunk, self.size - index * self._chunk)) if cid == ZERO_ID else self._fetcher.fetch(cid)
        with self._lock:
            self._cached = (index, data)
        return data

    def read_into(self, buf: memoryview, offset: int) -> None:
        done = 0
        while done < len(buf):
            position = offset + done
            index = position // self._chunk
            within = position - index * self._chunk
            data = self._chunk_data(index)
            take = min(len(buf) - done, len(data) - within)
            if take <= 0:  # past the end of the disk: zeros, as a file reads
                buf[done:] = bytes(len(buf) - done)
                return
            buf[done:done + take] = data[within:within + take]
            done += take

    def close(self) -> None:
        self._cached = None


def copy_manifest(source: Repository, destination: Repository, manifest_key: str,
                  progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> BackupResult | None:
    """Copy the disk of `manifest_key` from `source` into `destination` under the same
    key; None when the destination has it already."""
    if destination.target.exists(manifest_object_key(manifest_key)):
        return None
    with Lock(source.target, "restore", source.timing):
        disk = ManifestSource(source, manifest_key)
        try:
            return destination.backup(disk, manifest_key, progress=progress, cancel=cancel)
        except ManifestExists:  # made meanwhile by another run of the same move
            return None
        finally:
            disk.close()
