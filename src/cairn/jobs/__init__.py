"""Background work made durable: job rows with leases, dispatch, running and reaping.

The database row is the truth about a job; a dispatch is only a doorbell. States::

    queued ──claim──▶ running ──▶ succeeded | failed | cancelled
       ▲                 │
       └── re-dispatch   └── lease expired ──reaper──▶ failed

A job's *handler* (registered by the layer that decides what the job means, e.g.
`cairn.workloads`) does the work and, in the same transaction that ends the job,
settles its subject (unlocks the workload, marks a snapshot failed, ...).
"""
