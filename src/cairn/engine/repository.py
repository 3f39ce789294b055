"""`Repository`: the engine's public face, tying config, keys, locks and operations together.

A repository on a target holds::

    config              parameters (config.py)
    keys/<id>.key       wrapped master secret, encrypted repositories only (crypto.py)
    packs/xx/<id>.pack  blobs (packs.py, chunks.py)
    index/<id>.idx      index segments (index.py)
    manifests/<key>.manifest  one per disk per snapshot (manifest.py)
    locks/              lock files and the GC plan (locks.py)

Every operation is a function in its own module; this class opens the repository once
(config, key) and passes what each needs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from cairn.engine.backup import BackupResult, CancelFn, ProgressFn, run_backup
from cairn.engine.catalog import read_manifests, read_segments
from cairn.engine.config import (
    CONFIG_KEY,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PACK_SIZE,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    RepositoryConfig,
    decode_config,
    encode_config,
)
from cairn.engine.crypto import KeySource, RepoKeys, Sealer, new_master, unwrap_master, wrap_master
from cairn.engine.errors import CorruptObject, ManifestNotFound, RepositoryExists, RepositoryNotFound, WrongKey
from cairn.engine.gc import DEFAULT_REPACK_BELOW, GcReport, run_gc
from cairn.engine.locks import PLAN_KEY, Lock, LockTiming, list_locks
from cairn.engine.manifest import Manifest, decode_manifest, manifest_key_from_object, manifest_object_key
from cairn.engine.restore import RestoreResult, run_restore
from cairn.engine.snapshot_reader import SnapshotReader
from cairn.engine.sources import Source, open_source
from cairn.engine.verify import VerifyReport, run_verify
from cairn.errors import InvalidInput
from cairn.targets.base import Target
from cairn.targets.errors import ObjectNotFound

DEFAULT_WORKERS = max(2, min(8, os.cpu_count() or 2))


@dataclass(frozen=True)
class RepoStats:
    """Sizes and counts of one repository."""

    manifests: int
    logical_bytes: int
    packs: int
    stored_bytes: int
    index_segments: int
    unique_chunks: int
    encrypted: bool
    chunk_size: int
    pack_size: int
    locks: int
    gc_plan_pending: bool

    @property
    def dedup_ratio(self) -> float:
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else 0.0


class Repository:
    """An open repository on a target."""

    def __init__(self, target: Target, config: RepositoryConfig, keys: RepoKeys | None,
                 timing: LockTiming | None = None, workers: int = DEFAULT_WORKERS) -> None:
        self.target = target
        self.config = config
        self.sealer = Sealer(keys)
        self.timing = timing or LockTiming()
        self.workers = workers

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    def init(cls, target: Target, encryption: KeySource | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
             pack_size: int = DEFAULT_PACK_SIZE, timing: LockTiming | None = None,
             workers: int = DEFAULT_WORKERS) -> Repository:
        """Create a new repository; `encryption` is a `Passphrase` or `KeyFile`, or None."""
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE or chunk_size % 4096:
            raise InvalidInput(f"chunk size must be a multiple of 4096 between {MIN_CHUNK_SIZE} and "
                               f"{MAX_CHUNK_SIZE}", "chunk_size")
        if not chunk_size <= pack_size <= 1 << 31:
            raise InvalidInput("pack size must be at least the chunk size and below 2 GiB", "pack_size")
        ensure = getattr(target, "ensure_root", None)
        if ensure is not None:
            ensure()
        if target.exists(CONFIG_KEY):
            raise RepositoryExists(f"a repository already exists at {target.describe()}")
        config = RepositoryConfig.new(chunk_size, pack_size, encryption is not None)
        keys = None
        if encryption is not None:
            master = new_master()
            target.put(f"keys/{os.urandom(16).hex()}.key", wrap_master(master, encryption))
            keys = RepoKeys.from_master(master)
        # The config is the last file written: a crashed init leaves no repository.
        if not target.create_exclusive(CONFIG_KEY, encode_config(config)):
            raise RepositoryExists(f"a repository already exists at {target.describe()}")
        return cls(target, config, keys, timing, workers)

    @classmethod
    def open(cls, target: Target, key: KeySource | None = None, timing: LockTiming | None = None,
             workers: int = DEFAULT_WORKERS) -> Repository:
        """Open an existing repository; `WrongKey` if `key` is missing or does not fit."""
        try:
            config = decode_config(target.get(CONFIG_KEY))
        except ObjectNotFound:
            raise RepositoryNotFound(f"no Cairn repository at {target.describe()}") from None
        keys = None
        if config.encrypted:
            if key is None:
                raise WrongKey("this repository is encrypted: give a passphrase or key file")
            master = None
            damaged: list[CorruptObject] = []
            intact = 0
            for name in target.list("keys"):
                try:
                    master = unwrap_master(target.get(name), key, name)
                    break
                except WrongKey:
                    intact += 1
                except CorruptObject as exc:
                    damaged.append(exc)
            if master is None:
                if damaged and not intact:
                    raise damaged[0]
                raise WrongKey("wrong passphrase or key file: it does not unlock this repository")
            keys = RepoKeys.from_master(master)
        return cls(target, config, keys, timing, workers)

    # -- operations --------------------------------------------------------------------

    def load_manifest(self, manifest_key: str) -> Manifest:
        obj = manifest_object_key(manifest_key)
        try:
            data = self.target.get(obj)
        except ObjectNotFound:
            raise ManifestNotFound(f"no manifest named {manifest_key!r}") from None
        return decode_manifest(data, self.sealer, obj)

    def backup(self, source: Source | str | os.PathLike[str], manifest_key: str, parent_key: str | None = None,
               changed_ranges: list[tuple[int, int]] | None = None, progress: ProgressFn | None = None,
               cancel: CancelFn | None = None, zstd_level: int | None = None) -> BackupResult:
        """Back up `source` (a `Source` or a path) as `manifest_key`; see backup.py."""
        parent = self.load_manifest(parent_key) if parent_key is not None else None
        if parent is not None and parent.chunk_size != self.config.chunk_size:
            raise InvalidInput("the parent manifest has another chunk size", "parent_key")
        owned = isinstance(source, (str, os.PathLike))
        src: Source = open_source(source) if isinstance(source, (str, os.PathLike)) else source
        try:
            kwargs = {} if zstd_level is None else {"zstd_level": zstd_level}
            return run_backup(self.target, self.config, self.sealer, self.timing, src, manifest_key, parent,
                              changed_ranges, progress, cancel, self.workers, **kwargs)
        finally:
            if owned:
                src.close()

    def restore(self, manifest_key: str, destination_path: str | os.PathLike[str], format: str = "raw",
                progress: ProgressFn | None = None, cancel: CancelFn | None = None,
                inplace: bool = False) -> RestoreResult:
        """Write the disk of `manifest_key` to `destination_path` (raw, qcow2, or a block device).

        `inplace`: the destination is the disk itself; only the chunks that differ from
        what it holds now are fetched and written (see run_restore)."""
        with Lock(self.target, "restore", self.timing):
            manifest = self.load_manifest(manifest_key)
            return run_restore(self.target, self.sealer, manifest, os.fspath(destination_path), format, progress,
                               cancel, self.workers, inplace=inplace)

    def open_reader(self, manifest_key: str) -> SnapshotReader:
        """The disk of `manifest_key`, readable at any offset (for an instant restore's
        export); holds a restore lock until its `close()`."""
        return SnapshotReader(self.target, self.sealer, self.load_manifest(manifest_key), self.timing)

    def delete_manifest(self, manifest_key: str) -> None:
        """Forget one snapshot of one disk; its chunks become garbage for the next GC."""
        obj = manifest_object_key(manifest_key)
        if not self.target.exists(obj):
            raise ManifestNotFound(f"no manifest named {manifest_key!r}")
        self.target.delete(obj)

    def list_manifests(self) -> list[str]:
        keys = []
        for obj in self.target.list("manifests"):
            key = manifest_key_from_object(obj)
            if key is not None:
                keys.append(key)
        return keys

    def verify(self, deep: bool = False) -> VerifyReport:
        """Check references (quick) or every byte (deep); GC may not run meanwhile."""
        with Lock(self.target, "verify", self.timing, exclusive=True):
            return run_verify(self.target, self.sealer, deep, self.workers)

    def gc(self, repack_below: float = DEFAULT_REPACK_BELOW, wait_seconds: float | None = None) -> GcReport:
        """Delete what no manifest needs; safe alongside backups (see gc.py)."""
        return run_gc(self.target, self.sealer, self.config.pack_size, self.timing, repack_below, wait_seconds)

    def stats(self) -> RepoStats:
        mset = read_manifests(self.target, self.sealer)
        sset = read_segments(self.target, self.sealer)
        chunks = {e.chunk_id for entries in sset.segments.values() for e in entries}
        packs = 0
        stored = 0
        for key in self.target.list("packs"):
            packs += 1
            stored += self.target.size(key)
        for key in sset.segments:
            stored += self.target.size(key)
        for obj in self.target.list("manifests"):
            stored += self.target.size(obj)
        return RepoStats(
            manifests=len(mset.manifests),
            logical_bytes=sum(m.disk_size for m in mset.manifests.values()),
            packs=packs, stored_bytes=stored, index_segments=len(sset.segments), unique_chunks=len(chunks),
            encrypted=self.config.encrypted, chunk_size=self.config.chunk_size, pack_size=self.config.pack_size,
            locks=len(list_locks(self.target)), gc_plan_pending=self.target.exists(PLAN_KEY))

    def wait_idle(self, seconds: float) -> bool:
        """Wait until no lock is held (for tests and maintenance scripts)."""
        deadline = time.monotonic() + seconds
        while list_locks(self.target):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True
