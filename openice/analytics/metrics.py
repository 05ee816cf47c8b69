"""Portfolio and disclosure metrics for a period and an as-of date, on any backend.

`compute` runs the definitions of `openice.analytics.definitions` on a backend and forms every
ratio from the exact integer numerator and denominator it returns. A metric is a list of rows;
each row names its group (the requested split, plus the metric's own keys such as a revenue
line or a month on book), and carries its value and, for ratios, numerator and denominator.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from openice.analytics import definitions
from openice.analytics.backends import PD_SCHEMA, Backend
from openice.errors import ValidationError
from openice.money import from_minor
from openice.servicing.sources import ICE_CHANNEL, RISK_FREE_MODELS, FundingSource, PlatformModel, deal_cost_ppm
from openice.storage.days import from_day, to_day

Row = dict[str, Any]


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValidationError(f"period ends {self.end} before it starts {self.start}", field="period")

    @classmethod
    def quarter(cls, text: str) -> Period:
        """'2026Q3' -> 2026-07-01 .. 2026-09-30."""
        match = re.fullmatch(r"(\d{4})\s*-?\s*[Qq]([1-4])", text.strip())
        if not match:
            raise ValidationError(f"{text!r} is not a quarter like 2026Q3", field="quarter")
        year, q = int(match[1]), int(match[2])
        start = date(year, 3 * q - 2, 1)
        end = date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1) - timedelta(days=1)
        return cls(start, end)

    @property
    def label(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


@dataclass
class Metric:
    name: str
    unit: str  # ratio | money | count | months | ppm
    rows: list[Row] = field(default_factory=list)
    note: str | None = None
    # What a ratio's numerator and denominator count: "money" (sums of minor units, a weighted average's numerator
    # weighted by months or ppm) or "count" (loans).
    parts: str = "money"

    def total(self) -> Any:
        """The value of the single ungrouped row (the headline), or None."""
        return self.rows[0]["value"] if len(self.rows) == 1 and not self.rows[0]["group"] else None


@dataclass
class MetricSet:
    period: Period
    as_of: date
    by: tuple[str, ...]
    engine: str
    metrics: dict[str, Metric] = field(default_factory=dict)
    collection_window: definitions.CollectionWindow = definitions.CollectionWindow.CALENDAR_MONTH
    last_closed_day: date | None = None  # the book's, when known (not for a Parquet snapshot)
    currencies: tuple[str, ...] = ()  # of the loans' products; empty when the source has no products table

    @property
    def partial(self) -> bool:
        """The figures stop before the period's end (a quarter not yet closed, or an earlier as-of date)."""
        return self.as_of < self.period.end

    @property
    def closed_range(self) -> Period | None:
        """The closed part of a period that runs past the book's last closed day (None if it is all closed)."""
        if self.last_closed_day is None or self.period.end <= self.last_closed_day:
            return None
        return Period(self.period.start, self.last_closed_day)

    def add(self, metric: Metric) -> None:
        self.metrics[metric.name] = metric

    def __getitem__(self, name: str) -> Metric:
        return self.metrics[name]

    def to_dict(self) -> dict[str, Any]:
        closed = self.closed_range
        return {
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()},
            "as_of": self.as_of.isoformat(),
            "by": list(self.by),
            "engine": self.engine,
            "collection_window": self.collection_window.value,
            "last_closed_day": self.last_closed_day.isoformat() if self.last_closed_day else None,
            "partly_closed": closed is not None,
            "partial": self.partial,
            "currencies": list(self.currencies),
            "closed_range": {"start": closed.start.isoformat(), "end": closed.end.isoformat()} if closed else None,
            "metrics": {k: asdict(m) for k, m in self.metrics.items()},
        }

    @property
    def currency(self) -> str | None:
        """The one currency of the set's money; None if the source does not record it (or records several)."""
        return self.currencies[0] if len(self.currencies) == 1 else None

    @property
    def total_revenue(self) -> int:
        """The platform's revenue: every revenue line but the ledger's income that is not its own (the institutions'
        interest and recoveries, `definitions.NOT_REVENUE`)."""
        return sum(r["value"] for r in self["revenue"].rows if r["group"]["line"] not in definitions.NOT_REVENUE)

    def to_major_units(self) -> dict[str, Any]:
        """`to_dict` as a person or a script reads money: every money value, and a ratio's numerator and denominator
        when they are money, a decimal string in major units of the set's currency, as the API writes money.
        `money_unit` says which: the currency, or "minor" when the source records no single currency (a snapshot
        without its products), whose minor units are then left as they are rather than guessed. A row by currency (ABS
        issued) is written in its own currency."""
        data = self.to_dict()
        data["money_unit"] = self.currency or "minor"
        for name, metric in data["metrics"].items():
            unit, parts = self.metrics[name].unit, self.metrics[name].parts
            for row in metric["rows"]:
                currency = row["group"].get("currency", self.currency)  # a row by currency is in its own
                if currency is None:
                    continue
                if unit == "money" and row["value"] is not None:
                    row["value"] = str(from_minor(row["value"], currency))
                if parts == "money" and "numerator" in row:
                    row["numerator"] = str(from_minor(row["numerator"], currency))
                    row["denominator"] = str(from_minor(row["denominator"], currency))
                if "uncovered_balance" in row:
                    row["uncovered_balance"] = str(from_minor(row["uncovered_balance"], currency))
        return data


