"""The OpenStack fields of a snapshot's instances, in the shape Trilio clients read.

A snapshot of an `openstack` platform server keeps its description (flavor, ports,
security groups, disks and volumes; `cairn.platforms.openstack.describe_server`) in the
instance's platform record. The snapshot detail shows it as Trilio does:
`instances[{flavor, nics, security_group, metadata, vdisks[{volume_id, ...}]}]`.
"""

from __future__ import annotations

from typing import Any

from cairn.workloads.snapshot_records import SnapshotInstance

STATE_KEY = "openstack"


def openstack_fields(instance: SnapshotInstance) -> dict[str, Any]:
    """The Trilio fields of one instance; empty for an instance of another platform."""
    described = instance.platform.get(STATE_KEY)
    if not isinstance(described, dict):
        return {}
    flavor = described.get("flavor") or {}
    server = described.get("server") or {}
    nics = []
    for port in described.get("ports") or []:
        network = port.get("network") or {}
        for fixed in port.get("fixed_ips") or [{}]:
            subnet = fixed.get("subnet") or {}
            nics.append({"mac_address": port.get("mac_address"), "ip_address": fixed.get("ip_address"),
                         "port_id": port.get("id"),
                         "network": {"id": network.get("id"), "name": network.get("name"),
                                     "cidr": subnet.get("cidr"), "network_type": network.get("network_type"),
                                     "subnet": {"id": subnet.get("id"), "name": subnet.get("name"),
                                                "cidr": subnet.get("cidr"), "ip_version": subnet.get("ip_version"),
                                                "gateway_ip": subnet.get("gateway_ip")}}})
    return {
        "flavor": {"id": flavor.get("id"), "name": flavor.get("name"), "vcpus": flavor.get("vcpus"),
                   "ram": flavor.get("ram"), "disk": flavor.get("disk"), "ephemeral": flavor.get("ephemeral"),
                   "swap": flavor.get("swap")},
        "nics": nics,
        "security_group": [{"name": g.get("name"), "id": g.get("id"), "security_group_type": "neutron",
                            "rules": g.get("rules") or []}
                           for g in described.get("security_groups") or []],
        "availability_zone": server.get("availability_zone"),
        "image": described.get("image"),
        "key_name": server.get("key_name"),
        "server_metadata": server.get("metadata") or {},
    }


def openstack_vdisk(instance: SnapshotInstance, device: str) -> dict[str, Any]:
    """The volume fields of the disk `device` of an OpenStack server (empty otherwise)."""
    described = instance.platform.get(STATE_KEY)
    if not isinstance(described, dict):
        return {}
    for disk in described.get("disks") or []:
        if disk.get("device") != device:
            continue
        volume = disk.get("volume") or {}
        return {"label": device, "volume_mountpoint": f"/dev/{device}", "boot": bool(disk.get("boot")),
                "disk_kind": disk.get("kind"),
                "volume_id": volume.get("id"), "volume_name": volume.get("name"),
                "volume_size": volume.get("size"), "volume_type": volume.get("volume_type"),
                "bootable": volume.get("bootable"), "availability_zone": volume.get("availability_zone"),
                "backend": volume.get("backend")}
    return {}
