"""Drawdown routing and origination, and batch optimisation runs: the application layer of matching.

A drawdown reserves room on its credit line, ranks the institutions (pure), then walks the ranking: send the
offer with its investigation report and, on acceptance, originate the loan in servicing under the institution and
its business model and take the institution's daily and monthly quota (atomically, last; an institution that
answers by hand has its quota taken when the offer goes out). A decline or a full quota moves on; when nobody
funds, the line's room is released and "no funder" is the outcome.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from openice import deployment
from openice.clock import now_iso
from openice.decisioning.pii import PiiVault
from openice.decisioning.policy import line_rates
from openice.decisioning.service import DecisionUnit
from openice.errors import Amount, Conflict, OpeniceError, ValidationError
from openice.idempotency import scoped
from openice.matching.boxes import Boxes, Drawdowns, debt_to_income
from openice.matching.deliveries import CircuitRepository, DeliveryRepository
from openice.matching.economics import margins
from openice.matching.institutions import Institution, terms_currency
from openice.matching.optimize import Capacity, greedy, optimise
from openice.matching.report import build_report, render_html, render_pdf, served
from openice.matching.repository import (
    DrawdownRepository,
    InstitutionRepository,
    MatchingRunRepository,
    OfferRepository,
    QuotaRepository,
    parse_institution,
)
from openice.matching.router import Candidate, Ranking, Router
from openice.money import format_money, round_half_up
from openice.servicing.products import PPM, LoanProduct
from openice.servicing.repository import ServicingUnit, unknown_product
from openice.servicing.service import Servicing
from openice.servicing.sources import ICE_CHANNEL
from openice.storage.days import from_day, to_day
from openice.storage.uow import JoinedUnits, UnitsOfWork
from openice.tenancy import Principal

ORIGINATION_ATTEMPTS = 50
MATCHING_SCOPE = "matching"  # the scope of the key matching books a drawdown's loan under


@lru_cache(maxsize=128)
def _router(
    definitions: tuple[str, ...],
    fees: tuple[tuple[str, tuple[float, float]], ...],
    currencies: tuple[tuple[str, str], ...],
    prices: str,
) -> Router:
    """A router for one state of the institutions, the products' fees and currencies and the shadow prices (JSON)."""
    return Router([parse_institution(x) for x in definitions], dict(fees), dict(currencies), json.loads(prices))


class InstitutionGateway(Protocol):
    """How an offer reaches an institution and its answer comes back (an API call in production)."""

    def decide(self, institution: str, report: dict[str, Any]) -> tuple[bool, str]: ...


class AutoAccept:
    """An institution that funds whatever its credit box let through (straight-through processing)."""

    def decide(self, institution: str, report: dict[str, Any]) -> tuple[bool, str]:
        return True, "accepted within the credit box"


class MatchUnit(DecisionUnit):
    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.institutions = InstitutionRepository(conn)
        self.quotas = QuotaRepository(conn)
        self.drawdowns = DrawdownRepository(conn)
        self.offers = OfferRepository(conn)
        self.runs = MatchingRunRepository(conn)
        self.deliveries = DeliveryRepository(conn)
        self.circuits = CircuitRepository(conn)


class _QuotaFull(Exception):
    """Rolls back a partial reservation (the day fitted, the month did not)."""


def product_fees(products: Sequence[LoanProduct]) -> dict[str, tuple[float, float]]:
    return {p.code: (float(p.facilitation_fee_rate), float(p.monthly_service_fee_rate)) for p in products}


def product_currencies(products: Sequence[LoanProduct]) -> dict[str, str]:
    """Each product's currency: an institution takes only the products lent in its own (`funds_in`)."""
    return {p.code: p.currency for p in products}


def quota_periods(inst: Institution, today: date) -> list[tuple[str, int, int]]:
    return [("D", to_day(today), inst.daily_quota), ("M", to_day(today.replace(day=1)), inst.monthly_quota)]


@dataclass(frozen=True)
class _Request:
    """What funding a drawdown needs: its line and terms."""

    line: Any
    drawdown_id: int
    amount: int
    tenor: int
    day: date  # the business day of the request: quotas are reserved and released against it


@dataclass(frozen=True)
class _Walk(_Request):
    """A drawdown on its way down the ranking of institutions."""

    context: dict[str, Any]
    institutions: dict[str, Institution]
    candidates: list[Candidate]
    refusals: dict[str, Any]


