"""The rules of quotas, usage, the audit log, pause/resume and snapshot reset are in
`cairn policy sample` with their defaults (docs/operations.md)."""

from __future__ import annotations

from cairn.auth.policy import sample_policy

EXPECTED = {
    "workload:get_quota_types": "rule:admin_api", "workload:create_allowed_quota": "rule:admin_api",
    "workload:get_allowed_quotas": "rule:admin_api", "workload:get_allowed_quota": "rule:admin_api",
    "workload:update_allowed_quota": "rule:admin_api", "workload:delete_allowed_quota": "rule:admin_api",
    "workload:get_storage_usage": "rule:admin_api", "workload:get_tenants_usage": "rule:admin_api",
    "workload:get_tenants_chargeback": "rule:admin_api", "workload:get_protected_vms": "rule:admin_or_owner",
    "workload:get_auditlog": "rule:admin_api", "workload:pause": "rule:admin_or_owner",
    "workload:resume": "rule:admin_or_owner", "snapshot:reset": "rule:admin_or_owner",
}


def test_the_sample_lists_each_operations_rule_at_its_default() -> None:
    sample = sample_policy().splitlines()
    for name, default in EXPECTED.items():
        assert f'#"{name}": "{default}"' in sample, name
