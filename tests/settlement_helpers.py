"""The small hand-worked settlement book both the settlement tests and the settlement commands' test read."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Engine

from openice.close_of_day import run_until
from openice.servicing.daycount import DayCount
from openice.servicing.products import LoanProduct, RepaymentMethod
from openice.servicing.service import Servicing
from openice.storage.uow import EngineUnits

# 10,000.00 over two months, equal principal, 12% a year on 30/360: 100.00 of interest and 20.00 of service fee a
# month; the institution earns 9%, so 75.00 of each month's interest is its and 25.00 the platform's spread; a
# capital-light loan's referral fee is 30 bp: 30.00.
SMALL = LoanProduct(
    code="SETTLE",
    currency="CNY",
    tenors=(2,),
    method=RepaymentMethod.EQUAL_PRINCIPAL,
    nominal_rate=Decimal("0.12"),
    day_count=DayCount.THIRTY_360,
    monthly_service_fee_rate=Decimal("0.002"),
    grace_days=3,
    referral_fee_bps=30,
)


def originate(servicing: Servicing, key: str, model: str, **kw: object) -> int:
    return servicing.originate(
        product_code="SETTLE",
        principal=1_000_000,
        tenor=2,
        funder="BANK-A",
        business_model=model,
        idempotency_key=key,
        funder_rate=Decimal("0.09"),
        **kw,  # type: ignore[arg-type]
    )["loan_id"]


def small_book(engine: Engine) -> tuple[Servicing, int, int]:
    """Loan A (capital-light) repaid on its first due date; loan B (capital-heavy, payout at 1 DPD) not, so the
    platform pays BANK-A out on 15 February and collects 120.00 from the borrower the next day."""
    servicing = Servicing(EngineUnits(engine))
    servicing.create_product(SMALL)
    a = originate(servicing, "a", "capital-light")
    b = originate(servicing, "b", "capital-heavy", guarantee_payout_dpd=1)
    run_until(engine, date(2026, 2, 15))
    servicing.repay(a, 512_000, "pay-a")
    run_until(engine, date(2026, 2, 16))
    servicing.repay(b, 12_000, "pay-b")
    run_until(engine, date(2026, 3, 1))
    return servicing, a, b
