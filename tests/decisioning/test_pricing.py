"""Pricing under an APR cap on the IRR method, worked by hand."""

from decimal import Decimal

from openice.decisioning.policy import price
from openice.servicing.products import LoanProduct, RepaymentMethod


def test_a_fee_free_line_is_priced_up_to_the_cap_less_the_margin() -> None:
    # No fees, equal installments, 30/360: the APR is the nominal rate (but for cent rounding), so a 30% grid
    # rate comes down to the 24% cap less the 5 bp margin, 23.95%; effective annual rate
    # (1 + 23.95%/12)^12 - 1 = 26.7620%.
    product = LoanProduct(
        code="T",
        currency="CNY",
        tenors=(6, 12),
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        nominal_rate=Decimal("0.2"),
        apr_cap=Decimal("0.24"),
    )
    rate_ppm, rates = price(product, Decimal("0.30"))
    assert rate_ppm == 239_500
    assert rates is not None and abs(rates.apr_ppm - 239_500) <= 1
    assert rates.effective_annual_rate_ppm == 267_620
    assert rates.apr_convention == "IRR method: per-period IRR x 12"


def test_fees_alone_above_the_cap_leave_no_price() -> None:
    # A 30% upfront fee on a 3-month loan: even at 0% the borrower gets 7,000.00 and repays 10,000.00 in three
    # months, a per-period IRR of about 20.2%, an APR of about 242%.
    product = LoanProduct(
        code="T",
        currency="CNY",
        tenors=(3,),
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        nominal_rate=Decimal("0.1"),
        facilitation_fee_rate=Decimal("0.3"),
        apr_cap=Decimal("0.36"),
    )
    assert price(product, Decimal("0.10")) == (-1, None)
