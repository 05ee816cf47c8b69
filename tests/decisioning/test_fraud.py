from dataclasses import replace

import pytest

from openice.decisioning.domain import FraudFacts
from openice.decisioning.fraud import fraud_rules, fraud_verdict
from openice.decisioning.policy import Policy

POLICY = Policy(velocity_limit=3, max_identities_per_device=2, anomaly_review=0.65)
CLEAN = FraudFacts(applications_24h_by_id=1, applications_24h_by_mobile=1, applications_24h_by_device=1)

# rule -> (facts, age, anomaly) that fire it and nothing else, and the verdict that follows
FIRING = {
    "shared_national_id": (replace(CLEAN, other_identities_with_id=1), 30, 0.5, "reject"),
    "shared_mobile": (replace(CLEAN, other_identities_with_mobile=1), 30, 0.5, "review"),
    "shared_device": (replace(CLEAN, other_identities_with_device=2), 30, 0.5, "reject"),
    "velocity_national_id": (replace(CLEAN, applications_24h_by_id=4), 30, 0.5, "reject"),
    "velocity_mobile": (replace(CLEAN, applications_24h_by_mobile=4), 30, 0.5, "reject"),
    "velocity_device": (replace(CLEAN, applications_24h_by_device=4), 30, 0.5, "reject"),
    "blacklist": (replace(CLEAN, blacklisted=("mobile",)), 30, 0.5, "reject"),
    "age_range": (CLEAN, 17, 0.5, "reject"),
    "anomaly": (CLEAN, 30, 0.7, "review"),
}
# just below each threshold: nothing fires
QUIET = [
    (replace(CLEAN, other_identities_with_device=1), 30, 0.5),
    (replace(CLEAN, applications_24h_by_id=3, applications_24h_by_mobile=3, applications_24h_by_device=3), 30, 0.5),
    (CLEAN, 18, 0.5),
    (CLEAN, 60, 0.5),
    (CLEAN, 30, 0.65),
]


@pytest.mark.parametrize("rule", sorted(FIRING))
def test_each_rule_fires_alone_with_a_reason(rule: str) -> None:
    facts, age, anomaly, verdict = FIRING[rule]
    results = fraud_rules(facts, age, (18, 60), anomaly, POLICY)
    fired = [r for r in results if r.fired]
    assert [r.rule for r in fired] == [rule]
    assert fired[0].reason
    assert fraud_verdict(results) == verdict


@pytest.mark.parametrize("facts, age, anomaly", QUIET)
def test_nothing_fires_at_the_limits(facts: FraudFacts, age: int, anomaly: float) -> None:
    results = fraud_rules(facts, age, (18, 60), anomaly, POLICY)
    assert not any(r.fired for r in results)
    assert {r.rule for r in results} == set(FIRING)
    assert fraud_verdict(results) == "pass"