def month_label(key: int) -> str:
    return f"{key // 12:04d}-{key % 12 + 1:02d}"


def _ratio(num: int | None, den: int | None) -> float | None:
    return None if not den else (num or 0) / den


def _group(row: Row, by: Sequence[str], **extra: Any) -> dict[str, Any]:
    group = {k: (month_label(row[k]) if k == "origination_month" else row[k]) for k in by}
    group.update(extra)
    return group


def _sorted(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: tuple(str(v) for v in r["group"].values()))


def _ratio_metric(
    name: str,
    rows: list[Row],
    by: Sequence[str],
    num: str,
    den: str,
    unit: str = "ratio",
    scale: int = 1,
    note: str | None = None,
    parts: str = "money",
) -> Metric:
    out = [
        {
            "group": _group(r, by),
            "value": _ratio(r[num], (r[den] or 0) * scale),
            "numerator": r[num] or 0,
            "denominator": r[den] or 0,
        }
        for r in rows
    ]
    return Metric(name, unit, _sorted(out), note, parts)


def _value_metric(
    name: str, rows: list[Row], by: Sequence[str], col: str, unit: str, note: str | None = None
) -> Metric:
    return Metric(name, unit, _sorted([{"group": _group(r, by), "value": r[col] or 0} for r in rows]), note)


def pd_table(frame: Any) -> pa.Table:
    """Model-monitoring input: a frame (or mapping of columns) with loan_id, pd (0..1) and grade."""
    columns = {k: list(frame[k]) for k in ("loan_id", "pd", "grade")}
    for value in columns["pd"]:
        if not 0 <= float(value) <= 1:
            raise ValidationError(f"a PD must be between 0 and 1, got {value}", field="pd")
    return pa.table(
        {
            "loan_id": [int(v) for v in columns["loan_id"]],
            "pd_ppm": [round(float(v) * 1_000_000) for v in columns["pd"]],
            "grade": [str(v) for v in columns["grade"]],
        },
        schema=PD_SCHEMA,
    )


# The steps of `compute`, in order: the per-loan fact tables, then the metrics that read them.
FACT_STEPS = ("loan_dues_single_day", "loan_dues", "loan_paid", "lf")
METRIC_STEPS = (
    "dues",
    "originations",
    "balances",
    "users",
    "funding",
    "funding_mix",
    "abs_issued",
    "revenue",
    "losses",
    "vintages",
    "month_ends",
    "model_monitoring",
)
STEPS = FACT_STEPS + METRIC_STEPS


def compute(
    backend: Backend,
    period: Period,
    as_of: date | None = None,
    by: Sequence[str] = (),
    thresholds: definitions.Thresholds | None = None,
    pd_frame: Any = None,
    on_step: Callable[[str], None] | None = None,
    collection_window: definitions.CollectionWindow | str = definitions.CollectionWindow.CALENDAR_MONTH,
    last_closed_day: date | None = None,
) -> MetricSet:
    """Every metric for `period`, observed as of `as_of` (default: the period's end, or the book's last closed day
    if that is earlier), split by `by`; the 30-day collection rate counts repayments in `collection_window`.

    `on_step(name)` is called as each of `STEPS` finishes: a progress bar, or a profile of where the time goes.
    `last_closed_day` (the business date minus one) refuses a period or as-of date after it (`closed_as_of`)."""
    (result,) = compute_splits(
        backend, period, as_of, [by], thresholds, pd_frame, on_step, collection_window, last_closed_day
    )
    return result


