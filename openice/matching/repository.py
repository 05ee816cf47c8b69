"""Repositories of the matching stage; quota reservation is one conditional UPDATE per period."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from openice.clock import now_iso
from openice.errors import NotFound
from openice.matching.institutions import Institution
from openice.storage import decisioning_tables, direct
from openice.tenancy import RULES, Principal

# The statements of a drawdown's walk, built once with bound parameters: building a statement and its cache key
# costs more CPU than the database spends running it.
_ACTIVE = (
    select(decisioning_tables.institutions.c.definition)
    .where(decisioning_tables.institutions.c.active == 1)
    .order_by(decisioning_tables.institutions.c.code)
)
_Q = decisioning_tables.quota_usage.c
_ENSURE = {
    name: dialect.insert(decisioning_tables.quota_usage).on_conflict_do_nothing()
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_RESERVE = (
    update(decisioning_tables.quota_usage)
    .where(
        _Q.institution_code == bindparam("code"),
        _Q.period == bindparam("p"),
        _Q.period_day == bindparam("day"),
        _Q.used + bindparam("amount") <= bindparam("q"),
    )
    .values(used=_Q.used + bindparam("amount"), quota=bindparam("q"))
)
_USED = select(_Q.period, _Q.used).where(
    _Q.institution_code == bindparam("code"),
    ((_Q.period == "D") & (_Q.period_day == bindparam("day")))
    | ((_Q.period == "M") & (_Q.period_day == bindparam("month"))),
)
_INSERT_DRAWDOWN = insert(decisioning_tables.drawdowns).returning(decisioning_tables.drawdowns.c.id)
_DRAWDOWN = select(decisioning_tables.drawdowns).where(decisioning_tables.drawdowns.c.id == bindparam("drawdown_id"))
_FINISH = update(decisioning_tables.drawdowns).where(decisioning_tables.drawdowns.c.id == bindparam("drawdown_id"))
_INSERT_OFFER = insert(decisioning_tables.offers).returning(decisioning_tables.offers.c.id)
_OFFER_STATUS = update(decisioning_tables.offers).where(decisioning_tables.offers.c.id == bindparam("offer_id"))
_EXPIRED = (
    select(decisioning_tables.offers)
    .where(
        decisioning_tables.offers.c.status == "sent",
        decisioning_tables.offers.c.expires_at.is_not(None),
        decisioning_tables.offers.c.expires_at < bindparam("now"),
    )
    .order_by(decisioning_tables.offers.c.id)
)
_LATEST_PRICES = (
    select(decisioning_tables.matching_runs.c.prices).order_by(decisioning_tables.matching_runs.c.id.desc()).limit(1)
)


@lru_cache(maxsize=1024)
def parse_institution(definition: str) -> Institution:
    """An institution from its stored definition, parsed once per worker (the same text is the same terms)."""
    return Institution.model_validate_json(definition)


class InstitutionRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def upsert(self, inst: Institution) -> None:
        """Institutions change terms over time; loans keep the terms they were originated under."""
        values = dict(
            name=inst.name,
            business_model=inst.business_model,
            funding_cost_ppm=inst.funding_cost_ppm,
            rate_ppm=inst.rate_ppm,
            credit_box=inst.credit_box.model_dump_json(),
            daily_quota=inst.daily_quota,
            monthly_quota=inst.monthly_quota,
            min_monthly_volume=inst.min_monthly_volume,
            max_avg_pd=inst.max_avg_pd,
            priority=inst.priority,
            guarantee_payout_dpd=inst.guarantee_payout_dpd,
            kind=inst.kind,
            active=1,
            definition=inst.model_dump_json(),
        )
        done = self.conn.execute(
            update(decisioning_tables.institutions)
            .where(decisioning_tables.institutions.c.code == inst.code)
            .values(**values)
        )
        if done.rowcount == 0:
            self.conn.execute(insert(decisioning_tables.institutions).values(code=inst.code, **values))

    def active_definitions(self) -> tuple[str, ...]:
        """The active institutions' stored definitions, in code order."""
        return tuple(r.definition for r in direct.execute(self.conn, _ACTIVE))

    def active(self) -> list[Institution]:
        return [parse_institution(definition) for definition in self.active_definitions()]

    def find(self, code: str) -> Institution | None:
        row = self.conn.execute(
            select(decisioning_tables.institutions.c.definition).where(decisioning_tables.institutions.c.code == code)
        ).first()
        return None if row is None else Institution.model_validate_json(row.definition)

    def get(self, code: str) -> Institution:
        found = self.find(code)
        if found is None:
            raise NotFound(f"no institution {code!r}", field="institution")
        return found


