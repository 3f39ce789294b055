"""The scheduler role: fires due jobschedules (DESIGN.md, "Processes").

`decision` says what one due workload gets at a given instant (pure: a fire time or
none, and when to look at it next); `loop` owns the claim loop over the database, the
`Scheduler` that any number of replicas run side by side, and its background thread.
The fire-time arithmetic itself belongs to `cairn.workloads.jobschedule`.
"""

from cairn.scheduler.loop import Scheduler

__all__ = ["Scheduler"]