def closed_as_of(
    period: Period, as_of: date | None, last_closed_day: date | None, period_field: str = "period"
) -> date:
    """The as-of date to compute at. Nothing is booked after the book's last closed day, so a figure after it would
    count every installment falling due then as unpaid: a period starting after it, or an as-of date after it, is
    refused naming the day; a period running past it is computed up to it (`MetricSet.closed_range`)."""
    if last_closed_day is not None:
        if period.start > last_closed_day:
            raise ValidationError(
                f"{period.label} starts after the book's last closed business day {last_closed_day}", field=period_field
            )
        if as_of is not None and as_of > last_closed_day:
            raise ValidationError(
                f"{as_of} is after the book's last closed business day {last_closed_day}", field="as_of"
            )
    as_of = as_of or min(period.end, last_closed_day or period.end)
    if as_of < period.start:
        raise ValidationError(f"as-of date {as_of} is before the period starts {period.start}", field="as_of")
    return as_of


def compute_splits(
    backend: Backend,
    period: Period,
    as_of: date | None = None,
    splits: Sequence[Sequence[str]] = ((),),
    thresholds: definitions.Thresholds | None = None,
    pd_frame: Any = None,
    on_step: Callable[[str], None] | None = None,
    collection_window: definitions.CollectionWindow | str = definitions.CollectionWindow.CALENDAR_MONTH,
    last_closed_day: date | None = None,
) -> list[MetricSet]:
    """`compute` for each split of `splits` (one `MetricSet` each, in order) from one build of the fact tables:
    the facts do not depend on the split and are most of the work, and every split then reads the same facts.

    `on_step` is called for each of `FACT_STEPS` once, then for each of `METRIC_STEPS` once per split."""
    th = thresholds or definitions.Thresholds()
    window = definitions.CollectionWindow.parse(collection_window)
    as_of = closed_as_of(period, as_of, last_closed_day)
    splits = [tuple(by) for by in splits]
    if not splits:
        raise ValidationError("give at least one split (() for the totals)", field="splits")
    for by in splits:
        definitions.group_cols(by)  # validates the split names
    a, s, e = to_day(as_of), to_day(period.start), min(to_day(period.end), to_day(as_of))
    check_loan_keys(backend)
    ranges = backend.loan_ranges()
    if pd_frame is not None:
        backend.register("loan_pd", pd_table(pd_frame))
    elif not backend.has_table("loan_pd") and backend.has_table("drawdowns") and backend.has_table("credit_lines"):
        backend.materialise("loan_pd", definitions.stored_pds())
    currencies = (
        tuple(r["currency"] for r in backend.query(definitions.currencies())) if backend.has_table("products") else ()
    )
    deals = register_deals(backend)
    done = on_step or (lambda name: None)
    facts: dict[str, Callable[[], None]] = {
        "loan_dues_single_day": lambda: backend.materialise(
            "loan_dues_single_day", *(definitions.loan_dues_single_day(a, s, e, th, window, loans) for loans in ranges)
        ),
        "loan_dues": lambda: backend.materialise("loan_dues", definitions.loan_dues(a, s, e, th, window)),
        "loan_paid": lambda: backend.materialise("loan_paid", *(definitions.loan_paid(a, loans) for loans in ranges)),
        "lf": lambda: backend.materialise("lf", definitions.loan_facts(a, th)),
    }
    for name, build in facts.items():
        build()
        done(name)
    results = [
        MetricSet(
            period,
            as_of,
            tuple(by),
            backend.dialect,
            collection_window=window,
            last_closed_day=last_closed_day,
            currencies=currencies,
        )
        for by in splits
    ]
    for result in results:
        for name, step in _metric_steps(backend, result, th, a, s, e, deals).items():
            step()
            done(name)
    return results


