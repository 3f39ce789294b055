"""Background work made durable: job rows with leases, dispatch, running and reaping.

The database row is the truth about a job; a dispatch is only a doorbell. States::

    queued ──claim──▶ running ──▶ succeeded | failed | cancelled
       ▲                 │
       └── re-dispatch   └── lease expired ──reaper──▶ failed

A job's *handler* (registered by the layer that decides what the job means, e.g.
`cairn.workloads`) does the work and, in the same transaction that ends the job,
settles its subject (unlocks the workload, marks a snapshot failed, ...). A settlement
may run in the reaper's process, which need not reach the job's disks or target, so it
never touches them: it queues a follow-up job (`runner.follow_up`, e.g. a clean-up)
routed where the job ran, from what the job recorded in its row (`destinations`).
"""
