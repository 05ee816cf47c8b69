"""Identity and fraud rules: each is named, says why it fired, and either sends to review or rejects."""

from __future__ import annotations

from openice.decisioning.domain import FraudFacts, RuleResult
from openice.decisioning.policy import Policy

REJECT, REVIEW = "reject", "review"


def _rule(name: str, fired: bool, action: str, reason: str) -> RuleResult:
    return RuleResult(name, fired, action, reason if fired else "")


def fraud_rules(
    facts: FraudFacts, age: int, age_range: tuple[int, int], anomaly: float, policy: Policy
) -> list[RuleResult]:
    """Every rule's result, fired or not, so a decision shows what was checked as well as what failed."""
    lo, hi = age_range
    rules = [
        _rule(
            "shared_national_id",
            facts.other_identities_with_id > 0,
            REJECT,
            f"the ID number is registered to {facts.other_identities_with_id} other identity(ies)",
        ),
        _rule(
            "shared_mobile",
            facts.other_identities_with_mobile > 0,
            REVIEW,
            f"the mobile number is used by {facts.other_identities_with_mobile} other identity(ies)",
        ),
        _rule(
            "shared_device",
            facts.other_identities_with_device >= policy.max_identities_per_device,
            REJECT,
            f"the device is used by {facts.other_identities_with_device} other identities "
            f"(limit {policy.max_identities_per_device - 1})",
        ),
    ]
    for key, count in (
        ("national_id", facts.applications_24h_by_id),
        ("mobile", facts.applications_24h_by_mobile),
        ("device", facts.applications_24h_by_device),
    ):
        rules.append(
            _rule(
                f"velocity_{key}",
                count > policy.velocity_limit,
                REJECT,
                f"{count} applications in 24 hours from this {key.replace('_', ' ')} (limit {policy.velocity_limit})",
            )
        )
    rules += [
        _rule("blacklist", bool(facts.blacklisted), REJECT, f"on the blacklist: {', '.join(facts.blacklisted)}"),
        _rule("age_range", not lo <= age <= hi, REJECT, f"age {age} is outside the product's range {lo}-{hi}"),
        _rule(
            "anomaly",
            anomaly > policy.anomaly_review,
            REVIEW,
            f"application anomaly score {anomaly:.3f} above {policy.anomaly_review}",
        ),
    ]
    return rules


def fraud_verdict(rules: list[RuleResult]) -> str:
    """reject if any rejecting rule fired, review if any reviewing rule fired, else pass."""
    actions = {r.action for r in rules if r.fired}
    return REJECT if REJECT in actions else REVIEW if REVIEW in actions else "pass"