def _metric_steps(
    backend: Backend, out: MetricSet, th: definitions.Thresholds, a: int, s: int, e: int, deals: list[Row] | None
) -> dict[str, Callable[[], None]]:
    """Each of `METRIC_STEPS` for one split, reading the fact tables (as-of day `a`, period days `s`..`e`) and the
    deals issued (None: the source has no funding stage's tables)."""
    return {
        "dues": lambda: _dues(backend, out, th),
        "originations": lambda: _originations(backend, out, s, e),
        "balances": lambda: _balances(backend, out, a, th),
        "users": lambda: _users(backend, out, a),
        "funding": lambda: _funding(backend, out),
        "funding_mix": lambda: _funding_mix(backend, out, a, th, deals is not None),
        "abs_issued": lambda: _abs_issued(out, deals, s, e),
        "revenue": lambda: _revenue(backend, out, s, e, deals is not None),
        "losses": lambda: _losses(backend, out, s, e, a, th),
        "vintages": lambda: _vintages(backend, out, a),
        "month_ends": lambda: _month_ends(backend, out, s, a, th),
        "model_monitoring": lambda: _model_monitoring(backend, out),
    }


DEAL_TABLES = ("abs_deals", "abs_pool_loans", "abs_tranches")
DEAL_TERMS_SCHEMA = pa.schema(
    [
        ("deal_id", pa.int64()),
        ("funder", pa.string()),
        ("transfer_day", pa.int64()),
        ("cost_ppm", pa.int64()),
        ("derecognise", pa.int64()),
    ]
)


def register_deals(backend: Backend) -> list[Row] | None:
    """The deals issued (`definitions.deals`), with each one's terms registered as `definitions.DEAL_TERMS` for the
    funding mix and the revenue lines to join; None when the source has no funding stage's tables. A deal's notes are
    a few rows: its cost is formed here, exactly, rather than in each engine's decimal arithmetic."""
    if not all(backend.has_table(name) for name in DEAL_TABLES):
        return None
    deals = backend.query(definitions.deals())
    tranches: dict[int, list[tuple[int, str | None]]] = defaultdict(list)
    for t in backend.query(definitions.deal_tranches()):
        tranches[int(t["deal_id"])].append((int(t["balance"]), t["coupon"]))
    terms = {
        "deal_id": [int(d["id"]) for d in deals],
        "funder": [d["funder"] for d in deals],
        "transfer_day": [int(d["cut_off_day"]) for d in deals],
        "cost_ppm": [deal_cost_ppm(tranches[int(d["id"])]) for d in deals],
        "derecognise": [int(bool(d["derecognise"])) for d in deals],
    }
    backend.register(definitions.DEAL_TERMS, pa.table(terms, schema=DEAL_TERMS_SCHEMA))
    return deals


def check_loan_keys(backend: Backend) -> None:
    """Refuse a portfolio whose loan ids or disbursement days fall outside what the repeat-drawdown key holds,
    rather than report wrong repeat-borrower figures."""
    (row,) = backend.query(definitions.loan_key_bounds())
    if row["min_id"] is None:
        return
    if row["min_id"] < 0 or row["max_id"] >= 1 << definitions.DRAWDOWN_ID_BITS:
        raise ValidationError(
            f"loan ids must be in 0..2**{definitions.DRAWDOWN_ID_BITS}-1 for the repeat-drawdown key; this "
            f"portfolio has {row['min_id']}..{row['max_id']}",
            field="loans.id",
        )
    bound = 1 << definitions.DRAWDOWN_DAY_BITS
    if row["min_day"] <= -bound or row["max_day"] >= bound:
        raise ValidationError(
            f"disbursement day numbers must be within ±2**{definitions.DRAWDOWN_DAY_BITS} days of 1970-01-01;"
            f" this portfolio has {row['min_day']}..{row['max_day']}",
            field="loans.disbursed_day",
        )


def _dues(backend: Backend, out: MetricSet, th: definitions.Thresholds) -> None:
    rows = backend.query(definitions.dues(out.by))
    out.add(_ratio_metric("day1_delinquency_rate", rows, out.by, "overdue_day1", "principal_due"))
    out.add(
        _ratio_metric(
            "collection_rate_30d",
            rows,
            out.by,
            "collected_30d",
            "overdue_day1",
            note=f"collection window {out.collection_window.value}: principal overdue on its due date "
            f"and repaid {out.collection_window.description}, counted up to the as-of date",
        )
    )
    out.add(
        _ratio_metric(
            "fpd_rate",
            rows,
            out.by,
            "first_delinquent",
            "first_due",
            note=f"first installment unpaid {th.fpd_days} day(s) after its due date",
            parts="count",
        )
    )


