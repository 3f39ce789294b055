"""Where instances and their disks come from: the `local` inventory (later libvirt, OpenStack)."""