def book_terms_currency(conn: Connection) -> str | None:
    """The book's currency as `conn` sees it (`terms_currency`: None before it has a product), which an institution's
    amounts are in when it names none, so onboarding converts inside its own transaction."""
    return terms_currency(p.currency for p in ServicingUnit(conn).products.list())


def register_institutions(units: UnitsOfWork, institutions: Sequence[Institution]) -> None:
    """Add institutions or change their terms, in one unit; a deployment that runs one institution alone
    (on-premise) admits no other (`openice.deployment`), and an institution keeps the currency it was added in (its
    quotas' usage and its loans are counted in it). Needs no PII key: onboarding calls it without one."""
    with units.begin() as conn:
        admitted = deployment.read(conn)
        repository = InstitutionRepository(conn)
        for inst in institutions:
            admitted.admit(inst.code)
            stored = repository.find(inst.code)
            if stored is not None:
                book = book_terms_currency(conn)
                was, now = stored.amounts_currency(book), inst.amounts_currency(book)
                if was != now:
                    raise ValidationError(
                        f"{inst.code}'s amounts are in {was}: an institution keeps its currency (add another "
                        f"institution to lend in {now})",
                        field="currency",
                    )
            repository.upsert(inst)


class Matching:
    def __init__(self, units: UnitsOfWork, vault: PiiVault, gateway: InstitutionGateway | None = None) -> None:
        self.units = units
        self.vault = vault
        self.gateway = gateway or AutoAccept()

    @contextmanager
    def _unit(self, readonly: bool = False, savepoint: bool = True) -> Iterator[MatchUnit]:
        with self.units.begin(readonly=readonly, savepoint=savepoint) as conn:
            yield MatchUnit(conn)

    def register_institutions(self, institutions: Sequence[Institution]) -> None:
        register_institutions(self.units, institutions)

    def terms_currency(self) -> str | None:
        """The book's currency (`terms_currency`), which an institution's amounts are in when it names none."""
        with self._unit(readonly=True) as unit:
            return book_terms_currency(unit.conn)

    def run_currency(self) -> str:
        """The currency a matching run's money is read in: the book's, as the batch is measured against the
        institutions' quotas. A batch is made of the book's products, so a book without one has no run to read."""
        currency = self.terms_currency()
        if currency is None:
            raise ValidationError(
                "the book has no product, so no currency for a matching run: create one", field="product"
            )
        return currency

    def currency_of(self, institution: Institution) -> str:
        """The currency an institution's quotas and box amounts are read in: its own, else the book's."""
        return institution.amounts_currency(None if institution.currency else self.terms_currency())

    def router(self, unit: MatchUnit, products: Sequence[LoanProduct] | None = None) -> Router:
        """The router over the active institutions, the products' fees and the latest shadow prices, as they are in
        the database now; built once per worker for each such state (the state is read every time, so a changed
        institution is routed under its new terms at once). `products`: as this unit already read them."""
        definitions = unit.institutions.active_definitions()
        products = unit.core.products.list() if products is None else products
        fees, currencies = product_fees(products), product_currencies(products)
        prices = json.dumps(unit.runs.latest_prices(), sort_keys=True)
        return _router(definitions, tuple(sorted(fees.items())), tuple(sorted(currencies.items())), prices)

    # ---- real time ------------------------------------------------------------------------------
    def line_currency(self, line_id: str) -> str:
        """The currency of a credit line (its product's): the unit a drawdown's amount is typed in."""
        with self._unit(readonly=True) as unit:
            return unit.core.products.get(unit.lines.get(line_id).product_code).currency

    def drawdown(
        self,
        line_id: str,
        amount: int,
        tenor: int,
        idempotency_key: str,
        ranking: Ranking | str = Ranking.MARGIN,
        routed: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Route a drawdown to a funder and originate it; the same key returns the drawdown's outcome (or, while an
        institution that decides by hand holds the offer, the drawdown as `offered`). The key's stored response is
        the drawdown, claimed in the unit that opens it (`openice.idempotency`): a concurrent duplicate waits for
        that unit, then replays. `routed(result)` runs once the walk is done, and never for a replayed key: the
        API writes the drawdown's one audit row there."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValidationError(f"must be a positive whole number of minor units, got {amount!r}", field="amount")
        with self._unit() as unit:
            request = {"line_id": line_id, "amount": amount, "tenor": tenor}
            stored = unit.core.idempotency.claim(idempotency_key, "drawdown", request)
            if stored is not None:
                return self._replay(unit, unit.drawdowns.get(stored["drawdown_id"]))
            today = unit.core.calendar.require_open()
            line = unit.lines.get(line_id)
            products = unit.core.products.list()
            product = next((p for p in products if p.code == line.product_code), None)
            if product is None:
                raise unknown_product(line.product_code)
            product.check_tenor(tenor)
            if tenor > line.max_tenor:
                raise ValidationError(
                    f"the line allows at most {line.max_tenor} months",
                    field="tenor",
                    reason="drawdown.tenor_above_line",
                    values={"months": line.max_tenor},
                )
            if not unit.lines.reserve(line_id, amount, to_day(today)):
                raise Conflict(
                    f"line {line_id} is not active, has expired or has less than "
                    f"{format_money(amount, product.currency)} left",
                    field="amount",
                    reason="drawdown.above_line",
                    values={"amount": Amount(amount, product.currency)},
                )
            drawdown_id = unit.drawdowns.add(
                dict(
                    line_id=line_id,
                    borrower_id=line.borrower_id,
                    amount=amount,
                    tenor=tenor,
                    requested_day=to_day(today),
                )
            )
            unit.core.idempotency.answer(idempotency_key, {"drawdown_id": drawdown_id})
            walk = self._prepare(unit, line, drawdown_id, amount, tenor, today, Ranking(ranking), products=products)
        result = self._walk(walk, {}, [])
        if routed is not None:
            routed(result)
        return result

    def _prepare(
        self,
        unit: MatchUnit,
        line: Any,
        drawdown_id: int,
        amount: int,
        tenor: int,
        day: date,
        ranking: Ranking,
        offered: frozenset[str] = frozenset(),
        products: Sequence[LoanProduct] | None = None,
    ) -> _Walk:
        """Everything the walk needs, read in one unit: the report's context and the ranked institutions, less
        those that already had an offer for this drawdown."""
        context = self._context(unit, line, drawdown_id, amount, tenor)
        router = self.router(unit, products)
        batch = Drawdowns.one(
            amount=amount,
            tenor=tenor,
            score=line.score,
            pd=line.pd,
            age=context["age"],
            province=context["province"],
            income=context["income"],
            dti=context["dti"],
            product=line.product_code,
            rate=line.rate_ppm / PPM,
        )
        routing = router.rank(batch, ranking)
        institutions = {i.code: i for i in router.institutions}
        refusals = dict(routing.refusals)
        now = time.time()
        for code, circuit in unit.circuits.tripped(institutions).items():
            if not circuit.allows(now):
                refusals[code] = [f"unreachable: its circuit is {circuit.state.value}"]
        return _Walk(
            line,
            drawdown_id,
            amount,
            tenor,
            day,
            context,
            institutions,
            [c for c in routing.candidates if c.code not in offered and c.code not in refusals],
            refusals,
        )

    def _context(self, unit: MatchUnit, line: Any, drawdown_id: int, amount: int, tenor: int) -> dict[str, Any]:
        decision = dict(unit.decisions.get(line.decision_id)._mapping)
        for name in ("inputs", "result"):
            decision[name] = json.loads(decision[name])
        decision["decided_on"] = from_day(decision.pop("decided_day")).isoformat()
        borrower = unit.borrowers.get(line.borrower_id)
        app = decision["inputs"]["application"]
        income = app["income_monthly"]
        applicant = {
            "name": self.vault.decrypt("name", borrower.name_enc),
            "national_id": self.vault.decrypt("national_id", borrower.national_id_enc),
            "mobile": self.vault.decrypt("mobile", borrower.mobile_enc),
            "province": borrower.province,
            "city": borrower.city,
        }
        product = unit.core.products.get(line.product_code)
        rates = line_rates(product, line.rate_ppm)
        line_view = {
            "amount": line.amount,
            "rate_ppm": line.rate_ppm,
            "apr_ppm": line.apr_ppm,
            "effective_annual_rate_ppm": rates.effective_annual_rate_ppm,
            "apr_convention": rates.apr_convention,
            "expiry": from_day(line.expiry_day).isoformat(),
        }
        drawdown = {
            "id": drawdown_id,
            "amount": amount,
            "tenor": tenor,
            "product_code": line.product_code,
            "line_id": line.id,
        }
        return {
            "decision": decision,
            "applicant": applicant,
            "line": line_view,
            "drawdown": drawdown,
            "currency": product.currency,
            "age": decision["inputs"]["age"],
            "province": borrower.province,
            "income": income,
            "dti": debt_to_income(app["existing_debt_monthly"], amount, line.rate_ppm / PPM, tenor, income),
        }

    def _walk(self, walk: _Walk, reasons: dict[str, Any], offers: list[int]) -> dict[str, Any]:
        """Offer the drawdown down the ranking: an automatic institution answers at once; a manual one leaves the
        drawdown `offered` until its key answers (`answer`) or the offer expires (`expire_offers`).

        A manual institution's quota is taken when the offer goes out, since the offer holds it until answered. An
        automatic one's is taken last, after the loan is booked: every drawdown routed to an institution updates
        the same quota rows, and holding their lock through the origination made those drawdowns queue behind one
        another (under load, most of the database's lock waits). An institution whose quota is already full is
        skipped before the offer; one that filled meanwhile undoes the booking and the drawdown goes on down the
        ranking."""
        reasons = {**walk.refusals, **reasons}
        for cand in walk.candidates:
            inst = walk.institutions[cand.code]
            periods = quota_periods(inst, walk.day)
            report = build_report(
                applicant=walk.context["applicant"],
                decision=walk.context["decision"],
                line=walk.context["line"],
                drawdown=walk.context["drawdown"],
                institution={"code": inst.code, "name": inst.name, "business_model": inst.business_model},
            )
            if inst.acceptance != "automatic":
                expires = (datetime.now(UTC) + timedelta(seconds=inst.offer_ttl_seconds)).isoformat(
                    timespec="milliseconds"
                )
                try:
                    with self._unit() as unit:
                        if not unit.quotas.reserve(inst.code, walk.amount, periods):
                            raise _QuotaFull
                        offer_id = unit.offers.add(
                            walk.drawdown_id, inst.code, cand.rank, cand.expected_margin, report, expires
                        )
                        unit.drawdowns.offered(walk.drawdown_id, inst.code, reasons)
                        if inst.acceptance == "webhook":  # the relay POSTs it; queued with the offer, or neither
                            unit.deliveries.enqueue(
                                inst.code,
                                "offer",
                                f"drawdown/{walk.drawdown_id}",
                                f"offer-{offer_id}",
                                {
                                    "event": "offer",
                                    "offer_id": offer_id,
                                    "expires_at": expires,
                                    "report": served(report, walk.context["currency"]),
                                },
                                time.time(),
                            )
                except _QuotaFull:
                    reasons[inst.code] = ["quota full"]
                    continue
                offers.append(offer_id)
                return {
                    "drawdown_id": walk.drawdown_id,
                    "status": "offered",
                    "institution": inst.code,
                    "loan_id": None,
                    "offers": offers,
                    "reasons": reasons,
                }
            with self._unit(savepoint=False) as unit:  # nothing below goes on after an error here
                if not unit.quotas.fits(inst.code, walk.amount, periods):
                    reasons[inst.code] = ["quota full"]
                    continue
                offer_id = unit.offers.add(walk.drawdown_id, inst.code, cand.rank, cand.expected_margin, report, None)
            offers.append(offer_id)
            accepted, why = self.gateway.decide(inst.code, report)
            if not accepted:
                with self._unit(savepoint=False) as unit:
                    unit.offers.set_status(offer_id, "declined", why)
                reasons[inst.code] = [f"declined: {why}"]
                continue
            try:
                return self._fund(walk, inst, offer_id, why, reasons, offers, reserve=periods)
            except _QuotaFull:
                with self._unit(savepoint=False) as unit:
                    unit.offers.set_status(offer_id, "failed", "quota full")
                reasons[inst.code] = ["quota full"]
        with self._unit() as unit:
            unit.lines.release(walk.line.id, walk.amount)
            unit.drawdowns.finish(walk.drawdown_id, "no_funder", reasons)
        return {
            "drawdown_id": walk.drawdown_id,
            "status": "no_funder",
            "institution": None,
            "loan_id": None,
            "offers": offers,
            "reasons": reasons,
        }

    def _fund(
        self,
        walk: _Request,
        inst: Institution,
        offer_id: int,
        why: str,
        reasons: dict[str, Any],
        offers: list[int],
        reserve: list[tuple[str, int, int]] | None = None,
    ) -> dict[str, Any]:
        """The offer was accepted: originate the loan under the institution, taking its quota for `reserve` last
        (`_QuotaFull` undoes the booking), or fail the drawdown whole."""
        try:
            with self._unit() as unit:
                loan = self._originate(unit, walk.line, inst, walk.drawdown_id, walk.amount, walk.tenor)
                if reserve and not unit.quotas.reserve(inst.code, walk.amount, reserve):
                    raise _QuotaFull
                unit.offers.set_status(offer_id, "accepted", why)
                unit.drawdowns.finish(walk.drawdown_id, "funded", reasons, inst.code, loan["loan_id"])
        except OpeniceError as exc:
            with self._unit() as unit:
                if not reserve:  # the offer held its quota while it waited for the answer
                    unit.quotas.release(inst.code, walk.amount, quota_periods(inst, walk.day))
                unit.offers.set_status(offer_id, "failed", str(exc))
                unit.lines.release(walk.line.id, walk.amount)
                unit.drawdowns.finish(walk.drawdown_id, "failed", {**reasons, inst.code: [str(exc)]})
            raise
        return {
            "drawdown_id": walk.drawdown_id,
            "status": "funded",
            "institution": inst.code,
            "loan_id": loan["loan_id"],
            "offers": offers,
            "reasons": reasons,
        }

    def answer(self, caller: Principal, offer_id: int, accept: bool, reason: str = "") -> dict[str, Any]:
        """An institution that decides by hand answers an offer made to it (another's offer is missing to `caller`):
        accepting originates the loan, declining (or letting it expire) passes the drawdown to the next institution
        in the ranking. Answering again the same way returns the drawdown as it is; the other way, or too late, is a
        conflict. The offers found past their deadline on the way are closed first and listed under "expired"."""
        expired = self.expire_offers()
        return {**self._answer(caller, offer_id, accept, reason), "expired": expired}

    def _answer(self, caller: Principal, offer_id: int, accept: bool, reason: str) -> dict[str, Any]:
        wanted = "accepted" if accept else "declined"
        with self._unit() as unit:
            offer = unit.offers.get(offer_id, caller)
            row = unit.drawdowns.get(offer.drawdown_id)
            if offer.status == wanted:
                return self._replay(unit, row)
            if offer.status != "sent":
                raise Conflict(
                    f"offer {offer_id} is already {offer.status}",
                    field="offer_id",
                    reason=f"offer.already_{offer.status}",
                )
            if not accept:
                unit.offers.close(offer_id, "declined", reason or "declined")
        if accept:
            return self._accept(offer, row, reason or "accepted")
        return self._reroute(offer, row, f"declined: {reason or 'declined'}")

    def _accept(self, offer: Any, row: Any, why: str) -> dict[str, Any]:
        """Fund the drawdown under the institution that accepted: no ranking to rebuild (the walk stopped at this
        offer), only the line and the institution's terms (still those of the offer if it was deactivated since)."""
        with self._unit() as unit:
            request = _Request(unit.lines.get(row.line_id), row.id, row.amount, row.tenor, from_day(row.requested_day))
            inst = unit.institutions.get(offer.institution_code)
            if not unit.offers.close(offer.id, "accepted", why):
                raise Conflict(
                    f"offer {offer.id} was answered meanwhile", field="offer_id", reason="offer.answered_meanwhile"
                )
            offers = [o.id for o in unit.offers.for_drawdown(row.id)]
        return self._fund(request, inst, offer.id, why, json.loads(row.reasons or "{}"), offers)

    def _reroute(self, offer: Any, row: Any, why: str) -> dict[str, Any]:
        """The offer's quota goes back and the drawdown goes to the next institution that has not had it."""
        with self._unit() as unit:
            inst = unit.institutions.get(offer.institution_code)
            unit.quotas.release(inst.code, row.amount, quota_periods(inst, from_day(row.requested_day)))
            walk = self._resume(unit, row)
        reasons = {**json.loads(row.reasons or "{}"), offer.institution_code: [why]}
        return self._walk(walk, reasons, self._offer_ids(row.id))

    def _resume(self, unit: MatchUnit, row: Any) -> _Walk:
        line = unit.lines.get(row.line_id)
        offered = frozenset(o.institution_code for o in unit.offers.for_drawdown(row.id))
        return self._prepare(
            unit, line, row.id, row.amount, row.tenor, from_day(row.requested_day), Ranking.MARGIN, offered
        )

    def _offer_ids(self, drawdown_id: int) -> list[int]:
        with self._unit(readonly=True) as unit:
            return [o.id for o in unit.offers.for_drawdown(drawdown_id)]

    def expire_offers(self) -> list[dict[str, Any]]:
        """Offers a manual institution left unanswered past their deadline: each one's drawdown moves on. Returns
        what `expire` returns for each offer this call closed, for the caller's audit trail."""
        return [done for offer in self.expired_offers() if (done := self.expire(offer)) is not None]

    def expired_offers(self) -> list[Any]:
        with self._unit(readonly=True) as unit:
            return unit.offers.expired(now_iso())

    def expire(self, offer: Any) -> dict[str, Any] | None:
        """Close one offer past its deadline and pass its drawdown on: the offer, its institution and where the
        drawdown went next; None if it was answered or expired by someone else meanwhile."""
        return self._move_on(offer, "expired", "no answer before the offer expired", "offer expired unanswered")

    def withdraw(self, offer: Any, why: str) -> dict[str, Any] | None:
        """Take back an offer the institution cannot be reached with (its circuit is open, or the delivery ran out
        of attempts) and pass its drawdown on, as `expire` does; None if it was answered meanwhile."""
        return self._move_on(offer, "failed", why, why)

    def _move_on(self, offer: Any, status: str, reason: str, why: str) -> dict[str, Any] | None:
        with self._unit() as unit:
            if not unit.offers.close(offer.id, status, reason):
                return None
            row = unit.drawdowns.get(offer.drawdown_id)
        moved = self._reroute(offer, row, why)
        return {
            "offer_id": offer.id,
            "institution": offer.institution_code,
            "drawdown_id": offer.drawdown_id,
            "drawdown_status": moved["status"],
            "loan_id": moved.get("loan_id"),
        }

    @staticmethod
    def _originate(
        unit: MatchUnit, line: Any, inst: Institution, drawdown_id: int, amount: int, tenor: int
    ) -> dict[str, Any]:
        """Book the loan in servicing, in a savepoint of `unit`: a quota found full afterwards undoes it. On SQLite
        servicing numbers loans max(id) + 1, which a concurrent origination elsewhere could take first; the loser
        rolls back its savepoint and retries (the same idempotency key makes that safe)."""
        servicing = Servicing(JoinedUnits(unit.conn))
        for attempt in range(ORIGINATION_ATTEMPTS):
            try:
                return servicing.originate(
                    product_code=line.product_code,
                    principal=amount,
                    tenor=tenor,
                    funder=inst.code,
                    business_model=inst.business_model,
                    idempotency_key=scoped(MATCHING_SCOPE, f"drawdown-{drawdown_id}"),
                    borrower_id=line.borrower_id,
                    rate=Decimal(line.rate_ppm) / PPM,
                    guarantee_payout_dpd=inst.guarantee_payout_dpd,
                    channel=ICE_CHANNEL,
                    funder_rate=inst.rate,
                )
            except IntegrityError:
                if attempt == ORIGINATION_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # jitter, so the colliders spread out
        raise AssertionError("unreachable")

    @staticmethod
    def _replay(unit: MatchUnit, row: Any) -> dict[str, Any]:
        """The drawdown as it is now, for a replayed key or a repeated answer."""
        if row.status == "routing":
            raise Conflict("this drawdown is still being routed; retry shortly", field="idempotency_key")
        # "offered": an institution that decides by hand has it; the answer or the expiry moves it on
        offers = [o.id for o in unit.offers.for_drawdown(row.id)]
        return {
            "drawdown_id": row.id,
            "status": row.status,
            "institution": row.institution_code,
            "loan_id": row.loan_id,
            "offers": offers,
            "reasons": json.loads(row.reasons or "{}"),
        }

    def quota_usage(self, code: str) -> dict[str, Any]:
        """How much of its daily and monthly quota an institution has taken on the current business date."""
        with self._unit(readonly=True) as unit:
            inst = unit.institutions.get(code)
            today = unit.core.calendar.business_date
            usage = [
                (period, day, quota, unit.quotas.used(code, period, day))
                for period, day, quota in quota_periods(inst, today)
            ]
        return {
            "institution": code,
            "business_date": today,
            "periods": [
                {
                    "period": "day" if period == "D" else "month",
                    "starts_on": from_day(day),
                    "quota": quota,
                    "used": used,
                    "left": max(quota - used, 0),
                }
                for period, day, quota, used in usage
            ],
        }

    def report(
        self, offer_id: int, fmt: str = "json", words: Mapping[str, str] | None = None
    ) -> dict[str, Any] | str | bytes:
        """An offer's investigation report as served (`report.served`: major units with the currency, the model's
        reasons each as its code and its words, in English unless `words` says) in json (dict), html (str) or pdf
        (bytes)."""
        with self._unit(readonly=True) as unit:
            stored = json.loads(unit.offers.get(offer_id).report)
            currency = unit.core.products.get(stored["drawdown"]["product_code"]).currency
        report = served(stored, currency, words)
        renderers: dict[str, Callable[[dict[str, Any]], dict[str, Any] | str | bytes]] = {
            "json": lambda r: r,
            "html": render_html,
            "pdf": render_pdf,
        }
        if fmt not in renderers:
            raise ValidationError(f"must be one of {sorted(renderers)}", field="format")
        return renderers[fmt](report)

    # ---- batch ------------------------------------------------------------------------------------
    def optimise_batch(self, frame: pd.DataFrame, penalty: float = 0.02, sample: int = 10_000) -> dict[str, Any]:
        """Assign a batch of approved drawdowns with HiGHS, compare with the greedy waterfall, keep the prices. Its
        money (`RUN_MONEY`: sums of expected margins, fractions of a minor unit) is rounded half-up to whole minor
        units of the book's currency, once, for the stored run and the answer alike."""
        with self._unit(readonly=True) as unit:
            institutions = unit.institutions.active()
            products = unit.core.products.list()
            today = unit.core.calendar.business_date
            used = [unit.quotas.used(i.code, "D", to_day(today)) for i in institutions]
        result = solve_batch(
            Drawdowns.from_frame(frame),
            institutions,
            product_fees(products),
            product_currencies(products),
            Capacity.of(institutions, used),
            penalty,
            sample,
        )
        for name in RUN_MONEY:
            if result[name] is not None:
                result[name] = round_half_up(Decimal(repr(float(result[name]))))
        result["gain"] = result["objective"] - result["greedy_objective"]  # of the rounded figures: they add up
        with self._unit() as unit:
            result["run_id"] = unit.runs.add(
                to_day(today), len(frame), result["objective"], result["greedy_objective"], result["prices"]
            )
        return result


