"""The business day loop: applications, decisions, drawdowns and matching, repayments driven by true risk, EOD.

Behaviour is a monthly hazard: at each new due date a borrower defaults with probability
1 - (1 - true PD)^(1/12) times the macro stress factor (and never pays again), prepays in full, pays late by a
lag (most lags cure within 30 days, so the 30-day collection rate means something) or pays on the day. Every
random draw about one borrower comes from that borrower's own generator, seeded by (seed, borrower), so a
what-if run with another policy replays the same people making the same choices.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from sqlalchemy import Engine, func, select

from openice.close_of_day import close_business_day
from openice.errors import OpeniceError
from openice.simulation.platform import PRODUCTS, Platform
from openice.simulation.population import Population
from openice.storage import servicing_tables
from openice.storage.days import from_day, to_day

LATE_LAGS = np.array([1, 2, 3, 5, 7, 10, 15, 20, 28, 40, 60])
LATE_WEIGHTS = np.array([20, 15, 12, 10, 9, 8, 7, 6, 5, 4, 4]) / 100


@dataclass(frozen=True)
class Behaviour:
    """How simulated borrowers act; the macro factor scales every default hazard."""

    macro_stress: float = 1.0
    prepay_monthly: float = 0.03
    late_base: float = 0.03  # chance a borrower pays an installment late, plus late_per_pd x true PD
    late_per_pd: float = 1.5
    repeat_probability: float = 0.6  # draws again after repaying a loan in full
    top_up_monthly: float = 0.05  # draws again on the rest of the line while a loan runs
    first_draw_share: tuple[float, float] = (0.4, 0.7)


@dataclass
class Borrower:
    index: int
    rng: np.random.Generator
    borrower_id: str | None = None
    line_id: str | None = None
    line_room: int = 0
    tenor: int = 12
    grade: str | None = None
    pd: float | None = None
    outcome: str | None = None
    defaulted: bool = False
    due_events: int = 0
    loans: list[int] = field(default_factory=list)


@dataclass
class SimulationResult:
    """What happened, per applicant, for the reports and the what-if comparison."""

    population: Population
    borrowers: list[Borrower]
    start: date
    end: date
    drawdowns: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    loan_borrower: dict[int, int] = field(default_factory=dict)
    repayments: int = 0
    prepayments: int = 0

    def approved(self) -> list[Borrower]:
        return [b for b in self.borrowers if b.outcome == "approved"]


def _loans_with_dues(engine: Engine, day: date) -> list[tuple[int, date]]:
    """Active loans with something due and unpaid today, with their oldest unpaid due date."""
    i = servicing_tables.installments
    unpaid = (i.c.principal - i.c.principal_paid) + (i.c.interest - i.c.interest_paid) + (i.c.fee - i.c.fee_paid)
    query = (
        select(i.c.loan_id, func.min(i.c.due_day))
        .join(servicing_tables.loans, servicing_tables.loans.c.id == i.c.loan_id)
        .where(
            i.c.booked.is_(True), unpaid > 0, i.c.due_day <= to_day(day), servicing_tables.loans.c.status == "active"
        )
        .group_by(i.c.loan_id)
        .order_by(i.c.loan_id)
    )
    with engine.connect() as conn:
        return [(loan_id, from_day(due)) for loan_id, due in conn.execute(query)]


class Simulator:
    """Runs a population through the platform, one business day at a time."""

    def __init__(
        self, platform: Platform, population: Population, seed: int, behaviour: Behaviour | None = None
    ) -> None:
        self.p = platform
        self.pop = population
        self.seed = seed
        self.behaviour = behaviour or Behaviour()
        self.people = [Borrower(i, np.random.default_rng([seed, 1, i])) for i in range(len(population))]
        self.draws: dict[date, list[tuple[int, int]]] = defaultdict(list)  # day -> (borrower, amount)
        self.fate: dict[int, tuple[date, date | None, bool]] = {}  # loan -> (due, pay on, prepay)

    def run(self, start: date, days: int, on_day: Callable[[date], None] | None = None) -> SimulationResult:
        result = SimulationResult(self.pop, self.people, start, start + timedelta(days=days))
        arrivals = defaultdict(list)
        for i, offset in enumerate(self.pop.arrival):
            arrivals[int(offset)].append(i)
        day = self.p.servicing.business_date()
        while day < result.end:
            for i in arrivals.get((day - start).days, []):
                self._apply(i, day)
            for i, amount in self.draws.pop(day, []):
                self._draw(i, amount, day, result)
            self._service(day, result)
            close_business_day(self.p.engine)
            day += timedelta(days=1)
            if on_day:
                on_day(day)
        return result

    def _apply(self, i: int, day: date) -> None:
        b = self.people[i]
        product = PRODUCTS[int(b.rng.random() < 0.3)]
        reg = self.p.decisioning.register(self.pop.registration(i, day))
        b.borrower_id = reg["borrower_id"]
        app = self.pop.application(i, product)
        if product == "CASH-EP":  # equal-principal loans come in 6, 12 and 24 months
            app["requested_tenor"] = 12
        decision = self.p.decisioning.apply(b.borrower_id, app)
        b.outcome, b.grade, b.pd = decision["outcome"], decision["grade"], decision["pd"]
        if decision["line_id"]:
            b.line_id, b.line_room, b.tenor = decision["line_id"], decision["line"]["amount"], app["requested_tenor"]
            lo, hi = self.behaviour.first_draw_share
            want = min(app["requested_amount"], int(b.line_room * b.rng.uniform(lo, hi)))
            self._schedule(b, want, day + timedelta(days=int(b.rng.integers(0, 4))))

    def _schedule(self, b: Borrower, amount: int, on: date) -> None:
        amount = min(amount, b.line_room) // 10_000 * 10_000  # whole hundreds of yuan
        if amount >= 100_000:
            self.draws[on].append((b.index, amount))

    def _draw(self, i: int, amount: int, day: date, result: SimulationResult) -> None:
        b = self.people[i]
        try:
            key = f"sim-{self.seed}-{i}-{len(b.loans)}-{day}"
            out = self.p.matching.drawdown(b.line_id or "", amount, b.tenor, key)
        except OpeniceError:
            result.drawdowns["refused"] += 1
            return
        result.drawdowns[out["status"]] += 1
        if out["status"] == "funded":
            b.line_room -= amount
            b.loans.append(out["loan_id"])
            result.loan_borrower[out["loan_id"]] = i

    def _fate(self, b: Borrower, due: date) -> tuple[date, date | None, bool]:
        """A new installment fell due: does the borrower default, prepay, pay late or pay on the day?"""
        if b.defaulted:
            return due, None, False
        b.due_events += 1
        bh = self.behaviour
        true_pd = float(self.pop.true_pd[b.index])
        hazard = min(1.0, (1 - (1 - true_pd) ** (1 / 12)) * bh.macro_stress)
        late = min(0.4, bh.late_base + bh.late_per_pd * true_pd)
        u = b.rng.random()
        if u < hazard:
            b.defaulted = True
            return due, None, False
        if u < hazard + bh.prepay_monthly:
            return due, due, True
        if u < hazard + bh.prepay_monthly + late:
            return due, due + timedelta(days=int(b.rng.choice(LATE_LAGS, p=LATE_WEIGHTS))), False
        return due, due, False

    def _service(self, day: date, result: SimulationResult) -> None:
        service = self.p.servicing
        for loan_id, due in _loans_with_dues(self.p.engine, day):
            if loan_id not in result.loan_borrower:
                continue  # a loan booked outside the simulation
            b = self.people[result.loan_borrower[loan_id]]
            fate = self.fate.get(loan_id)
            if fate is None or fate[0] != due:
                fate = self.fate[loan_id] = self._fate(b, due)
            _, pay_on, prepay = fate
            if pay_on is None or day < pay_on:
                continue
            loan = service.loan(loan_id)
            if prepay:
                out = service.prepay(loan_id, loan.payoff_amount(day), f"sim-prepay-{loan_id}")
                result.prepayments += 1
            else:
                out = service.repay(loan_id, loan.total_due(), f"sim-pay-{loan_id}-{day}")
                result.repayments += 1
            closed = out["status"] == "closed"
            if b.rng.random() < (self.behaviour.repeat_probability if closed else self.behaviour.top_up_monthly):
                self._schedule(
                    b, int(b.line_room * b.rng.uniform(0.5, 1.0)), day + timedelta(days=int(b.rng.integers(3, 31)))
                )
