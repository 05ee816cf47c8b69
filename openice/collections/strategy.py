"""The collections strategy, pure: which treatment each delinquency stage gets, how often a case is worked,
what a valid contact record is, and how cases are shared among agents.

No I/O here: the service applies these rules to stored cases; end of day (`daily`) judges promises in SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from openice.errors import ValidationError
from openice.servicing.buckets import BUCKETS, CURRENT, WRITTEN_OFF

# A case's stage is its loan's delinquency bucket, least to most severe; WO is recovery after write-off.
STAGES = tuple(b for b in BUCKETS if b != CURRENT) + (WRITTEN_OFF,)


class Channel(StrEnum):
    SMS = "sms"
    CALL = "call"
    EMAIL = "email"
    VISIT = "visit"
    LETTER = "letter"


class Outcome(StrEnum):
    REACHED = "reached"
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"
    REFUSED = "refused"
    PROMISE = "promise"  # the borrower promised to pay an amount by a date


@dataclass(frozen=True)
class Treatment:
    """How a stage is worked: the usual channel and the days between contacts."""

    channel: Channel
    contact_every_days: int


def _default_treatments() -> dict[str, Treatment]:
    return {
        "M1": Treatment(Channel.SMS, 7),  # early: mostly forgetful payers, a reminder cures most
        "M2": Treatment(Channel.CALL, 3),
        "M3": Treatment(Channel.CALL, 1),
        "M4+": Treatment(Channel.VISIT, 1),
        "WO": Treatment(Channel.LETTER, 14),  # recovery of a written-off loan
    }


@dataclass(frozen=True)
class Strategy:
    treatments: Mapping[str, Treatment] = field(default_factory=_default_treatments)
    max_promise_days: int = 14  # a promise further out than this is not a promise, it is a new schedule

    def __post_init__(self) -> None:
        missing = [s for s in STAGES if s not in self.treatments]
        if missing:
            raise ValidationError(f"every stage needs a treatment; missing {missing}", field="treatments")
        for stage, treatment in self.treatments.items():
            if treatment.contact_every_days < 1:
                raise ValidationError(
                    f"stage {stage}: contacts must be at least a day apart", field="contact_every_days"
                )
        if self.max_promise_days < 1:
            raise ValidationError("must be at least 1", field="max_promise_days")

    def next_contact(self, stage: str, contacted_on: date) -> date:
        return contacted_on + timedelta(days=self.treatments[stage].contact_every_days)


@dataclass(frozen=True)
class Contact:
    """A validated contact attempt; a promise carries its amount (minor units) and date."""

    channel: Channel
    outcome: Outcome
    promise_amount: int | None = None
    promise_date: date | None = None


def contact(
    channel: str,
    outcome: str,
    today: date,
    strategy: Strategy,
    promise_amount: int | None = None,
    promise_date: date | None = None,
) -> Contact:
    """Check a contact record; a promise needs a positive amount and a date from today within the strategy's
    limit, and only a promise may carry them."""
    try:
        kind = Channel(channel)
    except ValueError:
        raise ValidationError(f"must be one of {[c.value for c in Channel]}", field="channel") from None
    try:
        result = Outcome(outcome)
    except ValueError:
        raise ValidationError(f"must be one of {[o.value for o in Outcome]}", field="outcome") from None
    if result is not Outcome.PROMISE:
        if promise_amount is not None or promise_date is not None:
            raise ValidationError(
                "only a contact with outcome 'promise' carries a promise", field="promise", reason="promise.not_promise"
            )
        return Contact(kind, result)
    if promise_amount is None or promise_amount <= 0:
        raise ValidationError(
            "a promise to pay needs a positive amount", field="promise_amount", reason="promise.amount_missing"
        )
    if promise_date is None:
        raise ValidationError(
            "a promise to pay needs the date it will be paid by", field="promise_date", reason="promise.date_missing"
        )
    if promise_date < today:
        raise ValidationError(
            f"{promise_date} is before the business date {today}",
            field="promise_date",
            reason="promise.date_past",
            values={"day": today},
        )
    if promise_date > today + timedelta(days=strategy.max_promise_days):
        raise ValidationError(
            f"a promise may be at most {strategy.max_promise_days} days out "
            f"(by {today + timedelta(days=strategy.max_promise_days)})",
            field="promise_date",
            reason="promise.date_too_far",
            values={"days": strategy.max_promise_days, "day": today + timedelta(days=strategy.max_promise_days)},
        )
    return Contact(kind, result, promise_amount, promise_date)


def distribute(cases: Sequence[tuple[int, int]], load: Mapping[str, int]) -> dict[int, str]:
    """Share unassigned cases (id, overdue amount) among agents (name -> open cases already held).

    Largest amounts first, each to the agent holding the fewest cases (ties by name), so workloads even out
    and the largest balances are spread rather than piled on one agent."""
    if not load:
        raise ValidationError("name at least one agent to assign cases to", field="agents")
    held = dict(load)
    assigned: dict[int, str] = {}
    for case_id, _ in sorted(cases, key=lambda c: (-c[1], c[0])):
        agent = min(held, key=lambda a: (held[a], a))
        assigned[case_id] = agent
        held[agent] += 1
    return assigned