def _originations(backend: Backend, out: MetricSet, s: int, e: int) -> None:
    rows = backend.query(definitions.originations(out.by, s, e))
    out.add(_value_metric("loans_originated", rows, out.by, "loans_originated", "count"))
    for col in ("volume", "facilitation_volume", "origination_volume", "technology_volume"):
        out.add(_value_metric(col, rows, out.by, col, "money"))
    out.add(_ratio_metric("wa_contractual_tenor_months", rows, out.by, "principal_tenor", "volume", "months"))
    out.add(_ratio_metric("repeat_borrower_contribution", rows, out.by, "repeat_volume", "volume"))


def _balances(backend: Backend, out: MetricSet, a: int, th: definitions.Thresholds) -> None:
    rows = backend.query(definitions.balances(out.by, a, th))
    beyond = f"more than {th.m4} DPD"
    out.add(
        _value_metric(
            "outstanding_balance",
            rows,
            out.by,
            "outstanding",
            "money",
            note=f"outstanding principal, on and off balance sheet, excluding loans {beyond} "
            "(shown apart as balance_over_180) and written-off ones",
        )
    )
    out.add(
        _value_metric(
            "loans_outstanding",
            rows,
            out.by,
            "loans_outstanding",
            "count",
            note=f"loans with principal outstanding, excluding those {beyond} (loans_over_180)",
        )
    )
    out.add(
        _ratio_metric(
            "delinquency_90_plus_rate",
            rows,
            out.by,
            "bucket_m4",
            "outstanding",
            note=f"outstanding principal {th.m3 + 1}-{th.m4} DPD / outstanding principal, loans {beyond} "
            "and written-off ones excluded from both, whatever a product's write-off DPD",
        )
    )
    notes = {
        "M4+": f"{th.m3 + 1}-{th.m4} DPD",
        definitions.OVER_M4: f"{th.m4 + 1}+ DPD, not written off; not in outstanding_balance",
    }
    for bucket in definitions.BUCKETS:
        name = "balance_over_180" if bucket == definitions.OVER_M4 else f"balance_{bucket}"
        out.add(_value_metric(name, rows, out.by, definitions.bucket_column(bucket), "money", note=notes.get(bucket)))
    out.add(
        _value_metric(
            "loans_over_180",
            rows,
            out.by,
            "loans_over_180",
            "count",
            note=f"loans {beyond} with principal outstanding, not written off",
        )
    )
    out.add(
        _value_metric(
            "cumulative_borrowers",
            rows,
            out.by,
            "borrowers_with_drawdown",
            "count",
            note="distinct borrowers with a drawdown; a borrower may appear in several splits",
        )
    )


def _users(backend: Backend, out: MetricSet, a: int) -> None:
    for name, table, sql in (
        ("cumulative_registered_users", "borrowers", definitions.registered_users(a)),
        ("cumulative_approved_users", "credit_lines", definitions.approved_users(a)),
    ):
        if not backend.has_table(table):
            out.add(
                Metric(
                    name,
                    "count",
                    [{"group": {}, "value": None}],
                    f"unavailable: the database has no {table} table (decisioning stage)",
                )
            )
            continue
        rows = backend.query(sql)
        out.add(Metric(name, "count", [{"group": {}, "value": rows[0]["users"]}], "not split: a user has no loan"))


def _funding(backend: Backend, out: MetricSet) -> None:
    name = "blended_funding_cost"
    if not backend.has_table("institutions"):
        out.add(
            Metric(
                name,
                "ratio",
                [{"group": {}, "value": None}],
                "unavailable: the database has no institutions table (decisioning stage)",
            )
        )
        return
    rows = backend.query(definitions.funding(out.by))
    metric = _ratio_metric(
        name,
        rows,
        out.by,
        "balance_cost_ppm",
        "covered_balance",
        scale=1_000_000,
        note="annual funding cost of the funding institutions weighted by principal outstanding "
        "(loans more than 180 DPD included: they are still funded); balances of funders "
        "without a cost on file are left out (uncovered_balance)",
    )
    for row, src in zip(metric.rows, _sorted([{"group": _group(r, out.by), **r} for r in rows]), strict=True):
        row["uncovered_balance"] = src["uncovered_balance"] or 0
    out.add(metric)


