"""The same metrics in plain pandas: the benchmark's baseline, and a check on the SQL from outside it.

`PandasBackend` is a `Backend` on which `metrics.compute` runs unchanged: it is built for one
period, as-of date, split, thresholds and collection window, and answers each definition's SQL text (which it
only uses as the key) with a vectorised pandas twin of that definition — merges, masks and
group-bys over the same tables, returning rows with the same columns. Integer minor units stay
integers, so the results equal the SQL engines' to the cent (tests/analytics).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlglot.executor

from openice.analytics import definitions
from openice.analytics.backends import TABLES, parquet_tables
from openice.analytics.metrics import DEAL_TABLES
from openice.errors import ValidationError
from openice.servicing.loan import PLATFORM
from openice.servicing.sources import funding_source, platform_model
from openice.storage.days import to_day

Row = dict[str, Any]
PRINCIPAL = ("principal", "principal_prepaid")
DUE_COMPONENTS = ("principal", "principal_prepaid", "interest", "fee")


def month_key(day: pd.Series) -> pd.Series:
    """Year * 12 + month - 1 of a day number (as `definitions.month_key_sql`)."""
    dates = pd.to_datetime(day, unit="D")
    return (dates.dt.year * 12 + dates.dt.month - 1).astype("Int64")


def bucket(dpd: pd.Series, th: definitions.Thresholds) -> pd.Series:
    return pd.Series(
        np.select(
            [dpd <= 0, dpd <= th.m1, dpd <= th.m2, dpd <= th.m3, dpd <= th.m4],
            list(definitions.BUCKETS[:-1]),
            definitions.OVER_M4,
        ),
        index=dpd.index,
    )


def collection_end(due: pd.Series, window: definitions.CollectionWindow) -> pd.Series:
    """The last day of the collection window after each due day, by pandas' own calendar (a month's offset
    keeps the day of the month, or takes the next month's last day if it is shorter), not the SQL's arithmetic."""
    if window is definitions.CollectionWindow.DAYS_30:
        return due + 30
    dates = pd.to_datetime(due, unit="D") + pd.DateOffset(months=1)
    return pd.Series((dates - pd.Timestamp(0)).dt.days, index=due.index)


def records(frame: pd.DataFrame) -> list[Row]:
    """A frame's rows as SQL gives them: NULL as None, not NaN."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def grouped(frame: pd.DataFrame, keys: Sequence[str], **aggs: Any) -> list[Row]:
    """`SELECT keys, aggs GROUP BY keys` (one row of totals when there are no keys, as SQL gives)."""
    if not keys:
        frame = frame.assign(_all=0)
        keys = ["_all"]
    out = frame.groupby(list(dict.fromkeys(keys)), dropna=False, sort=False).agg(**aggs).reset_index()
    if len(out) == 0 and keys == ["_all"]:
        out = pd.DataFrame([{name: 0 for name in aggs}])
    return [
        {
            k: (None if v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v)
            for k, v in row.items()
            if k != "_all"
        }
        for row in out.to_dict("records")
    ]


def _paid_by(
    vd: pd.Series,
    due: pd.Series,
    amount: pd.Series,
    prin: pd.Series,
    as_of: int,
    th: definitions.Thresholds,
    window: definitions.CollectionWindow,
) -> dict[str, pd.Series]:
    """What was paid by each of the dues metrics' cut-off days, from payments on value day `vd`."""
    return {
        "prin_by_due": prin.where(vd <= due, 0),
        "prin_collected": prin.where((vd > due) & (vd <= collection_end(due, window)) & (vd <= as_of), 0),
        "paid_fpd": amount.where(vd <= due + th.fpd_days - 1, 0),
        "paid_30": amount.where(vd <= due + th.m1, 0),
        "paid_90": amount.where(vd <= due + th.m3, 0),
        "paid_asof": amount.where(vd <= as_of, 0),
    }


