"""The payoff quote: today's is the amount that closes the loan, a later day's is what end of day leaves due by then,
and a loan's transactions are read with it, reversed ones marked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from openice.close_of_day import run_until
from openice.errors import Conflict, ValidationError
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage.uow import EngineUnits
from tests.conftest import START


@pytest.fixture
def servicing(engine: Engine) -> Servicing:
    service = Servicing(EngineUnits(engine))
    for product in demo_products():
        service.create_product(product)
    return service


def book(servicing: Servicing) -> int:
    loan: int = servicing.originate(
        product_code="CASH-EI",
        principal=1_000_000,
        tenor=12,
        funder="bank-a",
        business_model="capital-light",
        idempotency_key="o1",
    )["loan_id"]
    return loan


def test_a_later_day_is_quoted_as_end_of_day_will_leave_it(engine: Engine, servicing: Servicing) -> None:
    loan_id = book(servicing)
    today = servicing.payoff_quote(loan_id)
    assert today.on == START and today.total == servicing.loan(loan_id).payoff_amount(START)
    later = START + timedelta(days=40)  # the first installment is due on day 31 and unpaid past its grace days
    quote = servicing.payoff_quote(loan_id, later)
    assert quote.due > 0 and quote.prepayment_fee > 0 and quote.total > today.total
    run_until(engine, later)
    assert servicing.payoff_quote(loan_id) == quote
    servicing.prepay(loan_id, quote.total, "payoff")
    assert servicing.loan(loan_id).status.value == "closed"
    with pytest.raises(Conflict) as closed:
        servicing.payoff_quote(loan_id)
    assert closed.value.field == "loan_id"


def test_a_day_before_the_business_date_is_refused(servicing: Servicing) -> None:
    loan_id = book(servicing)
    with pytest.raises(ValidationError) as error:
        servicing.payoff_quote(loan_id, START - timedelta(days=1))
    assert error.value.field == "date"


def test_transactions_are_read_with_the_loan_reversed_ones_marked(engine: Engine, servicing: Servicing) -> None:
    loan_id = book(servicing)
    run_until(engine, START + timedelta(days=32))
    paid = servicing.repay(loan_id, 10_000, "r1")["transaction_id"]
    again = servicing.repay(loan_id, 20_000, "r2")["transaction_id"]
    servicing.reverse(paid, "x1")
    loan, transactions = servicing.loan_with_transactions(loan_id)
    assert loan.loan_id == loan_id
    assert [(t.id, t.kind, t.amount, bool(t.reversed)) for t in transactions] == [
        (paid, "repayment", 10_000, True),
        (again, "repayment", 20_000, False),
    ]
