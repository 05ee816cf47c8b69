"""The assessment itself, a pure function of its inputs: fraud rules, score, policy, line and price.

Nothing here reads a clock or a database, so a stored decision is reproduced by calling `assess`
again with its stored inputs, the same model package and the same policy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from openice.decisioning.anomaly import AnomalyModel, features_of
from openice.decisioning.domain import AssessmentInput, CreditLine, Decision, Outcome
from openice.decisioning.fraud import REJECT, REVIEW, fraud_rules, fraud_verdict
from openice.decisioning.policy import Policy, monthly_payment, price
from openice.decisioning.scorer_protocol import ScorerLike, reason_text
from openice.money import format_money
from openice.servicing.products import PPM, LoanProduct


def score_features(inputs: AssessmentInput) -> dict[str, Any]:
    """What the model sees: the bureau attributes plus the application's own numbers."""
    app = inputs.application
    return {
        **app["bureau"],
        "age": inputs.age,
        "income_monthly": app["income_monthly"],
        "employment": app["employment"],
        "existing_debt_monthly": app["existing_debt_monthly"],
        "existing_debt_balance": app["existing_debt_balance"],
        "requested_amount": app["requested_amount"],
        "requested_tenor": app["requested_tenor"],
        "purpose": app["purpose"],
    }


def _line(
    inputs: AssessmentInput, product: LoanProduct, policy: Policy, grade: str, reasons: list[str]
) -> tuple[CreditLine | None, dict[str, Any]]:
    """Size the line by income multiple and affordability at the longest tenor, and price it by grade."""
    app = inputs.application
    income, debt = app["income_monthly"], app["existing_debt_monthly"]
    tenor = max(product.tenors)
    grid_rate = policy.pricing.get(grade)
    if grid_rate is None:
        reasons.append(f"no price for grade {grade}")
        return None, {}
    rate_ppm, rates = price(product, grid_rate)
    if rates is None:
        reasons.append(f"product {product.code}'s fees alone exceed its APR cap")
        return None, {}
    payment_per_unit = monthly_payment(1.0, rate_ppm / PPM, tenor)
    room = min(income * policy.max_dti - debt, income - debt - policy.min_residual_income)
    affordable = max(room, 0) / payment_per_unit
    amount = int(
        min(
            affordable,
            income * policy.income_multiple.get(grade, 0),
            policy.max_line,
            product.max_principal,
            max(app["requested_amount"], policy.min_line),
        )
    )
    amount -= amount % 100  # whole currency units
    requested_payment = monthly_payment(app["requested_amount"], rate_ppm / PPM, app["requested_tenor"])
    facts = {
        "income_monthly": income,
        "existing_debt_monthly": debt,
        "dti_existing": round(debt / income, 4) if income else None,
        "dti_with_request": round((debt + requested_payment) / income, 4) if income else None,
        "max_affordable_payment": int(max(room, 0)),
        "affordable_amount": int(affordable),
        "line_tenor": tenor,
    }
    if amount < max(policy.min_line, product.min_principal):
        currency = product.currency
        reasons.append(
            f"affordability: at most {format_money(int(max(room, 0)), currency)} a month of new debt service "
            f"supports {format_money(amount, currency)}, below the minimum line "
            f"{format_money(max(policy.min_line, product.min_principal), currency)}"
        )
        return None, facts
    expiry = inputs.decided_on + timedelta(days=policy.line_days)
    return CreditLine(amount, rate_ppm, rates.apr_ppm, rates.effective_annual_rate_ppm, expiry, tenor), facts


def assess(
    inputs: AssessmentInput, product: LoanProduct, scorer: ScorerLike, policy: Policy, anomaly_model: AnomalyModel
) -> Decision:
    """Fraud rules, then score and policy cut-offs, then a priced line; or a decline/review with reasons."""
    policy.check_currency(product)
    anomaly = anomaly_model.score(features_of(inputs.application, inputs.age))
    rules = fraud_rules(inputs.facts, inputs.age, policy.age_range(product), anomaly, policy)
    verdict = fraud_verdict(rules)
    fired = [f"{r.rule}: {r.reason}" for r in rules if r.fired]
    if verdict == REJECT:
        return Decision(Outcome.DECLINED, verdict, tuple(rules), tuple(fired), None, None, None, (), {}, None, anomaly)
    result = scorer.score(score_features(inputs))
    credit: list[str] = []
    if result.pd > policy.max_pd:
        credit.append(f"cut-off: PD {result.pd:.4f} above the policy maximum {policy.max_pd}")
    if policy.min_score is not None and result.score < policy.min_score:
        credit.append(f"cut-off: score {result.score} below the policy minimum {policy.min_score}")
    if result.grade in policy.declined_grades:
        credit.append(f"cut-off: grade {result.grade} is declined by policy")
    line, affordability = _line(inputs, product, policy, result.grade, credit)
    if credit:  # declined on credit grounds; a review flag would not change that
        outcome, reasons, line = Outcome.DECLINED, credit + fired, None
    elif verdict == REVIEW:  # the line is proposed, for a person to confirm
        outcome, reasons = Outcome.REVIEW, fired
    else:
        outcome, reasons = Outcome.APPROVED, []
    return Decision(
        outcome,
        verdict,
        tuple(rules),
        tuple(reasons),
        result.pd,
        result.score,
        result.grade,
        tuple(reason_text(r) for r in result.reasons),
        affordability,
        line,
        anomaly,
    )
