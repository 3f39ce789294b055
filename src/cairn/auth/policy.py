"""Policy rules: every API action's rule, its default, and the enforcer.

Rules follow the OpenStack convention (oslo.policy): defaults are registered in code,
an operator overrides any of them in a YAML policy file (`policy_file` option;
`cairn policy sample` prints one with every default). Project actions default to
`admin_or_owner`, cross-project and operator actions to `admin`.

Each action's rule is a `Rule` constant declared beside its default, and code names
rules only through those constants. The enforcer refuses (`UnregisteredRule`) to decide
about a name without a registered default: oslo.policy would deny it to everyone,
administrators included, and say nothing, so a mistyped name would look like a 403.

Decisions are remembered by everything they depend on (rule, caller, target project):
evaluating a rule through oslo.policy costs a few hundred microseconds, every request
asks at least once, and the same few callers ask the same questions. A change of the
policy file (its size or modification time, looked at on every decision) forgets them.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Rule:
    """A policy rule an API action is checked against: its name, default and purpose."""

    name: str
    default: str
    description: str

    def __str__(self) -> str:
        return self.name


class UnregisteredRule(LookupError):
    """A rule was asked about that has no registered default: a programming error.

    oslo.policy answers "no" to a rule it does not know, so a mistyped name would deny
    everyone, administrators included, without a word; Cairn refuses to decide instead.
    Deliberately not a `CairnError`: it is a bug to fix, never a fault for the caller.
    """


_DECLARED: list[Rule] = []


def _action(name: str, default: str, description: str) -> Rule:
    rule = Rule(name, default, description)
    _DECLARED.append(rule)
    return rule


# Every action's rule, in the order `cairn policy sample` prints them. Code names a rule
# by its constant, so a mistyped one is a NameError at import, not a silent 403.
WORKLOAD_GET_ALL = _action("workload:get_all", ADMIN_OR_OWNER, "List workloads of a project.")
WORKLOAD_GET_ALL_TENANTS = _action(
    "workload:get_all_tenants", ADMIN,
    "List the workloads of every project (all_workloads=true).")
WORKLOAD_GET = _action("workload:get", ADMIN_OR_OWNER, "Show a workload.")
WORKLOAD_CREATE = _action("workload:create", ADMIN_OR_OWNER, "Create a workload.")
WORKLOAD_UPDATE = _action("workload:update", ADMIN_OR_OWNER, "Modify a workload.")
WORKLOAD_DELETE = _action("workload:delete", ADMIN_OR_OWNER, "Delete a workload.")
WORKLOAD_DELETE_DATABASE_ONLY = _action(
    "workload:delete_database_only", ADMIN,
    "Delete a workload's rows but keep its data (database_only=true).")
WORKLOAD_UNLOCK = _action("workload:unlock", ADMIN_OR_OWNER, "Unlock a workload.")
WORKLOAD_RESET = _action("workload:reset", ADMIN_OR_OWNER, "Reset a workload.")
WORKLOAD_VIEW_BACKUP_TARGET = _action(
    "workload:view_backup_target", ADMIN,
    "See metadata.backup_media_target.")
WORKLOAD_CHOOSE_BACKUP_TARGET = _action(
    "workload:choose_backup_target", ADMIN,
    "Name the backup target of a new workload.")
SNAPSHOT_CREATE = _action("snapshot:create", ADMIN_OR_OWNER, "Take a snapshot of a workload.")
SNAPSHOT_GET_ALL = _action("snapshot:get_all", ADMIN_OR_OWNER, "List snapshots.")
SNAPSHOT_GET_ALL_TENANTS = _action(
    "snapshot:get_all_tenants", ADMIN,
    "List the snapshots of every project (all=true).")
SNAPSHOT_GET = _action("snapshot:get", ADMIN_OR_OWNER, "Show a snapshot.")
SNAPSHOT_DELETE = _action("snapshot:delete", ADMIN_OR_OWNER, "Delete a snapshot.")
SNAPSHOT_CANCEL = _action("snapshot:cancel", ADMIN_OR_OWNER, "Cancel a running snapshot.")
RESTORE_CREATE = _action("restore:create", ADMIN_OR_OWNER, "Restore a snapshot.")
RESTORE_GET_ALL = _action("restore:get_all", ADMIN_OR_OWNER, "List restores.")
RESTORE_GET = _action("restore:get", ADMIN_OR_OWNER, "Show a restore.")
RESTORE_DELETE = _action("restore:delete", ADMIN_OR_OWNER, "Delete a restore record.")
RESTORE_CANCEL = _action("restore:cancel", ADMIN_OR_OWNER, "Cancel a running restore.")
WORKLOAD_TYPE_GET = _action("workload_type:get", ADMIN_OR_OWNER, "List and show workload types.")
WORKLOAD_POLICY_CREATE = _action("workload:policy_create", ADMIN, "Create a workload policy.")
WORKLOAD_POLICY_UPDATE = _action("workload:policy_update", ADMIN, "Modify a workload policy.")
WORKLOAD_POLICY_DELETE = _action("workload:policy_delete", ADMIN, "Delete a workload policy.")
WORKLOAD_POLICY_ASSIGN = _action("workload:policy_assign", ADMIN, "Assign a workload policy to projects.")
WORKLOAD_POLICY_GET = _action("workload:policy_get", ADMIN, "List and show workload policies.")
WORKLOAD_POLICY_GET_ASSIGNED = _action(
    "workload:policy_get_assigned", ADMIN_OR_OWNER,
    "List the policies assigned to a project.")
BACKUP_TARGET_CREATE = _action("backup_target:create", ADMIN, "Create a backup target.")
BACKUP_TARGET_GET = _action("backup_target:get", ADMIN, "List and show backup targets.")
BACKUP_TARGET_DELETE = _action("backup_target:delete", ADMIN,
                               "Delete a backup target created over the API.")
BACKUP_TARGET_SET_DEFAULT = _action("backup_target:set_default", ADMIN,
                                    "Make a backup target the default one.")
BACKUP_TARGET_TYPE_CREATE = _action("backup_target_type:create", ADMIN, "Create a backup target type.")
BACKUP_TARGET_TYPE_GET = _action(
    "backup_target_type:get", ADMIN_OR_OWNER,
    "List and show backup target types (a project sees the public ones and its own).")
BACKUP_TARGET_TYPE_DELETE = _action("backup_target_type:delete", ADMIN, "Delete a backup target type.")
BACKUP_TARGET_TYPE_ADD_PROJECTS = _action("backup_target_type:add_projects", ADMIN,
                                          "Assign a backup target type to projects.")
BACKUP_TARGET_TYPE_REMOVE_PROJECTS = _action("backup_target_type:remove_projects", ADMIN,
                                             "Take a backup target type from projects.")
BACKUP_TARGET_TYPE_SET_DEFAULT = _action("backup_target_type:set_default", ADMIN,
                                         "Make a backup target type the default one.")
WORKLOAD_GET_GLOBAL_JOB_SCHEDULER = _action(
    "workload:get_global_job_scheduler", ADMIN_OR_OWNER,
    "Read the global job scheduler switch.")
WORKLOAD_GLOBAL_JOB_SCHEDULER_ENABLE = _action(
    "workload:global_job_scheduler_enable", ADMIN,
    "Turn the global job scheduler on.")
WORKLOAD_GLOBAL_JOB_SCHEDULER_DISABLE = _action(
    "workload:global_job_scheduler_disable", ADMIN,
    "Turn the global job scheduler off.")
WORKLOAD_PAUSE = _action("workload:pause", ADMIN_OR_OWNER,
                         "Pause a workload's schedule (nothing fires until it is resumed).")
WORKLOAD_RESUME = _action("workload:resume", ADMIN_OR_OWNER, "Resume a paused workload's schedule.")
SNAPSHOT_RESET = _action("snapshot:reset", ADMIN_OR_OWNER,
                         "Reset a running snapshot: it ends 'error' and its workload is unlocked.")
WORKLOAD_GET_QUOTA_TYPES = _action("workload:get_quota_types", ADMIN, "List the project quota types.")
WORKLOAD_CREATE_ALLOWED_QUOTA = _action("workload:create_allowed_quota", ADMIN,
                                        "Set allowed quotas of a project.")
WORKLOAD_GET_ALLOWED_QUOTAS = _action("workload:get_allowed_quotas", ADMIN,
                                      "List the allowed quotas of a project.")
WORKLOAD_GET_ALLOWED_QUOTA = _action("workload:get_allowed_quota", ADMIN, "Show an allowed quota.")
WORKLOAD_UPDATE_ALLOWED_QUOTA = _action("workload:update_allowed_quota", ADMIN,
                                        "Change an allowed quota.")
WORKLOAD_DELETE_ALLOWED_QUOTA = _action("workload:delete_allowed_quota", ADMIN,
                                        "Delete an allowed quota.")
WORKLOAD_GET_STORAGE_USAGE = _action("workload:get_storage_usage", ADMIN,
                                     "Capacity and use of every backup target.")
WORKLOAD_GET_TENANTS_USAGE = _action("workload:get_tenants_usage", ADMIN,
                                     "Protected VMs and stored bytes of every project.")
WORKLOAD_GET_TENANTS_CHARGEBACK = _action("workload:get_tenants_chargeback", ADMIN,
                                          "Every project's workloads, their VMs and stored bytes.")
WORKLOAD_GET_PROTECTED_VMS = _action("workload:get_protected_vms", ADMIN_OR_OWNER,
                                     "The VMs a project's workloads protect.")
WORKLOAD_GET_AUDITLOG = _action("workload:get_auditlog", ADMIN, "Read the audit log.")
WORKLOAD_SETTING_CREATE = _action("workload:setting_create", ADMIN,
                         "Create or change a project's settings (the SMTP settings of e-mail about jobs).")
WORKLOAD_SETTING_GET = _action("workload:setting_get", ADMIN_OR_OWNER,
                      "List and show a project's settings (secret values masked).")
WORKLOAD_SETTING_DELETE = _action("workload:setting_delete", ADMIN, "Delete a project's settings.")
WORKLOAD_REASSIGN_WORKLOADS = _action("workload:reassign_workloads", ADMIN,
                            "Move workloads and their data to another project and user.")
WORKLOAD_GET_IMPORT_WORKLOADS_LIST = _action("workload:get_import_workloads_list", ADMIN,
                                   "List the workloads a backup target describes that can be imported.")
WORKLOAD_IMPORT_WORKLOADS = _action("workload:import_workloads", ADMIN,
                          "Import workloads from a backup target (a job).")
WORKLOAD_GET_ORPHANED_WORKLOADS_LIST = _action("workload:get_orphaned_workloads_list", ADMIN,
                               "List the orphaned workloads on the backup targets.")
TRUST_GET_ALL = _action("trust:get_all", ADMIN_OR_OWNER, "List a project's Keystone trusts to Cairn.")
TRUST_CREATE = _action("trust:create", ADMIN_OR_OWNER,
                       "Create a Keystone trust from the caller to Cairn's service user.")
TRUST_CREATE_CLOUD_TRUST = _action("trust:create_cloud_trust", ADMIN,
                                   "Create a cloud-wide trust (is_cloud_trust=true).")
TRUST_GET = _action("trust:get", ADMIN_OR_OWNER, "Show a Keystone trust to Cairn.")
TRUST_DELETE = _action("trust:delete", ADMIN_OR_OWNER, "Delete a Keystone trust to Cairn.")

#: every action's rule (in declaration order)
ACTIONS: tuple[Rule, ...] = tuple(_DECLARED)


def rule_defaults() -> list[policy.RuleDefault]:
    return [*_BASE_RULES, *(policy.RuleDefault(rule.name, rule.default, rule.description)
                            for rule in ACTIONS)]


#: the name of every rule with a registered default; nothing else may be asked about
REGISTERED: frozenset[str] = frozenset(rule.name for rule in rule_defaults())


def check_registered(rule: Rule | str) -> str:
    """The rule's name; raises UnregisteredRule when it has no registered default."""
    name = rule.name if isinstance(rule, Rule) else rule
    if name not in REGISTERED:
        raise UnregisteredRule(f"Policy rule {name!r} is not registered: every rule needs a default "
                               f"in cairn.auth.policy before code may ask about it.")
    return name


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

    def allows(self, rule: Rule | str, context: RequestContext, target_project: str) -> bool:
        """Whether `rule` allows the caller on `target_project`; raises UnregisteredRule
        for a rule without a registered default (oslo.policy would just say no)."""
        name = rule.name if isinstance(rule, Rule) else rule
        identity = context.identity
        key = (name, target_project, identity.project_id, identity.user_id, identity.roles,
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
            # Checked only here: a remembered decision is always about a registered rule.
            check_registered(name)
            decision = self._evaluate(name, context, target_project)
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

    def authorize(self, rule: Rule | str, context: RequestContext,
                  target_project: str | None = None) -> None:
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
