"""The servicing demo: a year of a consumer-loan book on the embedded default, day by day.

Borrowers behave by type: most pay on their due date, some pay late and cure, some stop
paying (and are written off, or paid out by the platform's guarantee), some prepay in full.
Everything goes through the same service calls and end of day that production uses.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Engine, func, select

from openice.servicing.eod import close_business_day
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage import tables as t
from openice.storage.days import from_day, to_day

INSTITUTIONS = (("bank-a", "capital-light", None), ("trust-b", "capital-heavy", 80),
                ("cfc-c", "capital-light", None), ("platform", "on-balance-sheet", None))


@dataclass(frozen=True)
class Behaviour:
    kind: str  # on_time | late | default | prepay
    lag_days: int = 0  # late payers pay this many days after the due date
    stop_after: int = 0  # defaulters stop after this many installments
    prepay_on: date | None = None


def draw_behaviour(rnd: random.Random, start: date) -> Behaviour:
    roll = rnd.random()
    if roll < 0.78:
        return Behaviour("on_time")
    if roll < 0.90:
        return Behaviour("late", lag_days=rnd.choice([1, 2, 5, 10, 20, 35, 50]))
    if roll < 0.96:
        return Behaviour("default", stop_after=rnd.randint(0, 4))
    return Behaviour("prepay", prepay_on=start + timedelta(days=rnd.randint(20, 200)))


@dataclass
class DemoResult:
    loans: int
    repayments: int
    prepayments: int
    start: date
    end: date


def run_demo(engine: Engine, loans: int, months: int, start: date, seed: int = 42,
             on_day: Callable[[date], None] | None = None) -> DemoResult:
    """Originate `loans` loans over the first two thirds of the period and service them to the end."""
    rnd = random.Random(seed)
    service = Servicing(engine)
    existing = {p.code for p in service.products()}
    products = demo_products()
    for product in products:
        if product.code not in existing:
            service.create_product(product)
    end = start + timedelta(days=round(months * 30.44))
    origination_days = max(1, (end - start).days * 2 // 3)
    per_day = [0] * origination_days
    for _ in range(loans):
        per_day[rnd.randrange(origination_days)] += 1
    behaviour: dict[int, Behaviour] = {}
    paid_installments: dict[int, int] = {}
    repayments = prepayments = 0
    day = service.business_date()
    while day < end:
        offset = (day - start).days
        for k in range(per_day[offset] if 0 <= offset < origination_days else 0):
            product = rnd.choice(products)
            funder, model, payout = rnd.choice(INSTITUTIONS)
            result = service.originate(
                product_code=product.code, principal=rnd.randint(10, 300) * 10_000, tenor=rnd.choice(product.tenors),
                funder=funder, business_model=model, guarantee_payout_dpd=payout,
                borrower_id=f"B{rnd.randrange(loans):06d}", idempotency_key=f"demo-orig-{day}-{k}")
            behaviour[result["loan_id"]] = draw_behaviour(rnd, day)
        for loan_id, oldest_due in _loans_with_dues(engine, day):
            b = behaviour.get(loan_id, Behaviour("on_time"))
            late_by = (day - oldest_due).days
            if b.kind == "default" and paid_installments.get(loan_id, 0) >= b.stop_after:
                continue
            if late_by < (b.lag_days if b.kind == "late" else 0):
                continue
            loan = service.loan(loan_id)
            service.repay(loan_id, loan.total_due(), f"demo-pay-{loan_id}-{day}")
            paid_installments[loan_id] = paid_installments.get(loan_id, 0) + 1
            repayments += 1
        for loan_id, b in behaviour.items():
            if b.kind == "prepay" and b.prepay_on == day:
                loan = service.loan(loan_id)
                if loan.status.value == "active":
                    service.prepay(loan_id, loan.payoff_amount(day), f"demo-prepay-{loan_id}")
                    prepayments += 1
        close_business_day(engine)
        day += timedelta(days=1)
        if on_day:
            on_day(day)
    return DemoResult(loans, repayments, prepayments, start, end)


def _loans_with_dues(engine: Engine, day: date) -> list[tuple[int, date]]:
    """Active loans with something due and unpaid today, with their oldest unpaid due date."""
    i = t.installments
    unpaid = (i.c.principal - i.c.principal_paid) + (i.c.interest - i.c.interest_paid) + (i.c.fee - i.c.fee_paid)
    query = (select(i.c.loan_id, func.min(i.c.due_day)).join(t.loans, t.loans.c.id == i.c.loan_id)
             .where(i.c.booked.is_(True), unpaid > 0, i.c.due_day <= to_day(day), t.loans.c.status == "active")
             .group_by(i.c.loan_id).order_by(i.c.loan_id))
    with engine.connect() as conn:
        return [(loan_id, from_day(due)) for loan_id, due in conn.execute(query)]
