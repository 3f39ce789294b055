"""Workloads: the rules of the workload resource (schedules, policies), free of HTTP and storage."""
