"""A deal on the ledger (pure, no I/O): the entries that move its loans to it, the pool's collections of a month from
the loans' journal lines, and the entry that pays them down the waterfall.

The transfer, on each pool loan's books, for its principal outstanding at the cut-off:

- derecognised (a true sale): the trust pays the pool balance, so the platform's funding comes back and the trust's
  money stands in the loan: Dr `funding_cash`, Cr `abs_trust_funding`;
- kept on balance sheet (a secured borrowing): the loan stays the platform's asset, the cash the noteholders paid is a
  liability: Dr `platform_cash`, Cr `abs_secured_borrowing`.

A month's collections of a loan are the cash its borrower paid (the loan's `collections_clearing`), told apart by
what it paid: principal is what left `loan_principal` other than by a write-off, recoveries what recovery income
took, interest the rest (interest, fees, late and prepayment fees: all the pool's income is the deal's). Defaults are
the principal written off. A reversal shows as a negative amount in the month it is made; the waterfall takes no
negative amount, so it is carried and taken off the next months' collections (`fed`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from openice.funding.waterfall import Collection, Period
from openice.servicing import ledger

WRITE_OFF = "write_off"  # the kind of a write-off entry (end of day's and an operator's)
# A loan no longer the platform's own books its losses and recoveries as its funder's (`platform_bears_loss`): right
# for a sale; a deal kept on balance sheet takes them back into the platform's P&L at month-end (`kept`).
FUNDER_RESULTS = {
    ledger.INSTITUTION_CREDIT_LOSS: ledger.CREDIT_LOSS,
    ledger.INSTITUTION_RECOVERY_INCOME: ledger.RECOVERY_INCOME,
}
COLLECTION_ACCOUNTS = (
    ledger.COLLECTIONS_CLEARING,
    ledger.LOAN_PRINCIPAL,
    ledger.RECOVERY_INCOME,
    *FUNDER_RESULTS,
)


@dataclass(frozen=True)
class Line:
    """One journal line of a loan: what `month` reads from the ledger, and what the deal's entries write."""

    loan_id: int
    account: str
    amount: int


def transfer(loan_id: int, balance: int, derecognise: bool) -> list[Line]:
    """A loan sold (or pledged) to the deal at its principal outstanding."""
    cash = ledger.FUNDING_CASH if derecognise else ledger.PLATFORM_CASH
    return _pair(loan_id, cash, ledger.ABS_NOTES.pick(derecognise), balance)


def purchase(loan_id: int, balance: int, derecognise: bool) -> list[Line]:
    """A loan a revolving deal buys with its principal collections: the collection account pays the platform for it,
    which then stands in the notes' money as the loans it replaces did."""
    cash = ledger.FUNDING_CASH if derecognise else ledger.PLATFORM_CASH
    return _pair(loan_id, cash, ledger.ABS_COLLECTION_ACCOUNT, balance)


def buy_back(loan_id: int, balance: int, derecognise: bool) -> list[Line]:
    """A loan the platform buys back at the clean-up call, at its principal outstanding: the price goes into the
    collection account, to pay the notes off."""
    cash = ledger.FUNDING_CASH if derecognise else ledger.PLATFORM_CASH
    return _pair(loan_id, ledger.ABS_COLLECTION_ACCOUNT, cash, balance)


def reserve_funding(anchor: int, initial: int) -> list[Line]:
    """The platform puts the reserve account's initial balance into the deal at closing."""
    return _pair(anchor, ledger.ABS_RESERVE_ACCOUNT, ledger.PLATFORM_CASH, initial)


def _pair(loan_id: int, debit: str, credit: str, amount: int) -> list[Line]:
    if amount == 0:
        return []
    return [Line(loan_id, debit, amount), Line(loan_id, credit, -amount)]


@dataclass(frozen=True)
class Month:
    """A month of the pool from the ledger: its collections (period 0, amounts possibly negative), each loan's cash
    collected, and each loan's losses and recoveries booked as its funder's."""

    collection: Collection
    cash: dict[int, int]
    funder_results: dict[tuple[int, str], int]


