"""The one place that talks to QEMU's tools: `qemu-img` and `qemu-nbd` + libnbd.

libnbd's Python binding ships as a Debian package (python3-libnbd), outside the venv;
`import_nbd` loads just its two modules (`libnbdmod`, `nbd`) with
`cairn.system_python`, lazily, only when an image must be read or written through NBD.
Every tool failure leaves as `ToolFailed`, every unusable image as `SourceError`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from cairn.engine.errors import SourceError, ToolFailed
from cairn.system_python import import_system_modules


def import_nbd() -> ModuleType:
    try:
        return import_system_modules(("libnbdmod", "nbd"))  # nbd.py imports libnbdmod
    except (ImportError, OSError) as exc:
        raise ToolFailed(f"libnbd's Python binding is not installed (python3-libnbd): {exc}") from exc


#: block_status flags: base:allocation's "hole" (and "reads as zeros"), a bitmap's "dirty"
NBD_STATE_HOLE, NBD_STATE_ZERO, NBD_STATE_DIRTY = 1, 2, 1
_STATUS_STEP = 1 << 30  # ask about 1 GiB at a time; servers answer with less at will


def nbd_extents(handle: Any, size: int, context: str, wanted: Callable[[int], bool]) -> list[tuple[int, int]]:
    """The (offset, length) ranges of an NBD export whose `context` flags satisfy
    `wanted`, merged, in order. `handle` is a connected libnbd handle that negotiated
    `context`."""
    nbd = import_nbd()
    if not handle.can_meta_context(context):
        raise SourceError(f"the NBD server does not offer {context}")
    ranges: list[tuple[int, int]] = []
    pos = 0
    while pos < size:
        seen: list[tuple[int, int, int]] = []

        def collect(name: str, offset: int, entries: list[int], err: Any,
                    seen: list[tuple[int, int, int]] = seen) -> int:
            if name == context:
                at = offset
                for i in range(0, len(entries) - 1, 2):
                    seen.append((at, entries[i], entries[i + 1]))
                    at += entries[i]
            return 0

        try:
            handle.block_status(min(size - pos, _STATUS_STEP), pos, collect)
        except nbd.Error as exc:
            raise SourceError(f"NBD block status of {context} at {pos} failed: {exc}") from exc
        if not seen:
            raise SourceError(f"the NBD server said nothing about {context} at {pos}")
        for offset, length, flags in seen:
            end = min(offset + length, size)
            if end > offset and wanted(flags):
                if ranges and ranges[-1][0] + ranges[-1][1] == offset:
                    ranges[-1] = (ranges[-1][0], end - ranges[-1][0])
                else:
                    ranges.append((offset, end - offset))
            pos = max(pos, end)
    return ranges


def run_tool(args: list[str], what: str) -> str:
    if shutil.which(args[0]) is None:
        raise ToolFailed(f"{args[0]} is not installed (Debian package qemu-utils)")
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolFailed(f"{what}: {exc}") from exc
    if proc.returncode != 0:
        raise ToolFailed(f"{what}: {args[0]} exited with {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def image_info(path: str) -> dict[str, Any]:
    out = run_tool(["qemu-img", "info", "--output=json", path], f"probing {path}")
    try:
        return json.loads(out)
    except ValueError as exc:
        raise ToolFailed(f"qemu-img info printed invalid JSON for {path}") from exc


def image_map(path: str, fmt: str) -> list[dict[str, Any]]:
    out = run_tool(["qemu-img", "map", "--output=json", "-f", fmt, path], f"mapping {path}")
    try:
        return json.loads(out)
    except ValueError as exc:
        raise ToolFailed(f"qemu-img map printed invalid JSON for {path}") from exc


def create_qcow2(path: str, size: int) -> None:
    run_tool(["qemu-img", "create", "-q", "-f", "qcow2", path, str(size)], f"creating {path}")


class NbdClient:
    """A libnbd handle connected to one NBD export on a Unix socket. Its reads fail as
    `SourceError`, its writes as `ToolFailed`, each naming `path` (the image or disk)."""

    def __init__(self, path: str, socket_path: str, *, export: str | None = None,
                 meta_contexts: tuple[str, ...] = ()) -> None:
        """`meta_contexts` are asked for before connecting (`extents` needs them:
        `base:allocation`, `qemu:dirty-bitmap:NAME`)."""
        nbd = import_nbd()
        self.path = path
        self._error = nbd.Error
        self.handle: Any = nbd.NBD()
        try:
            if export is not None:
                self.handle.set_export_name(export)
            for context in meta_contexts:
                self.handle.add_meta_context(context)
            self.handle.connect_unix(socket_path)
            self.size = int(self.handle.get_size())
        except nbd.Error as exc:
            self.close()
            raise SourceError(f"cannot read {path} over NBD: {exc}") from exc

    def extents(self, context: str, wanted: Callable[[int], bool]) -> list[tuple[int, int]]:
        return nbd_extents(self.handle, self.size, context, wanted)

    def pread_into(self, buf: memoryview, offset: int) -> None:
        try:
            buf[:] = self.handle.pread(len(buf), offset)
        except self._error as exc:
            raise SourceError(f"NBD read of {self.path} at {offset} failed: {exc}") from exc

    def pwrite(self, data: bytes, offset: int) -> None:
        try:
            self.handle.pwrite(data, offset)
        except self._error as exc:
            raise ToolFailed(f"NBD write to {self.path} at {offset} failed: {exc}") from exc

    def flush(self) -> None:
        try:
            self.handle.flush()
        except self._error as exc:
            raise ToolFailed(f"NBD flush of {self.path} failed: {exc}") from exc

    def close(self) -> None:
        if self.handle is not None:
            try:
                self.handle.shutdown()
            except Exception:  # noqa: BLE001 - the server goes away regardless
                pass
            self.handle = None


class NbdExport:
    """A private `qemu-nbd` serving one image on a Unix socket, and its `client`."""

    def __init__(self, path: str, fmt: str, *, readonly: bool, bitmap: str | None = None,
                 meta_contexts: tuple[str, ...] = (), clients: int = 4) -> None:
        """`bitmap` exports that persistent dirty bitmap of the image as
        `qemu:dirty-bitmap:NAME`; `meta_contexts` go to the client; `clients` is how
        many connections qemu-nbd accepts at once (`client` is one of them)."""
        self.path = path
        import_nbd()  # before qemu-nbd starts: a missing binding must not leave it running
        if shutil.which("qemu-nbd") is None:
            raise ToolFailed("qemu-nbd is not installed (Debian package qemu-utils)")
        self._dir = tempfile.mkdtemp(prefix="cairn-nbd-")
        self.socket = os.path.join(self._dir, "sock")
        # --cache none (O_DIRECT) for writes too: a restore through qemu-nbd with the
        # page cache between spent 9 s of system CPU on a 4 GiB image and took twice as long.
        args = ["qemu-nbd", "--format", fmt, "--socket", self.socket, "--persistent", "--shared", str(clients),
                "--cache", "none", "--aio", "threads"]
        if readonly:
            args.append("--read-only")
        if bitmap is not None:
            args += ["--bitmap", bitmap]
        args.append(os.path.abspath(path))
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.socket):
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self._cleanup()
                raise ToolFailed(f"qemu-nbd could not serve {path}: {err.strip()}")
            if time.monotonic() > deadline:
                self._stop()
                raise ToolFailed(f"qemu-nbd did not start serving {path} within 20 s")
            time.sleep(0.01)
        # qemu-nbd creates the socket file before it listens on it: retry briefly.
        client = None
        while client is None:
            try:
                client = NbdClient(path, self.socket, meta_contexts=meta_contexts)
            except SourceError as exc:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self._stop()
                    raise ToolFailed(f"cannot connect to qemu-nbd for {path}: {exc}") from exc
                time.sleep(0.02)
        self.client = client

    def close(self) -> None:
        self.client.close()
        self._stop()

    def _stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._proc.stderr:
            self._proc.stderr.close()
        shutil.rmtree(self._dir, ignore_errors=True)
