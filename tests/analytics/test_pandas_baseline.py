"""The pandas baseline of the benchmark computes every metric exactly as the SQL does, on the hand-worked
portfolio: unsplit and split, at quarter ends and at a later as-of date, with model monitoring."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pyarrow as pa
import pytest
from sqlalchemy import Engine

from bench.pandas_baseline import PandasBackend
from openice.analytics.backends import DuckDBBackend
from openice.analytics.definitions import SEQ_KEY
from openice.analytics.metrics import Period, compute
from openice.errors import ValidationError
from openice.storage.days import to_day
from tests.analytics.portfolio import with_decisioning


def test_pandas_equals_duckdb(portfolio: Callable[[str], Engine]) -> None:
    tables = with_decisioning(portfolio("sqlite"))
    loans = sorted(tables["loans"].column("id").to_pylist())
    pds = {
        "loan_id": loans,
        "pd": [0.05 * (k % 4 + 1) for k in range(len(loans))],
        "grade": ["ABCD"[k % 4] for k in range(len(loans))],
    }
    for quarter, as_of, by in (
        ("2026Q1", None, ()),
        ("2026Q1", date(2026, 4, 30), ("channel",)),
        ("2026Q2", None, ("business_model", "origination_month")),
        ("2026Q3", None, ("model_group", "institution", "product")),
    ):
        period = Period.quarter(quarter)
        expected = compute(DuckDBBackend.from_arrow(tables), period, as_of, by, pd_frame=pds).to_dict()
        got = compute(PandasBackend.from_arrow(tables, period, as_of, by), period, as_of, by, pd_frame=pds).to_dict()
        assert got.pop("engine") == "pandas" and expected.pop("engine") == "duckdb"
        for name, metric in expected["metrics"].items():
            assert got["metrics"][name] == metric, (quarter, by, name)
        assert got == expected


def test_pandas_answers_only_what_it_was_built_for(portfolio: Callable[[str], Engine]) -> None:
    tables = with_decisioning(portfolio("sqlite"))
    backend = PandasBackend.from_arrow(tables, Period.quarter("2026Q1"))
    with pytest.raises(Exception, match="built for"):
        compute(backend, Period.quarter("2026Q2"))


def test_installment_paid_on_several_days(portfolio: Callable[[str], Engine]) -> None:
    """An installment paid in two parts on two days takes the exact path of the installment facts (not the
    one-value-day shortcut), on DuckDB and in pandas alike: the second part is late by five days."""
    tables = with_decisioning(portfolio("sqlite"))
    period = Period.quarter("2026Q1")
    inst = tables["installments"].to_pylist()
    due = {(r["loan_id"], r["seq"]): r["due_day"] for r in inst}
    alloc = tables["allocations"].to_pylist()
    k = next(
        i
        for i, r in enumerate(alloc)
        if r["seq"] == 1
        and r["component"] == "principal"
        and r["value_day"] == due[(r["loan_id"], r["seq"])]
        and r["value_day"] >= to_day(period.start)
    )
    half = alloc[k]["amount"] // 2
    split = [
        {**alloc[k], "amount": alloc[k]["amount"] - half},
        {**alloc[k], "amount": half, "value_day": alloc[k]["value_day"] + 5},
    ]
    changed = {
        **tables,
        "allocations": pa.Table.from_pylist(alloc[:k] + split + alloc[k + 1 :], schema=tables["allocations"].schema),
    }
    before = compute(DuckDBBackend.from_arrow(tables), period)
    after = compute(DuckDBBackend.from_arrow(changed), period)
    for name, delta in (("day1_delinquency_rate", half), ("collection_rate_30d", half), ("fpd_rate", 1)):
        assert after[name].rows[0]["numerator"] == before[name].rows[0]["numerator"] + delta, name
    got = compute(PandasBackend.from_arrow(changed, period), period).to_dict()
    expected = after.to_dict()
    assert got.pop("engine") == "pandas" and expected.pop("engine") == "duckdb"
    assert got == expected


def test_seq_outside_the_key_range(portfolio: Callable[[str], Engine]) -> None:
    """An installment numbered past `SEQ_KEY` takes the exact path, even where its one-column key equals another
    loan's (loan L's seq SEQ_KEY + s is loan L + 1's seq s, paid while L's is not): the numbers do not change."""
    tables = with_decisioning(portfolio("sqlite"))
    period, as_of = Period.quarter("2026Q1"), date(2026, 4, 30)
    paid = {(r["loan_id"], r["seq"]) for r in tables["allocations"].to_pylist()}
    loan, seq = min(
        (r["loan_id"], r["seq"])
        for r in tables["installments"].to_pylist()
        if r["seq"] >= 2 and (r["loan_id"], r["seq"]) not in paid and (r["loan_id"] + 1, r["seq"]) in paid
    )

    def renumbered(name: str) -> pa.Table:
        rows = [
            {**r, "seq": SEQ_KEY + seq} if (r["loan_id"], r["seq"]) == (loan, seq) else r
            for r in tables[name].to_pylist()
        ]
        return pa.Table.from_pylist(rows, schema=tables[name].schema)

    changed = {**tables, "installments": renumbered("installments"), "allocations": renumbered("allocations")}
    expected = compute(DuckDBBackend.from_arrow(tables), period, as_of).to_dict()
    assert compute(DuckDBBackend.from_arrow(changed), period, as_of).to_dict() == expected
    got = compute(PandasBackend.from_arrow(changed, period, as_of), period, as_of).to_dict()
    assert got.pop("engine") == "pandas" and expected.pop("engine") == "duckdb"
    assert got == expected


@pytest.mark.parametrize(
    ("column", "value", "field"),
    [("id", 1 << 40, "loans.id"), ("id", -1, "loans.id"), ("disbursed_day", -(1 << 22), "loans.disbursed_day")],
)
def test_loan_keys_outside_the_drawdown_key_are_refused(
    portfolio: Callable[[str], Engine], column: str, value: int, field: str
) -> None:
    """A loan id or disbursement day that the repeat-drawdown key cannot hold is a clear error on every engine,
    before any fact table is built, not a wrong repeat-borrower figure."""
    tables = with_decisioning(portfolio("sqlite"))
    rows = tables["loans"].to_pylist()
    rows[0][column] = value
    changed = {**tables, "loans": pa.Table.from_pylist(rows, schema=tables["loans"].schema)}
    period = Period.quarter("2026Q1")
    for backend in (DuckDBBackend.from_arrow(changed), PandasBackend.from_arrow(changed, period)):
        with pytest.raises(ValidationError) as error:
            compute(backend, period)
        assert error.value.field == field and not backend.has_table("lf")