def _funding_mix(backend: Backend, out: MetricSet, a: int, th: definitions.Thresholds, deals: bool) -> None:
    """Where the book's money comes from at the as-of date: the outstanding balance by funding source, each source's
    blended funding cost, and the shares of the balance by platform model (capital-light, ICE, technology)."""
    costs = backend.has_table("institutions")
    rows = backend.query(definitions.funding_mix(out.by, a, th, costs, deals))
    # Every source and model gets a row in every group, zero when none of its loans is outstanding.
    groups = {tuple(_group(r, out.by).items()) for r in rows} or {()}
    sums: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        group = tuple(_group(r, out.by).items())
        for key in (("source", r["source"]), ("model", r["platform_model"]), ("all", "")):
            for col in ("outstanding", "covered_balance", "uncovered_balance", "balance_cost_ppm"):
                sums[(group, *key)][col] += r[col] or 0
    balance, cost, shares, risk_free = [], [], [], []
    for group in groups:
        dims, total = dict(group), sums[(group, "all", "")]["outstanding"]
        for src in FundingSource:
            part = sums[(group, "source", src.value)]
            balance.append({"group": {**dims, "source": src.value}, "value": part["outstanding"]})
            cost.append(
                {
                    "group": {**dims, "source": src.value},
                    "value": _ratio(part["balance_cost_ppm"], part["covered_balance"] * 1_000_000) if costs else None,
                    "numerator": part["balance_cost_ppm"],
                    "denominator": part["covered_balance"],
                    "uncovered_balance": part["uncovered_balance"],
                }
            )
        for model in PlatformModel:
            part_of = sums[(group, "model", model.value)]["outstanding"]
            shares.append(
                {
                    "group": {**dims, "platform_model": model.value},
                    "value": _ratio(part_of, total),
                    "numerator": part_of,
                    "denominator": total,
                }
            )
        free = sum(sums[(group, "model", m.value)]["outstanding"] for m in RISK_FREE_MODELS)
        risk_free.append({"group": dims, "value": _ratio(free, total), "numerator": free, "denominator": total})
    funder = "the funder of the as-of date (a loan whose guarantee the platform paid out is platform capital from then)"
    out.add(
        Metric(
            "funding_source_balance",
            "money",
            _sorted(balance),
            f"outstanding principal (as outstanding_balance) by {funder}: institution, trust (an institution of kind "
            "trust), platform capital or an asset-backed securities deal (funder ABS:<deal>)",
        )
    )
    out.add(
        Metric(
            "blended_funding_cost_by_source",
            "ratio",
            _sorted(cost),
            f"annual funding cost on file for {funder}, weighted by all principal outstanding: an institution's or "
            "trust's, or a "
            "deal's notes' coupons weighted by their balances at issue (the residual tranche, paid what is left, "
            "outside the weights); balances of funders without a cost on file (the platform) are left out "
            "(uncovered_balance)"
            if costs
            else "unavailable: the database has no institutions table (decisioning stage)",
        )
    )
    out.add(
        Metric(
            "platform_model_share",
            "ratio",
            _sorted(shares),
            f"share of outstanding principal; ice: capital-light loans the open platform matched (channel "
            f"{ICE_CHANNEL}); capital-heavy includes on balance sheet",
        )
    )
    out.add(
        Metric(
            "capital_light_ice_technology_share",
            "ratio",
            _sorted(risk_free),
            "share of outstanding principal under capital-light, ICE and technology solutions: the platform bears "
            "no credit risk on it",
        )
    )