class QuotaRepository:
    """Daily and monthly quota usage rows; a reservation never lets `used` pass the quota."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _ensure(self, code: str, period: str, day: int, quota: int) -> None:
        direct.execute(
            self.conn,
            _ENSURE[self.conn.dialect.name],
            dict(institution_code=code, period=period, period_day=day, used=0, quota=quota),
        )

    def fits(self, code: str, amount: int, periods: list[tuple[str, int, int]]) -> bool:
        """Whether `amount` fits every period now, read without a lock: an institution known to be full is not
        offered the drawdown; `reserve` still decides, as the quota may fill meanwhile."""
        (_, day, _), (_, month, _) = periods
        taken = direct.execute(self.conn, _USED, {"code": code, "day": day, "month": month})
        used = {row.period: row.used for row in taken}
        return all(used.get(period, 0) + amount <= quota for period, _, quota in periods)

    def reserve(self, code: str, amount: int, periods: list[tuple[str, int, int]]) -> bool:
        """Take `amount` from every (period, day, quota) or from none: a conditional UPDATE whose row count says
        whether it fitted. The caller rolls the transaction back when it did not."""
        for period, day, quota in periods:
            params = {"code": code, "p": period, "day": day, "amount": amount, "q": quota}
            done = direct.execute(self.conn, _RESERVE, params)
            if done.rowcount != 1:  # no usage row for this period yet (its first reservation), or full
                self._ensure(code, period, day, quota)
                done = direct.execute(self.conn, _RESERVE, params)
            if done.rowcount != 1:
                return False
        return True

    def release(self, code: str, amount: int, periods: list[tuple[str, int, int]]) -> None:
        c = decisioning_tables.quota_usage.c
        for period, day, _ in periods:
            self.conn.execute(
                update(decisioning_tables.quota_usage)
                .where(c.institution_code == code, c.period == period, c.period_day == day)
                .values(used=c.used - amount)
            )

    def used(self, code: str, period: str, day: int) -> int:
        c = decisioning_tables.quota_usage.c
        row = self.conn.execute(
            select(c.used).where(c.institution_code == code, c.period == period, c.period_day == day)
        ).first()
        return 0 if row is None else int(row.used)


class DrawdownRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, row: dict[str, Any]) -> int:
        return int(direct.execute(self.conn, _INSERT_DRAWDOWN, {"status": "routing", **row}).scalar_one())

    def get(self, drawdown_id: int) -> Any:
        row = direct.execute(self.conn, _DRAWDOWN, {"drawdown_id": drawdown_id}).first()
        if row is None:
            raise NotFound(f"no drawdown {drawdown_id}", field="drawdown_id")
        return row

    def offered(self, drawdown_id: int, institution: str, reasons: dict[str, Any]) -> None:
        """Waiting for an institution that decides by hand."""
        self.conn.execute(
            update(decisioning_tables.drawdowns)
            .where(decisioning_tables.drawdowns.c.id == drawdown_id)
            .values(status="offered", institution_code=institution, reasons=json.dumps(reasons))
        )

    def finish(
        self,
        drawdown_id: int,
        status: str,
        reasons: dict[str, Any],
        institution: str | None = None,
        loan_id: int | None = None,
    ) -> None:
        direct.execute(
            self.conn,
            _FINISH,
            dict(
                drawdown_id=drawdown_id,
                status=status,
                institution_code=institution,
                loan_id=loan_id,
                reasons=json.dumps(reasons),
            ),
        )


class OfferRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(
        self, drawdown_id: int, code: str, rank: int, margin: int, report: dict[str, Any], expires_at: str | None = None
    ) -> int:
        return int(
            direct.execute(
                self.conn,
                _INSERT_OFFER,
                dict(
                    drawdown_id=drawdown_id,
                    institution_code=code,
                    rank=rank,
                    expected_margin=margin,
                    status="sent",
                    report=json.dumps(report, default=str),
                    created_at=now_iso(),
                    expires_at=expires_at,
                ),
            ).scalar_one()
        )

    def set_status(self, offer_id: int, status: str, reason: str | None = None) -> None:
        direct.execute(self.conn, _OFFER_STATUS, {"offer_id": offer_id, "status": status, "reason": reason})

    def close(self, offer_id: int, status: str, reason: str) -> bool:
        """Move a pending offer to its answer; False when it was no longer pending (someone answered first)."""
        done = self.conn.execute(
            update(decisioning_tables.offers)
            .where(decisioning_tables.offers.c.id == offer_id, decisioning_tables.offers.c.status == "sent")
            .values(status=status, reason=reason, answered_at=now_iso())
        )
        return done.rowcount == 1

    def expired(self, now: str) -> list[Any]:
        return list(direct.execute(self.conn, _EXPIRED, {"now": now}))

    def get(self, offer_id: int, caller: Principal | None = None) -> Any:
        """The offer; through `caller`'s tenancy rule when given, so another institution's offer is missing."""
        offers = decisioning_tables.offers
        query = select(offers).where(offers.c.id == offer_id)
        row = self.conn.execute(query if caller is None else query.where(RULES["offers"](caller))).first()
        if row is None:
            raise NotFound(f"no offer {offer_id}", field="offer_id")
        return row

    def for_drawdown(self, drawdown_id: int) -> list[Any]:
        return list(
            self.conn.execute(
                select(decisioning_tables.offers)
                .where(decisioning_tables.offers.c.drawdown_id == drawdown_id)
                .order_by(decisioning_tables.offers.c.rank)
            )
        )


class MatchingRunRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(
        self, day: int, drawdowns: int, objective: int, greedy_objective: int, prices: dict[str, dict[str, float]]
    ) -> int:
        return int(
            self.conn.execute(
                insert(decisioning_tables.matching_runs)
                .values(
                    run_day=day,
                    drawdowns=drawdowns,
                    objective=objective,
                    greedy_objective=greedy_objective,
                    prices=json.dumps(prices),
                    created_at=now_iso(),
                )
                .returning(decisioning_tables.matching_runs.c.id)
            ).scalar_one()
        )

    def latest_prices(self) -> dict[str, dict[str, float]]:
        row = direct.execute(self.conn, _LATEST_PRICES).first()
        return {} if row is None else json.loads(row.prices)
