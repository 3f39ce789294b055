"""A tiny Linux guest for the libvirt tests and bench/live.py, built from Debian packages.

The kernel is Debian's `linux-image-cloud-amd64` (and the versioned package it depends
on), unpacked with `dpkg-deb -x`; the initramfs holds `busybox-static`, the virtio
modules the cloud kernel builds as modules (with their dependencies, read from each
module's `.modinfo` section) and an `/init` that:

1. loads the modules and waits for `/dev/vda`;
2. if the kernel command line has `cairn.boot=OFFSET:COUNT`, writes COUNT MiB of random
   data at OFFSET MiB of `/dev/vda` and syncs;
3. prints `CAIRN-READY` on the serial console, then reads commands from it, one a line:
   `write OFFSET COUNT TOKEN [DEVICE]` writes COUNT MiB of random data at OFFSET MiB of
   /dev/DEVICE (vda unless given), syncs and prints `CAIRN-DONE TOKEN`. Each write is
   fsync'ed on the device (a cache flush reaches QEMU), so a qcow2 disk's new clusters
   are in its file when the reply comes, for whoever reads the file beside QEMU.

`build_boot_disk()` makes the same guest a bootable raw disk for an image service
(Glance): a FAT file system with SYSLINUX in its boot sector and the kernel, initramfs
and `syslinux.cfg` as files, so QEMU boots it from its disk alone as Nova runs it.

The serial console is bound to a Unix socket the test connects to (`GuestConsole`), so
a test knows exactly which ranges the guest wrote. Random data (not a pattern) keeps the
engine from deduplicating the writes away; the reference content is taken from the
disk while the guest is paused.

Limits: no QEMU guest agent runs in busybox, so a freeze cannot be tested for real.
The built kernel and initramfs are cached in `/var/tmp/cairn-guest/<kernel version>/`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("CAIRN_GUEST_CACHE", "/var/tmp/cairn-guest"))
KERNEL_PACKAGE = "linux-image-cloud-amd64"
WANTED_MODULES = ("virtio_pci", "virtio_blk")

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /modules/$m.ko; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    cairn.boot=*)
      spec=${arg#cairn.boot=}
      dd if=/dev/urandom of=/dev/vda bs=1M seek=${spec%%:*} count=${spec##*:} conv=notrunc,fsync 2>/dev/null
      sync ;;
  esac
done
echo CAIRN-READY > /dev/ttyS0
while true; do
  while read -r cmd a b token dev; do
    case "$cmd" in
      write)
        dd if=/dev/urandom of=/dev/${dev:-vda} bs=1M seek=$a count=$b conv=notrunc,fsync 2>/dev/null
        sync
        echo "CAIRN-DONE $token" ;;
    esac
  done < /dev/ttyS0 > /dev/ttyS0
done
"""


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path