# What a matching run holds in money: expected margins less the risk penalty, the LP's bound on them, and the minimum
# volumes missed, in minor units of the book's currency.
RUN_MONEY = (
    "objective",
    "margin",
    "lp_bound",
    "greedy_objective",
    "greedy_margin",
    "gain",
    "shortfall",
    "greedy_shortfall",
)


def solve_batch(
    d: Drawdowns,
    institutions: Sequence[Institution],
    fees: dict[str, tuple[float, float]],
    currencies: dict[str, str],
    cap: Capacity,
    penalty: float,
    sample: int,
) -> dict[str, Any]:
    """Greedy waterfall and HiGHS assignment of one batch, side by side (`currencies`: each product's)."""
    eligible = Boxes(institutions, currencies).accept(d)
    value = margins(d, institutions, fees)
    amount, pd_ = d.amount.astype(float), d.pd.astype(float)
    base = greedy(value, eligible, amount, pd_, cap, penalty)
    best = optimise(value, eligible, amount, pd_, cap, [i.code for i in institutions], penalty, sample)
    codes = np.array([i.code for i in institutions] + [""], dtype=object)
    return {
        "objective": best.objective,
        "margin": best.margin,
        "lp_bound": best.lp_bound,
        "greedy_objective": base.objective,
        "greedy_margin": base.margin,
        "gain": best.objective - base.objective,
        "funded": int((best.institution >= 0).sum()),
        "greedy_funded": int((base.institution >= 0).sum()),
        "seconds": best.seconds,
        "greedy_seconds": base.seconds,
        "prices": best.prices,
        "assignment": codes[best.institution],
        "shortfall": float(best.shortfall.sum()),
        "greedy_shortfall": float(base.shortfall.sum()),
    }
