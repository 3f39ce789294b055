"""Reading the whole repository's metadata at once: every manifest and every index segment.

Verify, GC and stats all need "which chunks does each manifest name" and "which blobs does
each pack hold"; this module reads both, recording (not raising) damaged files so that
verify can report them and GC can refuse to run on a damaged repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cairn.engine.chunks import ID_SIZE, ZERO_ID
from cairn.engine.crypto import Sealer
from cairn.engine.errors import CairnError
from cairn.engine.index import IndexEntry, decode_segment
from cairn.engine.manifest import Manifest, decode_manifest, manifest_key_from_object
from cairn.targets.base import Target
from cairn.targets.errors import ObjectNotFound


@dataclass
class Damage:
    """A repository file that could not be read or failed its checks."""

    file: str
    message: str


@dataclass
class ManifestSet:
    manifests: dict[str, Manifest] = field(default_factory=dict)
    damaged: list[Damage] = field(default_factory=list)

    def users(self) -> dict[bytes, list[str]]:
        """Chunk id → the manifest keys that name it."""
        found: dict[bytes, list[str]] = {}
        for key, m in self.manifests.items():
            raw = bytes(m.ids)
            for cid in {raw[i:i + ID_SIZE] for i in range(0, len(raw), ID_SIZE)}:
                if cid != ZERO_ID:
                    found.setdefault(cid, []).append(key)
        return found

    def live(self) -> set[bytes]:
        found: set[bytes] = set()
        for m in self.manifests.values():
            raw = bytes(m.ids)
            found.update(raw[i:i + ID_SIZE] for i in range(0, len(raw), ID_SIZE))
        found.discard(ZERO_ID)
        return found


@dataclass
class SegmentSet:
    segments: dict[str, list[IndexEntry]] = field(default_factory=dict)
    damaged: list[Damage] = field(default_factory=list)

    def by_pack(self) -> dict[bytes, list[IndexEntry]]:
        found: dict[bytes, list[IndexEntry]] = {}
        seen: set[tuple[bytes, bytes, int]] = set()
        for entries in self.segments.values():
            for e in entries:
                mark = (e.chunk_id, e.location.pack_id, e.location.offset)
                if mark not in seen:
                    seen.add(mark)
                    found.setdefault(e.location.pack_id, []).append(e)
        return found


def read_manifests(target: Target, sealer: Sealer) -> ManifestSet:
    result = ManifestSet()
    for obj in target.list("manifests"):
        key = manifest_key_from_object(obj)
        if key is None:
            continue
        try:
            result.manifests[key] = decode_manifest(target.get(obj), sealer, obj)
        except ObjectNotFound:
            continue  # deleted while we listed
        except CairnError as exc:
            result.damaged.append(Damage(obj, exc.message))
    return result


def read_segments(target: Target, sealer: Sealer) -> SegmentSet:
    result = SegmentSet()
    for key in target.list("index"):
        if not key.endswith(".idx"):
            continue
        try:
            result.segments[key] = decode_segment(target.get(key), sealer, key)
        except ObjectNotFound:
            continue
        except CairnError as exc:
            result.damaged.append(Damage(key, exc.message))
    return result
