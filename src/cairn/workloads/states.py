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
