"""Policy rules: every API action's rule, its default, and the enforcer.

Rules follow the OpenStack convention (oslo.policy): defaults are registered in code,
an operator overrides any of them in a YAML policy file (`policy_file` option;
`cairn policy sample` prints one with every default). Project actions default to
`admin_or_owner`, cross-project and operator actions to `admin`.

Decisions are remembered by everything they depend on (rule, caller, target project):
evaluating a rule through oslo.policy costs a few hundred microseconds, every request
asks at least once, and the same few callers ask the same questions. A change of the
policy file (its size or modification time, looked at on every decision) forgets them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from oslo_config import cfg
from oslo_policy import policy

from cairn.auth.context import RequestContext
from cairn.errors import InvalidInput, NotAuthorized

ADMIN_OR_OWNER = "rule:admin_or_owner"
ADMIN = "rule:admin_api"

_BASE_RULES = (
    policy.RuleDefault("context_is_admin", "role:admin", "Who counts as an administrator."),
    policy.RuleDefault("admin_or_owner", "is_admin:True or project_id:%(project_id)s",
                       "An administrator, or a member of the resource's project."),
    policy.RuleDefault("admin_api", "is_admin:True", "Administrators only."),
)

#: (rule name, default, what it guards)
ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("workload:get_all", ADMIN_OR_OWNER, "List workloads of a project."),
    ("workload:get_all_tenants", ADMIN, "List the workloads of every project (all_workloads=true)."),
    ("workload:get", ADMIN_OR_OWNER, "Show a workload."),
    ("workload:create", ADMIN_OR_OWNER, "Create a workload."),
    ("workload:update", ADMIN_OR_OWNER, "Modify a workload."),
    ("workload:delete", ADMIN_OR_OWNER, "Delete a workload."),
    ("workload:delete_database_only", ADMIN, "Delete a workload's rows but keep its data (database_only=true)."),
    ("workload:unlock", ADMIN_OR_OWNER, "Unlock a workload."),
    ("workload:reset", ADMIN_OR_OWNER, "Reset a workload."),
    ("workload:view_backup_target", ADMIN, "See metadata.backup_media_target."),
    ("workload:choose_backup_target", ADMIN, "Name the backup target of a new workload."),
    ("snapshot:create", ADMIN_OR_OWNER, "Take a snapshot of a workload."),
    ("snapshot:get_all", ADMIN_OR_OWNER, "List snapshots."),
    ("snapshot:get_all_tenants", ADMIN, "List the snapshots of every project (all=true)."),
    ("snapshot:get", ADMIN_OR_OWNER, "Show a snapshot."),
    ("snapshot:delete", ADMIN_OR_OWNER, "Delete a snapshot."),
    ("snapshot:cancel", ADMIN_OR_OWNER, "Cancel a running snapshot."),
    ("restore:create", ADMIN_OR_OWNER, "Restore a snapshot."),
    ("restore:get_all", ADMIN_OR_OWNER, "List restores."),
    ("restore:get", ADMIN_OR_OWNER, "Show a restore."),
    ("restore:delete", ADMIN_OR_OWNER, "Delete a restore record."),
    ("restore:cancel", ADMIN_OR_OWNER, "Cancel a running restore."),
    ("workload_type:get", ADMIN_OR_OWNER, "List and show workload types."),
    ("workload:policy_create", ADMIN, "Create a workload policy."),
    ("workload:policy_update", ADMIN, "Modify a workload policy."),
    ("workload:policy_delete", ADMIN, "Delete a workload policy."),
    ("workload:policy_assign", ADMIN, "Assign a workload policy to projects."),
    ("workload:policy_get", ADMIN, "List and show workload policies."),
    ("workload:policy_get_assigned", ADMIN_OR_OWNER, "List the policies assigned to a project."),
    ("workload:get_global_job_scheduler", ADMIN_OR_OWNER, "Read the global job scheduler switch."),
    ("workload:global_job_scheduler_enable", ADMIN, "Turn the global job scheduler on."),
    ("workload:global_job_scheduler_disable", ADMIN, "Turn the global job scheduler off."),
)


def rule_defaults() -> list[policy.RuleDefault]:
    return [*_BASE_RULES, *(policy.RuleDefault(name, check, description)
                            for name, check, description in ACTIONS)]


#: most decisions remembered; past it they are all forgotten (a handful of callers is usual)
DECISION_ENTRIES = 10_000


class PolicyEnforcer:
    """Answers "may this caller do that to a resource of that project?"."""

    def __init__(self, policy_file: Path | None = None) -> None:
        if policy_file is not None and not policy_file.is_file():
            raise InvalidInput(f"Policy file {policy_file} does not exist.", "policy_file")
        self._policy_file = policy_file
        self._file_state = self._state_of_file()
        self._decisions: dict[tuple[object, ...], bool] = {}
        self._lock = threading.Lock()
        conf = cfg.ConfigOpts()
        conf([], project="cairn", default_config_files=[], default_config_dirs=[])
        self._enforcer = policy.Enforcer(
            conf, policy_file=str(policy_file) if policy_file else "no-policy-file.yaml")
        self._enforcer.register_defaults(rule_defaults())
        self._enforcer.load_rules()

    def allows(self, rule: str, context: RequestContext, target_project: str) -> bool:
        identity = context.identity
        key = (rule, target_project, identity.project_id, identity.user_id, identity.roles,
               context.is_admin)
        state = self._file_state
        if self._policy_file is not None:
            state = self._state_of_file()
            if state != self._file_state:
                with self._lock:
                    self._decisions.clear()
                    self._file_state = state
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._evaluate(rule, context, target_project)
            with self._lock:
                # Not kept if the file changed meanwhile: it may come from the old rules.
                if state == self._file_state:
                    if len(self._decisions) >= DECISION_ENTRIES:
                        self._decisions.clear()
                    self._decisions[key] = decision
        return decision

    def _evaluate(self, rule: str, context: RequestContext, target_project: str) -> bool:
        credentials = {"project_id": context.identity.project_id,
                       "user_id": context.identity.user_id,
                       "roles": sorted(context.identity.roles),
                       "is_admin": context.is_admin}
        return bool(self._enforcer.enforce(rule, {"project_id": target_project}, credentials))

    def _state_of_file(self) -> tuple[int, int] | None:
        if self._policy_file is None:
            return None
        try:
            stat = os.stat(self._policy_file)
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def authorize(self, rule: str, context: RequestContext, target_project: str | None = None) -> None:
        """Raise NotAuthorized unless `rule` allows the caller on `target_project`."""
        if not self.allows(rule, context, target_project or context.project_id):
            raise NotAuthorized(f"Policy doesn't allow {rule} to be performed.")


def sample_policy() -> str:
    """A YAML policy file with every rule at its default, commented out."""
    lines = ["# Cairn policy rules at their defaults. Uncomment a line to change it.", ""]
    for rule in rule_defaults():
        lines.append(f"# {rule.description}")
        lines.append(f'#"{rule.name}": "{rule.check_str}"')
        lines.append("")
    return "\n".join(lines)
