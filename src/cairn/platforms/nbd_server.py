"""A read-only NBD server on a Unix socket, serving one disk from a reader in this process.

An instant restore exports the snapshot's disk to QEMU (the backing file of the
restored disk's qcow2 overlay) from the worker that runs the restore. Why here and not
nbdkit's Python plugin or qemu-nbd: the repository is already open in this process
(target client, keys unwrapped from a passphrase file or Barbican); another process
would need the target's credentials and the repository key handed over on its command
line, in its environment or in a file, and Debian's nbdkit embeds Debian's Python, not
the one Cairn and its compiled codecs are installed for. The protocol a read-only
export needs is small: the fixed newstyle handshake with NBD_OPT_GO (and the old
NBD_OPT_EXPORT_NAME), then READ, FLUSH and DISC with simple replies
(https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md).

A read the reader cannot serve (the target went away, a damaged chunk) is answered
with EIO, never with zeros, and the first such failure is kept in `failure` so the
restore can say why its copy stopped. Every other request that would change the disk
is refused with EPERM.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

from cairn.platforms.base import DiskReader

log = logging.getLogger(__name__)

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698

FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2
# transmission flags
HAS_FLAGS, READ_ONLY, SEND_FLUSH, CAN_MULTI_CONN = 1, 2, 4, 1 << 8
TRANSMISSION_FLAGS = HAS_FLAGS | READ_ONLY | SEND_FLUSH | CAN_MULTI_CONN

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_INFO, OPT_GO = 1, 2, 3, 6, 7
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
REP_ERR_UNSUP = (1 << 31) + 1
INFO_EXPORT, INFO_BLOCK_SIZE = 0, 3
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH = 0, 1, 2, 3
EPERM, EIO, EINVAL = 1, 5, 22
# reads larger than this are refused: QEMU asks for at most 32 MiB
MAX_READ = 32 << 20
# reads served at once per connection (the guest's and the copy's)
READ_THREADS = 4


class _Closed(Exception):
    """The client went away."""


def _recv(conn: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        part = conn.recv(n - len(data))
        if not part:
            raise _Closed
        data += part
    return bytes(data)


class NbdServer:
    """Serves `reader` read-only on the Unix socket `path` until `close()`."""

    def __init__(self, reader: DiskReader, path: str, name: str = "") -> None:
        self.reader = reader
        self.path = path
        self.name = name  # what error messages call the disk
        self.failure: str | None = None
        self.bytes_served = 0
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.unlink(path)
        self._listener.bind(path)
        self._listener.listen(8)
        self._closed = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name=f"cairn-nbd-{os.path.basename(path)}",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"nbd+unix:///?socket={self.path}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed.is_set():
                    conn.close()
                    return
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), name="cairn-nbd-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self._handshake(conn):
                self._transmission(conn)
        except (_Closed, OSError):
            pass
        finally:
            conn.close()
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)

    def _reply(self, conn: socket.socket, option: int, kind: int, data: bytes = b"") -> None:
        conn.sendall(struct.pack(">QIII", REPLY_MAGIC, option, kind, len(data)) + data)

    def _handshake(self, conn: socket.socket) -> bool:
        """Negotiate; True when the client goes on to transmission."""
        conn.sendall(struct.pack(">QQH", NBDMAGIC, IHAVEOPT, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
        (client_flags,) = struct.unpack(">I", _recv(conn, 4))
        no_zeroes = bool(client_flags & FLAG_NO_ZEROES)
        size = self.reader.size
        while True:
            magic, option, length = struct.unpack(">QII", _recv(conn, 16))
            if magic != IHAVEOPT:
                return False
            if length:
                _recv(conn, length)  # the export name and info requests: there is one export
            if option == OPT_EXPORT_NAME:
                conn.sendall(struct.pack(">QH", size, TRANSMISSION_FLAGS) + (b"" if no_zeroes else bytes(124)))
                return True
            if option == OPT_ABORT:
                self._reply(conn, option, REP_ACK)
                return False
            if option == OPT_LIST:
                name = self.name.encode()
                self._reply(conn, option, REP_SERVER, struct.pack(">I", len(name)) + name)
                self._reply(conn, option, REP_ACK)
            elif option in (OPT_INFO, OPT_GO):
                self._reply(conn, option, REP_INFO, struct.pack(">HQH", INFO_EXPORT, size, TRANSMISSION_FLAGS))
                # any alignment, 64 KiB preferred (a qcow2 cluster), reads up to MAX_READ
                self._reply(conn, option, REP_INFO, struct.pack(">HIII", INFO_BLOCK_SIZE, 1, 65536, MAX_READ))
                self._reply(conn, option, REP_ACK)
                if option == OPT_GO:
                    return True
            else:  # structured replies, meta contexts, TLS, extended headers: not offered
                self._reply(conn, option, REP_ERR_UNSUP)

    def _transmission(self, conn: socket.socket) -> None:
        """Requests are read in order; reads are served by a few threads at once and
        answered as they finish (replies carry the request's handle), so a guest's read
        never waits behind a slow read of the background copy."""
        send = threading.Lock()
        with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="cairn-nbd-read") as pool:
            while True:
                magic, _flags, command, handle, offset, length = struct.unpack(">IHHQQI", _recv(conn, 28))
                if magic != REQUEST_MAGIC or command == CMD_DISC:
                    return  # the pool finishes the reads in flight first
                if command == CMD_READ and length <= MAX_READ and offset + length <= self.reader.size:
                    pool.submit(self._read, conn, send, handle, offset, length)
                    continue
                if command == CMD_WRITE:
                    _recv(conn, length)  # the payload follows the request: read it, refuse it
                    error = EPERM
                elif command == CMD_FLUSH:
                    error = 0
                elif command == CMD_READ:
                    error = EINVAL
                else:
                    error = EPERM if command in (4, 6) else EINVAL  # trim, write zeroes | anything else
                with send:
                    conn.sendall(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, error, handle))

    def _read(self, conn: socket.socket, send: threading.Lock, handle: int, offset: int, length: int) -> None:
        buf = memoryview(bytearray(length))
        log.debug("NBD export %s: read of %d bytes at %d", self.name, length, offset)
        try:
            self.reader.read_into(buf, offset)
        except Exception as exc:  # noqa: BLE001 - any failure is EIO for the VM, kept for the restore
            if self.failure is None:
                self.failure = str(exc) or type(exc).__name__
                log.warning("NBD export %s: read of %d bytes at %d failed: %s", self.name, length, offset,
                            self.failure)
            reply = struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, EIO, handle)
        else:
            reply = struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, 0, handle) + buf
            self.bytes_served += length
        try:
            with send:
                conn.sendall(reply)
        except OSError:
            pass  # the client went away; its connection is closed by the request loop

    def close(self) -> None:
        """Stop listening and drop every connection (QEMU then sees the export gone)."""
        self._closed.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        try:
            os.unlink(self.path)
        except OSError:
            pass
