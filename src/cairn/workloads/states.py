"""Workload states and which actions each one allows (the state machine of API.md).

    creating ──▶ available | error
    available ──▶ locked ──▶ available        (a snapshot, restore or snapshot delete runs)
    available | error ──▶ resetting ──▶ available
    available | error ──▶ deleting ──▶ deleted
    any ──unlock──▶ available
"""

from __future__ import annotations

CREATING = "creating"
AVAILABLE = "available"
ERROR = "error"
LOCKED = "locked"
RESETTING = "resetting"
DELETING = "deleting"
DELETED = "deleted"

MODIFIABLE = (AVAILABLE, ERROR)
DELETABLE = (AVAILABLE, ERROR)
RESETTABLE = (AVAILABLE, ERROR, RESETTING)

# Snapshots: creating → executing → uploading → available, or error / cancelled;
# available | error | cancelled → deleting → deleted.
SNAP_CREATING = "creating"
SNAP_EXECUTING = "executing"
SNAP_UPLOADING = "uploading"
SNAP_AVAILABLE = "available"
SNAP_ERROR = "error"
SNAP_CANCELLED = "cancelled"
SNAP_DELETING = "deleting"
SNAP_DELETED = "deleted"
SNAP_RUNNING = (SNAP_CREATING, SNAP_EXECUTING, SNAP_UPLOADING)
SNAP_DELETABLE = (SNAP_AVAILABLE, SNAP_ERROR, SNAP_CANCELLED)

# Restores: restoring → executing → available, or error / cancelled.
RESTORE_RESTORING = "restoring"
RESTORE_EXECUTING = "executing"
RESTORE_AVAILABLE = "available"
RESTORE_ERROR = "error"
RESTORE_CANCELLED = "cancelled"
RESTORE_RUNNING = (RESTORE_RESTORING, RESTORE_EXECUTING)
