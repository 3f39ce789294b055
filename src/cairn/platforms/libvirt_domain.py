"""Reading and rewriting libvirt domain XML: what Cairn learns from a domain, and the
description of a new domain made from a snapshot's.

Ownership: a domain belongs to the project named by Cairn's own owner element
(`<cairn:owner project="P"/>` in the namespace `OWNER_NS`, written by `cairn instance
adopt`), else by Nova's (`<nova:owner><nova:project uuid="P"/>`, as on an OpenStack
compute node). A domain with neither belongs to no project and is invisible to tenants.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from cairn.errors import InvalidInput

#: the namespace of Cairn's metadata element in a domain's `<metadata>`
OWNER_NS = "https://cairn-backup.org/xmlns/libvirt/owner/1"
OWNER_PREFIX = "cairn"
NOVA_NS_PREFIX = "http://openstack.org/xmlns/libvirt/nova/"
AGENT_CHANNEL = "org.qemu.guest_agent.0"
SUPPORTED_FORMATS = ("raw", "qcow2")


@dataclass(frozen=True)
class DomainDisk:
    """A `<disk device='disk'>`: its target (`vda`), source kind (`file`, `block`, or
    another libvirt disk type Cairn cannot read), path and format."""

    target: str
    kind: str
    path: str
    format: str

    @property
    def readable(self) -> bool:
        return self.kind in ("file", "block") and bool(self.path) and self.format in SUPPORTED_FORMATS


@dataclass(frozen=True)
class DomainNic:
    mac: str
    kind: str
    source: str


@dataclass(frozen=True)
class DomainDescription:
    uuid: str
    name: str
    project_id: str | None
    disks: tuple[DomainDisk, ...]
    vcpus: int
    memory_kib: int
    nics: tuple[DomainNic, ...]
    has_agent: bool


def _parse(xml: str) -> ET.Element:
    try:
        return ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InvalidInput(f"domain XML: not well-formed: {exc}", "domain") from exc


def _owner(root: ET.Element) -> str | None:
    metadata = root.find("metadata")
    if metadata is None:
        return None
    own = metadata.find(f"{{{OWNER_NS}}}owner")
    if own is not None and own.get("project"):
        return own.get("project")
    for element in metadata.iter():
        tag = element.tag
        if tag.startswith("{" + NOVA_NS_PREFIX) and tag.endswith("}project") and element.get("uuid"):
            return element.get("uuid")
    return None


def _memory_kib(root: ET.Element) -> int:
    memory = root.find("memory")
    text = "" if memory is None else (memory.text or "").strip()
    if memory is None or not text:
        return 0
    factor = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024, "m": 1024, "mib": 1024,
              "mb": 1000 * 1000 / 1024, "g": 1024 ** 2, "gib": 1024 ** 2, "gb": 1000 ** 3 / 1024}
    return int(int(text) * factor.get(memory.get("unit", "KiB").lower(), 1))


def describe(xml: str) -> DomainDescription:
    """What Cairn needs of a domain, from its XML."""
    root = _parse(xml)
    disks = []
    for disk in root.findall("devices/disk"):
        if disk.get("device", "disk") != "disk":
            continue  # cdrom, floppy, lun: not the instance's data
        target = disk.find("target")
        source = disk.find("source")
        driver = disk.find("driver")
        kind = disk.get("type", "file")
        path = ""
        if source is not None:
            path = source.get("file" if kind == "file" else "dev", "") if kind in ("file", "block") else ""
        disks.append(DomainDisk(target=target.get("dev", "") if target is not None else "", kind=kind,
                                path=path, format=driver.get("type", "raw") if driver is not None else "raw"))
    nics = []
    for nic in root.findall("devices/interface"):
        mac = nic.find("mac")
        source = nic.find("source")
        nics.append(DomainNic(mac=mac.get("address", "") if mac is not None else "", kind=nic.get("type", ""),
                              source=" ".join(f"{k}={v}" for k, v in sorted(source.attrib.items()))
                              if source is not None else ""))
    agent = any(ch.find("target") is not None and ch.find("target").get("name") == AGENT_CHANNEL  # type: ignore[union-attr]
                for ch in root.findall("devices/channel"))
    vcpu = root.find("vcpu")
    return DomainDescription(
        uuid=(root.findtext("uuid") or "").strip(), name=(root.findtext("name") or "").strip(),
        project_id=_owner(root), disks=tuple(disks),
        vcpus=int((vcpu.text or "1").strip()) if vcpu is not None else 1,
        memory_kib=_memory_kib(root), nics=tuple(nics), has_agent=agent)


def owner_element(project_id: str) -> str:
    """The `<owner>` element `cairn instance adopt` stores with virDomainSetMetadata."""
    if not project_id.strip() or len(project_id) > 255:
        raise InvalidInput("project: must be 1 to 255 characters.", "project")
    element = ET.Element("owner", {"project": project_id})
    return ET.tostring(element, encoding="unicode")


def beside(path: str, label: str) -> str:
    """`/dir/stem-<label>.ext`: a new file (or socket) next to `path`."""
    directory, name = os.path.split(path)
    stem, dot, extension = name.partition(".")
    return os.path.join(directory, f"{stem}-{label}{dot}{extension}")


def restored_domain_xml(xml: str, name: str, project_id: str, disks: dict[str, tuple[str, str]],
                        label: str) -> str:
    """The description of a new domain made from a snapshot's `xml`.

    `disks` maps a disk target to (restored file, its format); the domain's other disks
    are left out (a new domain never shares a disk with the original). The result has no
    UUID and no MAC addresses (libvirt makes new ones), the name `name`, Cairn's owner
    element for `project_id` instead of any Nova metadata (it is no Nova instance), and
    every character device bound to a Unix socket gets a socket path of its own
    (`beside(path, label)`)."""
    root = _parse(xml)
    root.attrib.pop("id", None)
    for element in root.findall("uuid"):
        root.remove(element)
    name_element = root.find("name")
    if name_element is None:
        name_element = ET.SubElement(root, "name")
    name_element.text = name
    metadata = root.find("metadata")
    if metadata is None:
        metadata = ET.SubElement(root, "metadata")
    for child in list(metadata):
        if child.tag.startswith("{" + NOVA_NS_PREFIX) or child.tag.startswith(f"{{{OWNER_NS}}}"):
            metadata.remove(child)
    ET.SubElement(metadata, f"{{{OWNER_NS}}}owner", {"project": project_id})
    devices = root.find("devices")
    if devices is not None:
        for disk in list(devices.findall("disk")):
            if disk.get("device", "disk") != "disk":
                continue
            target = disk.find("target")
            dev = target.get("dev", "") if target is not None else ""
            if dev not in disks:
                devices.remove(disk)
                continue
            path, fmt = disks[dev]
            disk.set("type", "file")
            for source in disk.findall("source"):
                disk.remove(source)
            for backing in disk.findall("backingStore"):
                disk.remove(backing)
            source = ET.Element("source", {"file": path})
            disk.insert(1 if disk.find("driver") is not None else 0, source)
            driver = disk.find("driver")
            if driver is None:
                driver = ET.SubElement(disk, "driver", {"name": "qemu"})
            driver.set("type", fmt)
        for nic in devices.findall("interface"):
            for mac in nic.findall("mac"):
                nic.remove(mac)
            for target in nic.findall("target"):
                nic.remove(target)  # the host-side tap name is the original's
        for device in devices:
            for source in device.findall("source"):
                if source.get("mode") == "bind" and source.get("path"):
                    source.set("path", beside(source.get("path", ""), label))
    ET.register_namespace(OWNER_PREFIX, OWNER_NS)
    return ET.tostring(root, encoding="unicode")
