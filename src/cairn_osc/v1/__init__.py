"""The commands of version 1 of the workloads API (entry point group openstack.workloads.v1)."""