def _abs_issued(out: MetricSet, deals: list[Row] | None, s: int, e: int) -> None:
    """The pool balances of the deals issued in the period, by currency: every currency of the book or of a deal has
    a row, zero when none was issued in it. Not split: a deal has no split dimension."""
    name = "abs_issued"
    if deals is None:
        out.add(
            Metric(
                name,
                "money",
                [{"group": {}, "value": None}],
                "unavailable: the source has no deals table (funding stage)",
            )
        )
        return
    issued: dict[str, int] = dict.fromkeys(sorted({*out.currencies, *(d["currency"] for d in deals)}), 0)
    for d in deals:
        if s <= d["cut_off_day"] <= e:
            issued[d["currency"]] += int(d["pool_balance"])
    rows = [{"group": {"currency": c}, "value": v} for c, v in issued.items()] or [{"group": {}, "value": 0}]
    out.add(
        Metric(
            name,
            "money",
            rows,
            "pool balance at the cut-off of the asset-backed securities deals issued in the period, by currency; "
            "not split: a deal has no split dimension",
        )
    )


def _revenue(backend: Backend, out: MetricSet, s: int, e: int, deals: bool) -> None:
    rows = backend.query(definitions.revenue(out.by, s, e, deals))
    lines: list[dict[str, Any]] = [
        {"group": _group(r, out.by, line=r["line"]), "value": r["amount"] or 0} for r in rows
    ]
    zero_lines = {name for name, _ in definitions.REVENUE_LINES}
    for group in {tuple(_group(r, out.by).items()) for r in rows} or {()}:
        have = {r["group"]["line"] for r in lines if tuple((k, r["group"][k]) for k in out.by) == group}
        lines += [{"group": {**dict(group), "line": n}, "value": 0} for n in sorted(zero_lines - have)]
    out.add(
        Metric(
            "revenue",
            "money",
            _sorted(lines),
            "income recognised in the ledger in the period; institution_interest and both recoveries are "
            "not platform revenue lines but are listed so the lines add up to the ledger's income.",
        )
    )
    charge = backend.query(definitions.provision_charge(out.by, s, e))
    out.add(
        _value_metric(
            "provision_for_contingent_liabilities",
            charge,
            out.by,
            "charge",
            "money",
            note="provision_expense posted in the period: month-end true-ups of live guarantees "
            "(bucket rate x outstanding principal) net of releases when a loan closes",
        )
    )


def _losses(backend: Backend, out: MetricSet, s: int, e: int, a: int, th: definitions.Thresholds) -> None:
    """Charge-offs and recoveries of the period, and the provisions held against the 90 day+ loans the platform
    bears the risk of."""
    rows = backend.query(definitions.charge_offs(out.by, s, e))
    out.add(
        _value_metric(
            "charge_offs",
            rows,
            out.by,
            "charged_off",
            "money",
            note="principal written off in the period (the write-off entries), whoever bears the loss",
        )
    )
    out.add(
        _value_metric(
            "recoveries",
            rows,
            out.by,
            "recovered",
            "money",
            note="recovered in the period on written-off loans, the platform's and the institutions'",
        )
    )
    rows = backend.query(definitions.provision_coverage(out.by, a, th))
    out.add(
        _value_metric(
            "provisions_held",
            rows,
            out.by,
            "provisions_held",
            "money",
            note="provision for contingent liabilities and loan-loss allowance held at the as-of date",
        )
    )
    out.add(
        _ratio_metric(
            "provision_coverage",
            rows,
            out.by,
            "provisions_held",
            "at_risk_90_plus",
            note=f"provisions held / outstanding principal {th.m3 + 1}-{th.m4} DPD of the loans whose credit risk "
            "the platform bears (capital-heavy, on balance sheet included)",
        )
    )


