"""Where instances and their disks come from: the `local` inventory and the `libvirt`
domains of a KVM host (later OpenStack)."""