def _run(args: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def _kernel_version() -> str:
    """The versioned linux-image package the meta package depends on, e.g. 6.1.0-56-cloud-amd64."""
    out = _run(["apt-cache", "depends", KERNEL_PACKAGE])
    found = re.search(r"Depends: linux-image-(\S+)", out)
    if found is None:
        raise RuntimeError(f"apt-cache does not know what {KERNEL_PACKAGE} depends on")
    return found.group(1)


def _module_depends(path: Path) -> list[str]:
    found = re.search(rb"\x00depends=([^\x00]*)\x00", path.read_bytes())
    if found is None:
        return []
    return [name.replace("-", "_") for name in found.group(1).decode().split(",") if name]


def _load_order(modules_dir: Path, wanted: tuple[str, ...]) -> list[Path]:
    index = {f.name[:-3].replace("-", "_"): f for f in modules_dir.rglob("*.ko")}
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        if name not in index:
            raise RuntimeError(f"kernel module {name} is not in {modules_dir}")
        for dep in _module_depends(index[name]):
            visit(dep)
        order.append(index[name])

    for name in wanted:
        visit(name)
    return order


def build_guest() -> GuestImage:
    """The kernel and initramfs, built once per kernel version and cached."""
    version = _kernel_version()
    # The init script is part of the key: a changed one makes a new initramfs.
    home = CACHE / f"{version}-{hashlib.sha256(INIT.encode()).hexdigest()[:8]}"
    image = GuestImage(home / "vmlinuz", home / "initrd.gz")
    if image.kernel.exists() and image.initrd.exists():
        return image
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise RuntimeError("busybox-static is not installed (it provides /bin/busybox)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        work = Path(scratch)
        _run(["apt-get", "download", f"linux-image-{version}"], cwd=work)
        deb = next(work.glob("linux-image-*.deb"))
        tree = work / "tree"
        _run(["dpkg-deb", "-x", str(deb), str(tree)])
        root = work / "initramfs"
        for sub in ("bin", "proc", "sys", "dev", "modules"):
            (root / sub).mkdir(parents=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        names = []
        for module in _load_order(tree / "lib" / "modules" / version, WANTED_MODULES):
            shutil.copy2(module, root / "modules" / module.name)
            names.append(module.name[:-3])
        (root / "modules.order").write_text("\n".join(names) + "\n")
        init = root / "init"
        init.write_text(INIT)
        init.chmod(0o755)
        listing = "\n".join(str(p.relative_to(root)) for p in sorted(root.rglob("*"))) + "\n"
        archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=listing.encode(),
                                 capture_output=True, check=True).stdout
        home.mkdir(parents=True, exist_ok=True)
        staged_initrd = home / "initrd.gz.tmp"
        staged_initrd.write_bytes(gzip.compress(archive, 6))
        staged_kernel = home / "vmlinuz.tmp"
        shutil.copy2(tree / "boot" / f"vmlinuz-{version}", staged_kernel)
        staged_kernel.rename(image.kernel)
        staged_initrd.rename(image.initrd)
    return image


SYSLINUX_CFG = """DEFAULT cairn
PROMPT 0
TIMEOUT 0
LABEL cairn
  KERNEL vmlinuz
  APPEND initrd=initrd.gz console=tty0 console=ttyS0,115200 quiet panic=-1
"""
BOOT_DISK_MIB = 48


def build_boot_disk() -> Path:
    """A raw disk that boots the guest by itself (FAT + SYSLINUX, no partition table),
    built once per kernel version and cached; needs dosfstools, syslinux and mtools.
    The kernel's console goes to the serial port last, so the guest's messages and the
    CAIRN-* replies reach whoever reads ttyS0."""
    image = build_guest()
    disk = image.kernel.parent / "boot-disk.raw"
    if disk.exists():
        return disk
    staged = disk.with_name("boot-disk.raw.tmp")
    staged.unlink(missing_ok=True)
    with open(staged, "wb") as out:
        out.truncate(BOOT_DISK_MIB << 20)
    _run(["mkfs.vfat", "-n", "CAIRN", str(staged)])
    _run(["syslinux", "--install", str(staged)])
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        cfg = Path(scratch) / "syslinux.cfg"
        cfg.write_text(SYSLINUX_CFG)
        for source, name in ((image.kernel, "vmlinuz"), (image.initrd, "initrd.gz"), (cfg, "syslinux.cfg")):
            _run(["mcopy", "-o", "-i", str(staged), str(source), f"::{name}"])
    staged.rename(disk)
    return disk


def domain_type() -> str:
    """Software emulation (`qemu`) unless CAIRN_GUEST_VIRT_TYPE says otherwise: it runs
    wherever QEMU does, and this guest boots in seconds under it."""
    return os.environ.get("CAIRN_GUEST_VIRT_TYPE", "qemu")


def domain_xml(name: str, image: GuestImage, disk: Path, console: Path, *, disk_format: str = "qcow2",
               boot_write: tuple[int, int] | None = None, project: str | None = None,
               memory_mib: int = 256, extra_devices: str = "") -> str:
    """A domain booting the guest from `image` with `disk` as vda and its serial console
    bound to the Unix socket `console`; `project` adds Nova owner metadata."""
    cmdline = "console=ttyS0 quiet panic=-1"
    if boot_write is not None:
        cmdline += f" cairn.boot={boot_write[0]}:{boot_write[1]}"
    metadata = ""
    if project is not None:
        metadata = f"""<metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:owner>
        <nova:user uuid="u-1">tester</nova:user>
        <nova:project uuid="{project}">{project}</nova:project>
      </nova:owner>
    </nova:instance>
  </metadata>"""
    return f"""<domain type='{domain_type()}'>
  <name>{name}</name>
  <uuid>{uuid.uuid4()}</uuid>
  {metadata}
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{image.kernel}</kernel><initrd>{image.initrd}</initrd><cmdline>{cmdline}</cmdline></os>
  <on_reboot>destroy</on_reboot>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='{disk_format}' cache='none'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:{uuid.uuid4().hex[:2]}:{uuid.uuid4().hex[:2]}:01'/><model type='virtio'/>
    </interface>
    <serial type='unix'><source mode='bind' path='{console}'/><target port='0'/></serial>
    {extra_devices}
  </devices>
</domain>"""


class GuestConsole:
    """The guest's serial console over its Unix socket: send commands, wait for replies."""

    def __init__(self, path: Path, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.buffer = b""
        self.timeout = timeout

    def _recv(self, timeout: float) -> bytes:
        self.sock.settimeout(timeout)
        return self.sock.recv(65536)

    def _send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def wait_for(self, marker: str, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.timeout)
        wanted = marker.encode()
        while wanted not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the guest did not print {marker!r}; console: {self.buffer[-2000:]!r}")
            chunk = self._recv(left)
            if not chunk:
                raise ConnectionError(f"the console closed; it printed {self.buffer[-2000:]!r}")
            self.buffer += chunk
        self.buffer = self.buffer[self.buffer.index(wanted) + len(wanted):]

    def write(self, offset_mib: int, count_mib: int, device: str = "vda") -> None:
        """Have the guest write `count_mib` MiB of random data at `offset_mib` MiB of
        /dev/`device`."""
        token = uuid.uuid4().hex[:12]
        self._send(f"write {offset_mib} {count_mib} {token} {device}\n".encode())
        self.wait_for(f"CAIRN-DONE {token}")

    def close(self) -> None:
        self.sock.close()




class PtyConsole(GuestConsole):
    """The guest's serial console through the pseudo-terminal QEMU gives it (a domain
    with `<serial type='pty'>`, as Nova defines them): read and written as root."""

    def __init__(self, path: str, timeout: float = 120) -> None:
        import termios
        import tty

        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        attrs = termios.tcgetattr(self.fd)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        self.buffer = b""
        self.timeout = timeout

    def _recv(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b"\0"  # nothing yet: not a closed console; the deadline decides
        try:
            return os.read(self.fd, 65536)
        except BlockingIOError:
            return b"\0"

    def _send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        os.close(self.fd)
