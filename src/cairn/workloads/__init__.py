"""Workloads: the domain. What should happen to workloads, snapshots and restores, and
the jobs that make it happen; free of HTTP. One concept a module:

The workload
    lifecycle.py         create, modify, delete, unlock, reset (the service: rules, rows)
    lifecycle_jobs.py    the create, reset and delete jobs, each step in the open
    records.py           workload queries and records; `updated_at` as the view version
    states.py            the status names and which states allow what
    jobschedule.py       the schedule: parsing, fire times across DST (pure)
    policies.py          workload policies and their assignment to projects
    global_scheduler.py  the service-wide scheduler switch
    placement.py         which worker reaches an instance's disks (job routing)

Snapshots
    snapshot_type.py     the full-or-incremental rule (pure)
    snapshot_service.py  take, delete, cancel (routes asked before any row is locked)
    snapshot_job.py      copy the disks, publish, then retention
    snapshot_delete.py   the snapshot delete job
    snapshot_records.py  snapshot queries and records
    retention.py         which snapshots a schedule no longer keeps (pure)
    retention_step.py    retention applied after a snapshot

Restores
    restore_plan.py      what each instance and disk becomes (pure, plus the platform's word)
    restore_service.py   start, delete, cancel
    restore_job.py       write the disks back, register new instances
    restore_records.py   restore queries and records

Shared by the jobs above
    job_rows.py          cancel, settle an unfinished row, progress reports
    cleanup.py           durable clean-up of what a failed job wrote, on the host that wrote it
    notices.py           the facts a job's end notification carries

On the backup target
    storage.py           the configured targets, their markers, each project's repository
    target_data.py       one workload's catalog files and manifests, and GC
    catalog.py           the typed catalog documents (format in docs/format.md §13)
    importer.py          rebuild rows from a target's catalog
"""
