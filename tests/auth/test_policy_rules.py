"""Policy rules: every action's rule is a registered constant, and the enforcer refuses to
decide about any other name instead of denying it in silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.api.deps import Allowed
from cairn.auth import policy
from cairn.auth.context import Identity, RequestContext
from cairn.auth.policy import PolicyEnforcer, Rule, UnregisteredRule
from cairn.errors import NotAuthorized

ADMIN = RequestContext(Identity("admin", "root", frozenset({"admin"})), "p1", "req-test")
MEMBER = RequestContext(Identity("p1", "u1", frozenset({"member"})), "p1", "req-test")


@pytest.mark.parametrize("asked", ["workload:gett", Rule("workload:gett", policy.ADMIN_OR_OWNER, "A typo.")])
def test_an_unregistered_rule_raises_rather_than_denying(asked: str | Rule) -> None:
    enforcer = PolicyEnforcer()
    # oslo.policy alone would answer False here, to administrators too: a silent 403.
    for caller in (ADMIN, MEMBER):
        with pytest.raises(UnregisteredRule, match="'workload:gett' is not registered"):
            enforcer.allows(asked, caller, "p1")
        with pytest.raises(UnregisteredRule, match="'workload:gett' is not registered"):
            enforcer.authorize(asked, caller)


def test_an_unregistered_rule_is_not_a_fault_a_caller_could_be_shown() -> None:
    from cairn.errors import CairnError
    assert not issubclass(UnregisteredRule, CairnError)


def test_a_rule_only_the_policy_file_defines_is_still_unregistered(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"workload:gett": "@"\n"workload:get": "rule:admin_api"\n')
    enforcer = PolicyEnforcer(policy_file)
    with pytest.raises(UnregisteredRule):
        enforcer.allows("workload:gett", MEMBER, "p1")
    assert not enforcer.allows(policy.WORKLOAD_GET, MEMBER, "p1")  # the file's override applies


def test_registered_rules_are_decided_by_their_constants() -> None:
    enforcer = PolicyEnforcer()
    assert enforcer.allows(policy.WORKLOAD_GET, MEMBER, "p1")
    assert not enforcer.allows(policy.WORKLOAD_GET, MEMBER, "p2")
    assert enforcer.allows(policy.WORKLOAD_GET_ALL_TENANTS, ADMIN, "p1")
    with pytest.raises(NotAuthorized, match="^Policy doesn't allow workload:get_all_tenants to be performed.$"):
        enforcer.authorize(policy.WORKLOAD_GET_ALL_TENANTS, MEMBER)


def test_every_action_has_one_constant_and_one_registered_default() -> None:
    constants = [value for name, value in vars(policy).items() if isinstance(value, Rule) and name.isupper()]
    assert sorted(r.name for r in constants) == sorted(r.name for r in policy.ACTIONS)
    assert len({r.name for r in policy.ACTIONS}) == len(policy.ACTIONS)
    assert {r.name for r in policy.ACTIONS} <= policy.REGISTERED
    for rule in policy.ACTIONS:
        assert getattr(policy, rule.name.replace(":", "_").upper()) is rule


def test_a_route_dependency_on_an_unregistered_rule_fails_when_it_is_made() -> None:
    with pytest.raises(UnregisteredRule, match="'snapshot:gett' is not registered"):
        Allowed(Rule("snapshot:gett", policy.ADMIN_OR_OWNER, "A typo."))