def month(lines: Iterable[tuple[Line, str]]) -> Month:
    """The month of the pool from its loans' journal lines, each with its entry's kind."""
    cash: defaultdict[int, int] = defaultdict(int)
    results: defaultdict[tuple[int, str], int] = defaultdict(int)
    principal = defaults = recoveries = 0
    for line, kind in lines:
        if line.account in FUNDER_RESULTS:
            results[line.loan_id, line.account] += line.amount
        if line.account == ledger.COLLECTIONS_CLEARING:
            cash[line.loan_id] += line.amount
        elif line.account == ledger.LOAN_PRINCIPAL and kind == WRITE_OFF:
            defaults -= line.amount
        elif line.account == ledger.LOAN_PRINCIPAL:
            principal -= line.amount
        elif line.account in (ledger.RECOVERY_INCOME, ledger.INSTITUTION_RECOVERY_INCOME):
            recoveries -= line.amount
    interest = sum(cash.values()) - principal - recoveries
    return Month(
        Collection(0, interest, principal, defaults, recoveries),
        {k: v for k, v in sorted(cash.items()) if v},
        {k: v for k, v in sorted(results.items()) if v},
    )


def kept(month: Month) -> list[Line]:
    """A deal kept on balance sheet: its loans are still the platform's asset, so the month's losses and recoveries
    they booked as their funder's move to the platform's credit loss and recovery income."""
    return [
        line
        for (loan, account), amount in month.funder_results.items()
        for line in (Line(loan, FUNDER_RESULTS[account], amount), Line(loan, account, -amount))
    ]


def fed(months: Sequence[Collection]) -> list[Collection]:
    """The waterfall's collections from the months as the ledger holds them: an amount below zero (a payment of an
    earlier month reversed) takes nothing from its month and is taken off the next months' amounts of its kind."""
    carried = {"interest": 0, "principal": 0, "defaults": 0, "recoveries": 0}
    out = []
    for number, m in enumerate(months, start=1):
        amounts = {}
        for kind in carried:
            net = getattr(m, kind) + carried[kind]
            amounts[kind] = max(net, 0)
            carried[kind] = min(net, 0)
        out.append(Collection(number, **amounts, purchased=m.purchased, callable=m.callable))
    return out


def payments(anchor: int, cash: dict[int, int], period: Period, reserve_before: int, derecognise: bool) -> list[Line]:
    """The month's entry: each loan's cash leaves its clearing for the deal's collection account, and the collection
    account pays the waterfall (fees, the notes' interest and principal, the reserve's change, the residual income).
    At a clean-up call the notes' balance its price could not pay is written down to `abs_note_loss`.
    The deal's own lines stand on its first loan's books (`anchor`), which carry its currency to the trial balance."""
    lines = [Line(loan, account, sign * amount) for loan, amount in cash.items() for account, sign in _REMIT]
    paid = {
        ledger.ABS_FEES_PAID: period.fees,
        ledger.ABS_NOTE_INTEREST_PAID: sum(t.interest_paid for t in period.tranches.values()),
        ledger.ABS_NOTES.pick(derecognise): sum(t.principal_paid for t in period.tranches.values()),
        ledger.ABS_RESERVE_ACCOUNT: period.reserve_balance - reserve_before,
        ledger.ABS_RESIDUAL_PAID: period.residual_income,
    }
    for account, amount in paid.items():
        if amount:
            lines += [Line(anchor, account, amount), Line(anchor, ledger.ABS_COLLECTION_ACCOUNT, -amount)]
    lines += _pair(anchor, ledger.ABS_NOTES.pick(derecognise), ledger.ABS_NOTE_LOSS, period.loss)
    ledger.assert_balanced(ledger.Posting(x.account, x.amount) for x in lines)
    return lines


_REMIT = ((ledger.ABS_COLLECTION_ACCOUNT, 1), (ledger.COLLECTIONS_CLEARING, -1))