class PandasBackend:
    """pandas frames in memory, answering the definitions for one (period, as-of, split, thresholds, window)."""

    dialect = "pandas"

    def __init__(
        self,
        frames: dict[str, pd.DataFrame],
        period: Any,
        as_of: date | None = None,
        by: Sequence[str] = (),
        thresholds: definitions.Thresholds | None = None,
        collection_window: definitions.CollectionWindow | str = definitions.CollectionWindow.CALENDAR_MONTH,
    ) -> None:
        self.frames = frames
        th = thresholds or definitions.Thresholds()
        w = definitions.CollectionWindow.parse(collection_window)
        by = tuple(by)
        a = to_day(as_of or period.end)
        s, e = to_day(period.start), min(to_day(period.end), a)
        deals = all(name in frames for name in DEAL_TABLES)
        # The definitions `metrics.compute` asks for with these arguments, keyed by their SQL text.
        self._answers: dict[str, Callable[[], Any]] = {
            definitions.loan_key_bounds(): lambda: self._loan_key_bounds(),
            definitions.loan_dues_single_day(a, s, e, th, w): lambda: self._loan_dues_single_day(a, s, e, th, w),
            definitions.loan_dues(a, s, e, th, w): lambda: self._loan_dues(a, s, e, th, w),
            definitions.loan_paid(a): lambda: self._loan_paid(a),
            definitions.loan_facts(a, th): lambda: self._loan_facts(a, th),
            definitions.dues(by): lambda: self._dues(by),
            definitions.originations(by, s, e): lambda: self._originations(by, s, e),
            definitions.balances(by, a, th): lambda: self._balances(by, a, th),
            definitions.registered_users(a): lambda: [{"users": int((frames["borrowers"].registered_day <= a).sum())}],
            definitions.approved_users(a): lambda: self._approved_users(a),
            definitions.funding(by): lambda: self._funding(by),
            definitions.funding_mix(by, a, th, "institutions" in frames, deals): lambda: self._funding_mix(by, a, th),
            definitions.deals(): lambda: records(frames["abs_deals"].sort_values("id")),
            definitions.deal_tranches(): lambda: records(frames["abs_tranches"].sort_values(["deal_id", "balance"])),
            definitions.revenue(by, s, e, deals): lambda: self._revenue(by, s, e),
            definitions.provision_charge(by, s, e): lambda: self._ledger_sum(by, s, e),
            definitions.charge_offs(by, s, e): lambda: self._charge_offs(by, s, e),
            definitions.provision_coverage(by, a, th): lambda: self._provision_coverage(by, a, th),
            definitions.stored_pds(): lambda: self._stored_pds(),
            definitions.currencies(): lambda: self._currencies(),
            definitions.vintages(by): lambda: self._vintages(by),
            definitions.month_end_buckets(by, s - 366, a, th): lambda: self._month_end_buckets(by, s - 366, a, th),
            definitions.model_monitoring(by): lambda: self._model_monitoring(by),
        }

    @classmethod
    def from_arrow(cls, tables: dict[str, pa.Table], *args: Any, **kwargs: Any) -> PandasBackend:
        return cls({name: table.to_pandas() for name, table in tables.items()}, *args, **kwargs)

    @classmethod
    def from_parquet(cls, directory: Path, *args: Any, **kwargs: Any) -> PandasBackend:
        """Read only the columns analytics uses, as the SQL engines do."""
        frames = {
            name: pd.read_parquet(path, columns=list(TABLES.get(name, {})) or None)
            for name, path in parquet_tables(directory).items()
        }
        return cls(frames, *args, **kwargs)

    def _answer(self, sql: str) -> Any:
        if sql not in self._answers:
            raise ValidationError(
                "the pandas baseline answers only the definitions of the period, as-of date, split, "
                "thresholds and collection window it was built for",
                field="sql",
            )
        return self._answers[sql]()

    def has_table(self, name: str) -> bool:
        return name in self.frames

    def register(self, name: str, table: pa.Table) -> None:
        self.frames[name] = table.to_pandas()

    def materialise(self, name: str, sql: str, *more: str) -> None:
        self.frames[name] = self._answer(sql)

    def loan_ranges(self) -> list[tuple[int, int] | None]:
        return [None]

    def query(self, sql: str) -> list[Row]:
        return self._answer(sql)

    def close(self) -> None:
        self.frames.clear()

    # The fact tables.

    def _loan_key_bounds(self) -> list[Row]:
        loans = self.frames["loans"]
        if loans.empty:
            return [{"min_id": None, "max_id": None, "min_day": None, "max_day": None}]
        return [
            {
                "min_id": int(loans.id.min()),
                "max_id": int(loans.id.max()),
                "min_day": int(loans.disbursed_day.min()),
                "max_day": int(loans.disbursed_day.max()),
            }
        ]

    def _due_installments(self, as_of: int, only: pd.Index | None = None) -> pd.DataFrame:
        """Installments due by the as-of date, less those falling due after their loan's write-off."""
        loans = self.frames["loans"][["id", "status", "closed_day"]].rename(columns={"id": "loan_id"})
        inst = self.frames["installments"]
        inst = inst[inst.due_day <= as_of]
        if only is not None:
            inst = inst[inst.loan_id.isin(only)]
        inst = inst.merge(loans, on="loan_id")
        inst = inst[~(inst.status == "written_off") | (inst.closed_day >= inst.due_day)]
        return inst.assign(owed=inst.principal + inst.interest + inst.fee)[
            ["loan_id", "seq", "due_day", "principal", "owed"]
        ]

    def _due_allocations(self, only: pd.Index | None = None) -> pd.DataFrame:
        alloc = self.frames["allocations"]
        alloc = alloc[alloc.component.isin(DUE_COMPONENTS)]
        if only is not None:
            alloc = alloc[alloc.loan_id.isin(only)]
        amount = alloc.amount
        return pd.DataFrame(
            {
                "loan_id": alloc.loan_id,
                "seq": alloc.seq,
                "value_day": alloc.value_day,
                "amount": amount,
                "prin": amount.where(alloc.component.isin(PRINCIPAL), 0),
                "prepaid": amount.where(alloc.component == "principal_prepaid", 0),
            }
        )

    def _installment_facts(
        self, as_of: int, th: definitions.Thresholds, window: definitions.CollectionWindow, only: pd.Index
    ) -> pd.DataFrame:
        """As `definitions.installment_facts`: installments ⋈ allocations, summed per installment."""
        inst = self._due_installments(as_of, only)
        m = inst.merge(self._due_allocations(only), on=["loan_id", "seq"], how="left")
        amount, prin = m.amount.fillna(0).astype("int64"), m.prin.fillna(0).astype("int64")
        vd, due = m.value_day, m.due_day
        sums = (
            pd.DataFrame(
                {
                    "loan_id": m.loan_id,
                    "seq": m.seq,
                    **_paid_by(vd, due, amount, prin, as_of, th, window),
                    "prepaid": m.prepaid.fillna(0).astype("int64"),
                }
            )
            .groupby(["loan_id", "seq"], sort=False)
            .sum()
        )
        facts = inst.merge(sums, left_on=["loan_id", "seq"], right_index=True)
        return facts[facts.prepaid == 0].drop(columns="prepaid").assign(several_days=0)

    def _single_day_facts(
        self, as_of: int, th: definitions.Thresholds, window: definitions.CollectionWindow
    ) -> pd.DataFrame:
        """As `definitions.single_day_facts`: allocations summed per installment first, joined 1:1."""
        a = (
            self._due_allocations()
            .groupby(["loan_id", "seq"], sort=False)
            .agg(
                d0=("value_day", "min"),
                d1=("value_day", "max"),
                amount=("amount", "sum"),
                prin=("prin", "sum"),
                prepaid=("prepaid", "sum"),
            )
        )
        m = self._due_installments(as_of).merge(a, left_on=["loan_id", "seq"], right_index=True, how="left")
        m = m[m.prepaid.fillna(0) == 0]
        vd, due = m.d0, m.due_day
        amount, prin = m.amount.fillna(0).astype("int64"), m.prin.fillna(0).astype("int64")
        return pd.DataFrame(
            {
                "loan_id": m.loan_id,
                "seq": m.seq,
                "due_day": due,
                "principal": m.principal,
                "owed": m.owed,
                **_paid_by(vd, due, amount, prin, as_of, th, window),
                "several_days": (m.d0 < m.d1).astype("int64"),
            }
        )

    @staticmethod
    def _loan_dues_of(inf: pd.DataFrame, as_of: int, start: int, end: int, th: definitions.Thresholds) -> pd.DataFrame:
        inf = inf.reset_index(drop=True)
        unpaid = inf.owed - inf.paid_asof > 0
        crossed30 = (inf.due_day + th.m1 <= as_of) & (inf.owed - inf.paid_30 > 0)
        crossed90 = (inf.due_day + th.m3 <= as_of) & (inf.owed - inf.paid_90 > 0)
        period = (inf.due_day >= start) & (inf.due_day <= end)
        first = period & (inf.seq == 1) & (inf.due_day + th.fpd_days - 1 <= as_of)
        zero = pd.Series(0, index=inf.index, dtype="int64")
        return (
            pd.DataFrame(
                {
                    "loan_id": inf.loan_id,
                    "overdue_since": inf.due_day.where(unpaid),
                    "first30": (inf.due_day + th.m1).where(crossed30),
                    "first90": (inf.due_day + th.m3).where(crossed90),
                    "dues": period.astype("int64"),
                    "principal_due": inf.principal.where(period, zero),
                    "overdue_day1": (inf.principal - inf.prin_by_due).where(period, zero),
                    "collected_30d": inf.prin_collected.where(period & (inf.principal > inf.prin_by_due), zero),
                    "first_due": first.astype("int64"),
                    "first_delinquent": (first & (inf.owed - inf.paid_fpd > 0)).astype("int64"),
                    "several_days": inf.several_days,
                }
            )
            .groupby("loan_id")
            .agg(
                overdue_since=("overdue_since", "min"),
                first30=("first30", "min"),
                first90=("first90", "min"),
                **{
                    c: (c, "sum")
                    for c in (
                        "dues",
                        "principal_due",
                        "overdue_day1",
                        "collected_30d",
                        "first_due",
                        "first_delinquent",
                        "several_days",
                    )
                },
            )
        )

    def _loan_dues_single_day(
        self, as_of: int, start: int, end: int, th: definitions.Thresholds, window: definitions.CollectionWindow
    ) -> pd.DataFrame:
        return self._loan_dues_of(self._single_day_facts(as_of, th, window), as_of, start, end, th)

    def _loan_dues(
        self, as_of: int, start: int, end: int, th: definitions.Thresholds, window: definitions.CollectionWindow
    ) -> pd.DataFrame:
        single = self.frames["loan_dues_single_day"]
        several = single.index[single.several_days > 0]
        exact = self._loan_dues_of(self._installment_facts(as_of, th, window, several), as_of, start, end, th)
        del self.frames["installments"]  # read by nothing else: free it for the large runs
        return pd.concat([single[single.several_days == 0], exact])

    def _loan_paid(self, as_of: int) -> pd.DataFrame:
        e = self.frames["loan_dues"]
        alloc = self.frames["allocations"]
        alloc = alloc[alloc.component.isin(PRINCIPAL) & (alloc.value_day <= as_of)]
        alloc = alloc[["loan_id", "value_day", "amount"]].merge(
            e[["first30", "first90"]], left_on="loan_id", right_index=True, how="left"
        )
        paid = pd.DataFrame(
            {
                "loan_id": alloc.loan_id,
                "paid_asof": alloc.amount,
                "paid30": alloc.amount.where(alloc.value_day <= alloc.first30, 0),
                "paid90": alloc.amount.where(alloc.value_day <= alloc.first90, 0),
            }
        )
        return paid.groupby("loan_id").sum()

    def _loan_facts(self, as_of: int, th: definitions.Thresholds) -> pd.DataFrame:
        e, p = self.frames["loan_dues"], self.frames["loan_paid"]
        loans = self.frames["loans"]
        lf = (
            loans[loans.disbursed_day <= as_of]
            .merge(e, left_on="id", right_index=True, how="left")
            .merge(p, left_on="id", right_index=True, how="left")
        )
        wo = (lf.status == "written_off") & (lf.closed_day <= as_of)
        paid = {k: lf[k].fillna(0).astype("int64") for k in ("paid_asof", "paid30", "paid90")}
        order = lf.sort_values(["borrower_id", "disbursed_day", "id"]).groupby("borrower_id").cumcount()
        return pd.DataFrame(
            {
                "loan_id": lf.id,
                **self._dims(lf),
                "principal": lf.principal,
                "tenor": lf.tenor,
                "borrower_id": lf.borrower_id,
                "disbursed_day": lf.disbursed_day,
                "wo": wo.astype("int64"),
                "overdue_since": lf.overdue_since.where(~wo).astype("Int64"),
                "first30": lf.first30.astype("Int64"),
                "first90": lf.first90.astype("Int64"),
                "outstanding": (lf.principal - paid["paid_asof"]).where(~wo, 0),
                "bal30": (lf.principal - paid["paid30"]).where(lf.first30.notna(), 0),
                "bal90": (lf.principal - paid["paid90"]).where(lf.first90.notna(), 0),
                "repeat_drawdown": (order.reindex(lf.index).fillna(0) > 0).astype("int64"),
                "dues": lf.dues.fillna(0).astype("int64"),
                **{
                    c: lf[c].astype("Int64")
                    for c in ("principal_due", "overdue_day1", "collected_30d", "first_due", "first_delinquent")
                },
            }
        )

    @staticmethod
    def _dims(loans: pd.DataFrame) -> dict[str, pd.Series]:
        model = loans.business_model
        return {
            "business_model": model,
            "model_group": model.where(model != "on-balance-sheet", "capital-heavy"),
            "institution": loans.original_funder,
            "product": loans.product_code,
            "channel": loans.channel,
            "origination_month": month_key(loans.disbursed_day),
        }

    def _loans_dims(self) -> pd.DataFrame:
        loans = self.frames["loans"]
        return pd.DataFrame({"loan_id": loans.id, **self._dims(loans)})

    # The metrics, row for row as the SQL returns them.

    def _dues(self, by: Sequence[str]) -> list[Row]:
        lf = self.frames["lf"]
        return grouped(
            lf[lf.dues > 0],
            by,
            **{
                c: (c, "sum")
                for c in ("principal_due", "overdue_day1", "collected_30d", "first_due", "first_delinquent")
            },
        )

    def _originations(self, by: Sequence[str], start: int, end: int) -> list[Row]:
        lf = self.frames["lf"]
        q = lf[(lf.disbursed_day >= start) & (lf.disbursed_day <= end)]
        model = q.business_model
        q = q.assign(
            facilitation_volume=q.principal.where(model.isin(["capital-light", "capital-heavy"]), 0),
            origination_volume=q.principal.where(model == "on-balance-sheet", 0),
            technology_volume=q.principal.where(model == "technology", 0),
            principal_tenor=q.principal * q.tenor,
            repeat_volume=q.principal.where(q.repeat_drawdown == 1, 0),
        )
        return grouped(
            q,
            by,
            loans_originated=("loan_id", "size"),
            volume=("principal", "sum"),
            **{
                c: (c, "sum")
                for c in (
                    "facilitation_volume",
                    "origination_volume",
                    "technology_volume",
                    "principal_tenor",
                    "repeat_volume",
                )
            },
        )

    def _balances(self, by: Sequence[str], as_of: int, th: definitions.Thresholds) -> list[Row]:
        lf = self.frames["lf"]
        dpd = (as_of + 1 - lf.overdue_since).fillna(0).astype("int64")
        buckets, within = bucket(dpd, th), dpd <= th.m4
        owing = lf.outstanding > 0
        columns = [definitions.bucket_column(b) for b in definitions.BUCKETS]
        q = lf.assign(
            outstanding=lf.outstanding.where(within, 0),
            loans_outstanding=(owing & within).astype("int64"),
            loans_over_180=(owing & ~within).astype("int64"),
            **{definitions.bucket_column(b): lf.outstanding.where(buckets == b, 0) for b in definitions.BUCKETS},
        )
        return grouped(
            q,
            by,
            outstanding=("outstanding", "sum"),
            loans_outstanding=("loans_outstanding", "sum"),
            loans_over_180=("loans_over_180", "sum"),
            **{c: (c, "sum") for c in columns},
            borrowers_with_drawdown=("borrower_id", "nunique"),
        )

    def _approved_users(self, as_of: int) -> list[Row]:
        lines = self.frames["credit_lines"]
        return [{"users": int(lines.borrower_id[lines.approved_day <= as_of].nunique())}]

    def _funding(self, by: Sequence[str]) -> list[Row]:
        """Balance x cost summed per institution first, then in Python integers (exact past 2**63)."""
        lf = self.frames["lf"]
        costs = self.frames["institutions"].set_index("code").funding_cost_ppm
        q = lf[lf.outstanding > 0]
        covered = q.institution.isin(costs.index)
        q = q.assign(
            covered_balance=q.outstanding.where(covered, 0),
            uncovered_balance=q.outstanding.where(~covered, 0),
            _inst=q.institution,
        )
        per_inst = grouped(
            q,
            [*by, "_inst"],
            covered_balance=("covered_balance", "sum"),
            uncovered_balance=("uncovered_balance", "sum"),
        )
        rows: dict[tuple, Row] = {}
        for r in per_inst:
            key = tuple(r[k] for k in by)
            row = rows.setdefault(
                key, {**{k: r[k] for k in by}, "covered_balance": 0, "uncovered_balance": 0, "balance_cost_ppm": 0}
            )
            row["covered_balance"] += r["covered_balance"]
            row["uncovered_balance"] += r["uncovered_balance"]
            row["balance_cost_ppm"] += r["covered_balance"] * int(costs.get(r["_inst"], 0))
        if not rows and not by:  # no GROUP BY: SQL still gives its one row
            rows[()] = {"covered_balance": 0, "uncovered_balance": 0, "balance_cost_ppm": 0}
        return list(rows.values())

    def _funding_mix(self, by: Sequence[str], as_of: int, th: definitions.Thresholds) -> list[Row]:
        """As `definitions.funding_mix`: the funder of the as-of date, its class and cost, summed per funder first and
        then in Python integers."""
        lf = self.frames["lf"]
        q = lf[lf.outstanding > 0]
        entries, lines = self.frames["journal_entries"], self.frames["journal_lines"]
        payouts = entries[entries.kind == definitions.GUARANTEE_PAYOUT]
        payout_day = lines.merge(payouts, left_on="entry_id", right_on="id").groupby("loan_id").business_day.min()
        today = q.loan_id.map(self.frames["loans"].set_index("id").funder)
        institutions = self.frames["institutions"].set_index("code") if self.has_table("institutions") else None
        costs = institutions.funding_cost_ppm if institutions is not None else pd.Series(dtype="int64")
        kinds = institutions.kind.to_dict() if institutions is not None else {}
        if self.has_table(definitions.DEAL_TERMS):  # a pool loan is the platform's until its deal's transfer day
            sold_on = q.loan_id.map(self._transfers(derecognised=False))
            today = today.where(~(sold_on > as_of), PLATFORM)
            terms = self.frames[definitions.DEAL_TERMS].dropna(subset=["cost_ppm"]).set_index("funder").cost_ppm
            costs = pd.concat([costs, terms.astype("int64")])
        funder = q.institution.where(q.loan_id.map(payout_day) > as_of, today)
        covered = funder.isin(costs.index)
        dpd = (as_of + 1 - q.overdue_since).fillna(0).astype("int64")
        q = q.assign(
            source=funder.map(lambda f: funding_source(f, kinds.get(f)).value),
            platform_model=[platform_model(m, c).value for m, c in zip(q.business_model, q.channel, strict=True)],
            within=q.outstanding.where(dpd <= th.m4, 0),
            covered_balance=q.outstanding.where(covered, 0),
            uncovered_balance=q.outstanding.where(~covered, 0),
            _funder=funder,
        )
        per_funder = grouped(
            q,
            [*by, "source", "platform_model", "_funder"],
            outstanding=("within", "sum"),
            covered_balance=("covered_balance", "sum"),
            uncovered_balance=("uncovered_balance", "sum"),
        )
        rows: dict[tuple, Row] = {}
        for r in per_funder:
            key = tuple(r[k] for k in (*by, "source", "platform_model"))
            row = rows.setdefault(
                key,
                {
                    **{k: r[k] for k in (*by, "source", "platform_model")},
                    "outstanding": 0,
                    "covered_balance": 0,
                    "uncovered_balance": 0,
                    "balance_cost_ppm": 0,
                },
            )
            for col in ("outstanding", "covered_balance", "uncovered_balance"):
                row[col] += r[col]
            row["balance_cost_ppm"] += r["covered_balance"] * int(costs.get(r["_funder"], 0))
        return list(rows.values())

    def _transfers(self, derecognised: bool) -> pd.Series:
        """As `definitions.transfers_sql`: each pool loan's transfer day, by loan id."""
        terms = self.frames[definitions.DEAL_TERMS]
        if derecognised:
            terms = terms[terms.derecognise == 1]
        pool = self.frames["abs_pool_loans"].merge(terms, on="deal_id")
        return pool.set_index("loan_id").transfer_day

    def _ledger(self, start: int, end: int) -> pd.DataFrame:
        if "loans_dims" not in self.frames:  # the SQL joins a subquery; here it is built once for both ledger metrics
            self.frames["loans_dims"] = self._loans_dims()
        entries = self.frames["journal_entries"]
        entries = entries[(entries.business_day >= start) & (entries.business_day <= end)]
        return (
            self.frames["journal_lines"]
            .merge(entries[["id", "kind", "business_day"]], left_on="entry_id", right_on="id")
            .merge(self.frames["loans_dims"], on="loan_id")
        )

    def _revenue(self, by: Sequence[str], start: int, end: int) -> list[Row]:
        """The line of each (business model, account) pair comes from `REVENUE_LINES`' own SQL conditions,
        evaluated on the few distinct pairs."""
        lines = self._ledger(start, end)
        lines = lines[lines.account.isin(definitions.INCOME_ACCOUNTS)]
        if lines.empty:  # grouped on the line: no rows at all
            return []
        sold = pd.Series(0, index=lines.index)
        if self.has_table(definitions.DEAL_TERMS):  # sold off the balance sheet by the entry's day
            sold_on = lines.loan_id.map(self._transfers(derecognised=True))
            sold = (sold_on <= lines.business_day).astype("int64")
        lines = lines.assign(sold=sold)
        pairs = lines[["business_model", "account", "sold"]].drop_duplicates()
        case = (
            "CASE "
            + " ".join(
                f"WHEN {cond.format(m='business_model', a='account', s='sold')} THEN '{name}'"
                for name, cond in definitions.REVENUE_LINES
            )
            + " END"
        )
        table = sqlglot.executor.execute(
            f"SELECT business_model, account, sold, {case} AS line FROM pairs",
            tables={"pairs": pairs.to_dict("records")},
        )
        names = pd.DataFrame(table.rows, columns=["business_model", "account", "sold", "line"])
        lines = lines.merge(names, on=["business_model", "account", "sold"]).assign(neg=lambda f: -f.amount)
        return grouped(lines, [*by, "line"], amount=("neg", "sum"))

    def _ledger_sum(self, by: Sequence[str], start: int, end: int) -> list[Row]:
        lines = self._ledger(start, end)
        return grouped(lines[lines.account == "provision_expense"], by, charge=("amount", "sum"))

    def _charge_offs(self, by: Sequence[str], start: int, end: int) -> list[Row]:
        lines = self._ledger(start, end)
        recovered = lines.account.isin(["recovery_income", "institution_recovery_income"])
        charged = (lines.kind == "write_off") & (lines.account == "loan_principal")
        q = lines[charged | recovered]
        q = q.assign(
            charged_off=(-q.amount).where(charged[q.index], 0), recovered=(-q.amount).where(recovered[q.index], 0)
        )
        return grouped(q, by, charged_off=("charged_off", "sum"), recovered=("recovered", "sum"))

    def _provision_coverage(self, by: Sequence[str], as_of: int, th: definitions.Thresholds) -> list[Row]:
        lines = self._ledger(-(1 << 40), as_of)
        lines = lines[lines.account.isin(["guarantee_provision", "loan_loss_allowance"])]
        held = (-lines.amount).groupby(lines.loan_id).sum().rename("held")
        lf = self.frames["lf"].merge(held, left_on="loan_id", right_index=True, how="left")
        dpd = (as_of + 1 - lf.overdue_since).fillna(0).astype("int64")
        at_risk = (lf.model_group == "capital-heavy") & (bucket(dpd, th) == "M4+")
        q = lf.assign(held=lf.held.fillna(0).astype("int64"), at_risk=lf.outstanding.where(at_risk, 0))
        return grouped(q, by, provisions_held=("held", "sum"), at_risk_90_plus=("at_risk", "sum"))

    def _stored_pds(self) -> pd.DataFrame:
        lines = self.frames["credit_lines"].dropna(subset=["pd"])
        q = self.frames["drawdowns"].dropna(subset=["loan_id"]).merge(lines, left_on="line_id", right_on="id")
        return pd.DataFrame(
            {
                "loan_id": q.loan_id.astype("int64"),
                "pd_ppm": np.floor(q.pd * 1_000_000 + 0.5).astype("int64"),
                "grade": q.grade,
            }
        )

    def _currencies(self) -> list[Row]:
        used = self.frames["products"][self.frames["products"].code.isin(self.frames["loans"].product_code)]
        return [{"currency": c} for c in sorted(used.currency.unique())]

    def _vintages(self, by: Sequence[str]) -> list[Row]:
        lf = self.frames["lf"]
        mob = {n: (month_key(lf[f"first{n}"].astype("float64")) - lf.origination_month).fillna(-1) for n in (30, 90)}
        q = lf.assign(mob30=mob[30], mob90=mob[90])
        return grouped(
            q,
            [*by, "origination_month", "mob30", "mob90"],
            principal=("principal", "sum"),
            bal30=("bal30", "sum"),
            bal90=("bal90", "sum"),
        )

    def _month_end_buckets(self, by: Sequence[str], from_day: int, as_of: int, th: definitions.Thresholds) -> list[Row]:
        s = self.frames["portfolio_snapshots"]
        s = s[(s.status != "written_off") & s.status.notna() & (s.as_of_day >= from_day) & (s.as_of_day <= as_of)]
        s = s.merge(self.frames["lf"][["loan_id", *by]], on="loan_id")
        return grouped(
            s.assign(bucket=bucket(s.dpd, th)), [*by, "as_of_day", "bucket"], balance=("principal_outstanding", "sum")
        )

    def _model_monitoring(self, by: Sequence[str]) -> list[Row]:
        q = self.frames["lf"].merge(self.frames["loan_pd"], on="loan_id")
        q = q.assign(defaulted=(q.first90.notna() | (q.wo == 1)).astype("int64"))
        return grouped(
            q,
            [*by, "origination_month", "grade"],
            loans=("loan_id", "size"),
            pd_ppm_sum=("pd_ppm", "sum"),
            defaulted=("defaulted", "sum"),
        )
