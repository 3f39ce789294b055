"""What Cairn reads from a domain's XML, and the XML of a domain restored from it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from cairn.errors import InvalidInput
from cairn.platforms.libvirt_domain import OWNER_NS, describe, owner_element, restored_domain_xml

NOVA = """<domain type='kvm' id='7'>
  <name>instance-0000002a</name>
  <uuid>8a3c2f9e-1f5b-4c55-9d7e-2b1f0c7d9e11</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:owner><nova:user uuid="u9">alice</nova:user><nova:project uuid="proj-42">demo</nova:project></nova:owner>
    </nova:instance>
  </metadata>
  <memory unit='KiB'>2097152</memory>
  <vcpu placement='static'>2</vcpu>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='/var/lib/nova/instances/x/disk'/><target dev='vda' bus='virtio'/></disk>
    <disk type='block' device='disk'><driver name='qemu' type='raw'/>
      <source dev='/dev/vg/data'/><target dev='vdb' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/>
      <source file='/var/lib/nova/instances/x/disk.config'/><target dev='sda' bus='sata'/></disk>
    <interface type='bridge'><mac address='fa:16:3e:11:22:33'/><source bridge='br-int'/>
      <target dev='tap1234'/><model type='virtio'/></interface>
    <serial type='unix'><source mode='bind' path='/run/cairn/x/console.sock'/><target port='0'/></serial>
    <channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  </devices>
</domain>"""


def test_nova_domain_is_described_with_its_project_disks_and_agent() -> None:
    d = describe(NOVA)
    assert (d.uuid, d.name, d.project_id) == ("8a3c2f9e-1f5b-4c55-9d7e-2b1f0c7d9e11", "instance-0000002a", "proj-42")
    assert [(x.target, x.kind, x.path, x.format, x.readable) for x in d.disks] == [
        ("vda", "file", "/var/lib/nova/instances/x/disk", "qcow2", True),
        ("vdb", "block", "/dev/vg/data", "raw", True)]  # the config drive CD-ROM is no data disk
    assert (d.vcpus, d.memory_kib, d.has_agent) == (2, 2097152, True)
    assert [n.mac for n in d.nics] == ["fa:16:3e:11:22:33"]


def test_cairn_owner_wins_over_nova_and_a_domain_without_owner_has_no_project() -> None:
    adopted = NOVA.replace("<metadata>", f"<metadata><cairn:owner xmlns:cairn='{OWNER_NS}' project='ops'/>")
    assert describe(adopted).project_id == "ops"
    bare = "<domain type='qemu'><name>x</name><uuid>u</uuid><devices/></domain>"
    assert describe(bare).project_id is None and describe(bare).has_agent is False


def test_network_disk_is_described_as_unreadable() -> None:
    rbd = NOVA.replace("<disk type='block' device='disk'>", "<disk type='network' device='disk'>")
    assert [x.readable for x in describe(rbd).disks] == [True, False]


def test_bad_xml_and_blank_owner_are_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as bad:
        describe("<domain>")
    assert bad.value.field == "domain"
    with pytest.raises(InvalidInput) as blank:
        owner_element(" ")
    assert blank.value.field == "project"


def test_restored_domain_has_new_identity_its_restored_disks_and_its_own_console() -> None:
    xml = restored_domain_xml(NOVA, "web-copy", "proj-42",
                              {"vda": ("/var/lib/nova/instances/x/disk-restore-1a2b3c4d", "qcow2")}, "1a2b3c4d")
    root = ET.fromstring(xml)
    assert root.find("uuid") is None and root.get("id") is None
    assert root.findtext("name") == "web-copy"
    disks = root.findall("devices/disk")
    assert [(d.get("device"), d.find("source").attrib) for d in disks] == [  # type: ignore[union-attr]
        ("disk", {"file": "/var/lib/nova/instances/x/disk-restore-1a2b3c4d"}),
        ("cdrom", {"file": "/var/lib/nova/instances/x/disk.config"})]  # vdb was not restored: left out
    nic = root.find("devices/interface")
    assert nic is not None and nic.find("mac") is None and nic.find("target") is None
    assert root.find("devices/serial/source").get("path") == "/run/cairn/x/console-1a2b3c4d.sock"  # type: ignore[union-attr]
    assert describe(xml).project_id == "proj-42"
    assert "openstack.org" not in xml
