"""Which disks of a Nova server's domain Cairn reads, and the refusal of the others.

RBD and iSCSI cannot run on the test machine (no Ceph, no kernel iSCSI), so these cases
are domain XML as Nova writes it for such volumes, and volumes are stand-ins carrying
the two attributes read (`id`, `host`). The NFS case runs for real in test_openstack.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cairn.errors import Conflict
from cairn.platforms.openstack import check_disk_sources, domain_disk_sources

VOLUME = "6c7e0a57-1e02-4c43-9b7d-0d8f2f6a1b11"


@dataclass(frozen=True)
class VolumeStandIn:
    """A Cinder volume as far as the check reads it (a stand-in, not a client)."""

    id: str
    host: str
    volume_type: str = "ceph"


def _domain(*disks: str) -> str:
    return f"<domain><name>instance-00000001</name><devices>{''.join(disks)}</devices></domain>"


ROOT = """<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
  <source file='/var/lib/nova/instances/x/disk'/><target dev='vda' bus='virtio'/></disk>"""
CONFIG_DRIVE = """<disk type='file' device='cdrom'><source file='/var/lib/nova/instances/x/disk.config'/>
  <target dev='sda' bus='sata'/></disk>"""
NFS = f"""<disk type='file' device='disk'><driver name='qemu' type='raw'/>
  <source file='/var/lib/nova/mnt/abc/volume-{VOLUME}'/><target dev='vdb' bus='virtio'/>
  <serial>{VOLUME}</serial></disk>"""
RBD = f"""<disk type='network' device='disk'><driver name='qemu' type='raw'/>
  <source protocol='rbd' name='volumes/volume-{VOLUME}'><host name='10.0.0.1' port='6789'/></source>
  <target dev='vdb' bus='virtio'/><serial>{VOLUME}</serial></disk>"""
ISCSI = f"""<disk type='block' device='disk'><driver name='qemu' type='raw'/>
  <source dev='/dev/disk/by-path/ip-10.0.0.2:3260-iscsi-iqn.2010-10.org.openstack:volume-{VOLUME}-lun-1'/>
  <target dev='vdb' bus='virtio'/><serial>{VOLUME}</serial></disk>"""


def test_file_backed_root_disk_and_nfs_volume_are_read_and_the_config_drive_skipped() -> None:
    xml = _domain(ROOT, CONFIG_DRIVE, NFS)
    sources = domain_disk_sources(xml)
    assert [(s.target, s.kind, s.serial) for s in sources] == [("vda", "file", ""), ("vdb", "file", VOLUME)]
    check_disk_sources("web", "sid", xml, {VOLUME: VolumeStandIn(VOLUME, "c1@nfs1#nfs1", "nfs1")})


@pytest.mark.parametrize(("disk", "backend", "how"), [
    (RBD, "ceph", "a rbd network disk"),
    (ISCSI, "lvm", "a block device"),
])
def test_rbd_and_iscsi_volumes_are_refused_naming_disk_volume_and_backend(disk: str, backend: str, how: str) -> None:
    with pytest.raises(Conflict) as refused:
        check_disk_sources("web", "sid", _domain(ROOT, disk), {VOLUME: VolumeStandIn(VOLUME, f"c1@{backend}#p")})
    message = refused.value.message
    assert message.startswith(f"Disk vdb of server web (sid) is Cinder volume {VOLUME} on backend {backend}, "
                              f"attached as {how}")
    assert "not RBD or iSCSI volumes" in message