def _vintages(backend: Backend, out: MetricSet, a: int) -> None:
    rows = backend.query(definitions.vintages(out.by))
    last_month = from_day(a).year * 12 + from_day(a).month - 1
    for n in (30, 90):
        principal: dict[tuple[Any, ...], int] = defaultdict(int)
        crossed: dict[tuple[Any, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for r in rows:
            key = tuple(r[k] for k in out.by) + (r["origination_month"],)
            principal[key] += r["principal"] or 0
            if r[f"mob{n}"] >= 0:
                crossed[key][r[f"mob{n}"]] += r[f"bal{n}"] or 0
        curve = []
        for key, total in principal.items():
            running = 0
            for mob in range(last_month - key[-1] + 1):
                running += crossed[key].get(mob, 0)
                group = {
                    **dict(zip(out.by, key[:-1], strict=True)),
                    "origination_month": month_label(key[-1]),
                    "mob": mob,
                }
                curve.append(
                    {"group": group, "value": _ratio(running, total), "numerator": running, "denominator": total}
                )
        out.add(
            Metric(
                f"vintage_{n}_plus",
                "ratio",
                sorted(
                    curve, key=lambda r: (tuple(str(v) for k, v in r["group"].items() if k != "mob"), r["group"]["mob"])
                ),
                f"balance on the day a loan first went {n}+ DPD, cumulated by month on book / original principal",
            )
        )


TRANSITIONS = (("C", "M1"), ("M1", "M2"), ("M2", "M3"), ("M3", "M4+"))


def _month_ends(backend: Backend, out: MetricSet, s: int, a: int, th: definitions.Thresholds) -> None:
    """Roll rates and the delinquency trend, from the month-end snapshots of the last 12 months."""
    rows = backend.query(definitions.month_end_buckets(out.by, s - 366, a, th))
    table: dict[tuple[Any, ...], dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for r in rows:
        table[tuple(r[k] for k in out.by)][r["as_of_day"]][r["bucket"]] += r["balance"] or 0
    rolls, trend30, trend90 = [], [], []
    for key, months in table.items():
        dims = _group(dict(zip(out.by, key, strict=True)), out.by)
        days = sorted(months)
        for day in days:
            total = sum(v for b, v in months[day].items() if b != definitions.OVER_M4)
            over30 = sum(v for b, v in months[day].items() if b not in ("C", "M1", definitions.OVER_M4))
            label = month_label(from_day(day).year * 12 + from_day(day).month - 1)
            trend30.append(
                {
                    "group": {**dims, "month": label},
                    "value": _ratio(over30, total),
                    "numerator": over30,
                    "denominator": total,
                }
            )
            trend90.append(
                {
                    "group": {**dims, "month": label},
                    "value": _ratio(months[day]["M4+"], total),
                    "numerator": months[day]["M4+"],
                    "denominator": total,
                }
            )
        for prev, day in zip(days, days[1:], strict=False):
            if (from_day(day).year * 12 + from_day(day).month) - (from_day(prev).year * 12 + from_day(prev).month) != 1:
                continue
            label = month_label(from_day(day).year * 12 + from_day(day).month - 1)
            for src, dst in TRANSITIONS:
                num, den = months[day].get(dst, 0), months[prev].get(src, 0)
                rolls.append(
                    {
                        "group": {**dims, "month": label, "transition": f"{src}->{dst}"},
                        "value": _ratio(num, den),
                        "numerator": num,
                        "denominator": den,
                    }
                )
    note = "from month-end portfolio snapshots"
    trend = f"{note}; loans more than {th.m4} DPD are left out of numerator and denominator, as in the 90 day+ rate"
    out.add(
        Metric(
            "roll_rates",
            "ratio",
            _sorted(rolls),
            note + ": this month's bucket balance / last month's previous-bucket balance",
        )
    )
    out.add(Metric("delinquency_trend_30_plus", "ratio", _sorted(trend30), trend))
    out.add(Metric("delinquency_trend_90_plus", "ratio", _sorted(trend90), trend))


def _model_monitoring(backend: Backend, out: MetricSet) -> None:
    name = "model_monitoring"
    if not backend.has_table("loan_pd"):
        out.add(
            Metric(
                name,
                "ratio",
                [],
                "no predicted PDs: the source has no decisions behind its loans (drawdowns, credit lines) and no "
                "loan_pd table, and none were given",
            )
        )
        return
    rows = backend.query(definitions.model_monitoring(out.by))
    out.add(
        Metric(
            name,
            "ratio",
            _sorted(
                [
                    {
                        "group": _group(
                            r, out.by, origination_month=month_label(r["origination_month"]), grade=r["grade"]
                        ),
                        "value": _ratio(r["defaulted"], r["loans"]),
                        "numerator": r["defaulted"],
                        "denominator": r["loans"],
                        "predicted_pd": _ratio(r["pd_ppm_sum"], r["loans"] * 1_000_000),
                    }
                    for r in rows
                ]
            ),
            "realised default (90+ DPD or written off by the as-of date) against mean predicted PD"
            if rows
            else "no loan disbursed by the as-of date carries a predicted PD",
            parts="count",
        )
    )
