"""Credit boxes evaluated as vectorised masks: one (drawdowns x institutions) boolean array per criterion.

The same code answers a single real-time drawdown (n = 1) and a batch of 100,000, and the per-criterion
masks say exactly why an institution's box refused a drawdown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pandas import DataFrame  # by name: the field `pd` below would shadow the module

from openice.decisioning.policy import monthly_payment
from openice.errors import ValidationError
from openice.matching.institutions import Institution, funds_in, terms_currency
from openice.money import to_minor

CRITERIA = ("score", "pd", "amount", "tenor", "province", "age", "income", "dti", "product", "rate")
BATCH_COLUMNS = ("amount", "tenor", "score", "pd", "age", "province", "income", "dti", "product", "rate")
# A batch file's money: typed in major units of its `currency` column, read by the optimiser in minor units.
BATCH_MONEY = ("amount", "income")


def batch_in_minor(frame: DataFrame, book: str, name: str, currency: str | None = None) -> DataFrame:
    """A batch file `name` as a person writes it, `amount` and `income` in major units of its `currency` column (or
    of `currency` for every row), in minor units of `book`, the currency a run is read in. A file that says no
    currency is refused rather than guessed at (it may be minor units), as is a row in another currency or an
    amount with more decimals than the currency has, each naming its line of the file."""
    if "currency" not in frame.columns and currency is None:
        raise ValidationError(
            f"{name} has no currency column: add one ({book}, the book's) with amount and income in major units of "
            f"it, or give --currency {book}",
            field="currency",
        )
    said = frame["currency"].astype(str).str.strip() if "currency" in frame.columns else None
    if said is not None and currency is not None:
        said = said.where(frame["currency"].notna(), currency)
    currencies = said.to_numpy() if said is not None else np.full(len(frame), currency)
    other = np.flatnonzero(currencies != book)
    if other.size:
        line = int(other[0]) + 2  # the header is line 1
        raise ValidationError(
            f"{name} line {line} is in {currencies[other[0]]}, but the book lends in {book}: a run is read in it",
            field="currency",
        )
    typed = frame.copy()
    for column in BATCH_MONEY:
        if column in frame.columns:
            typed[column] = [
                to_minor(value, book, f"{column} ({name} line {i + 2})") for i, value in enumerate(frame[column])
            ]
    return typed


@dataclass(frozen=True)
class Drawdowns:
    """Drawdowns as columns: amount/income in minor units, rate = the line's nominal annual rate."""

    amount: np.ndarray
    tenor: np.ndarray
    score: np.ndarray
    pd: np.ndarray
    age: np.ndarray
    province: np.ndarray  # object array of names
    income: np.ndarray
    dti: np.ndarray
    product: np.ndarray  # object array of product codes
    rate: np.ndarray

    @classmethod
    def from_frame(cls, frame: DataFrame) -> Drawdowns:
        missing = set(BATCH_COLUMNS) - set(frame.columns)
        if missing:
            raise KeyError(f"drawdown batch lacks column(s) {sorted(missing)}")
        return cls(**{c: frame[c].to_numpy() for c in BATCH_COLUMNS})

    @classmethod
    def one(cls, **values: object) -> Drawdowns:
        return cls(
            **{c: np.array([values[c]], dtype=object if c in ("province", "product") else float) for c in BATCH_COLUMNS}
        )

    def __len__(self) -> int:
        return len(self.amount)


def _bound(values: Sequence[float | None], default: float) -> np.ndarray:
    return np.array([default if v is None else v for v in values], dtype=float)


class Boxes:
    """The institutions' boxes as arrays, built once per set of institutions. `currencies` (product code ->
    currency) lets each institution take only the products lent in its currency (`funds_in`); a product it does not
    name is refused on `product`."""

    def __init__(self, institutions: Sequence[Institution], currencies: Mapping[str, str]) -> None:
        self.institutions = list(institutions)
        self.currencies = dict(currencies)
        book = terms_currency(self.currencies.values())
        self.lends_in = [i.currency or book for i in institutions]
        boxes = [i.credit_box for i in institutions]
        self.lo = {
            name: _bound([getattr(b, f"min_{name}") for b in boxes], -np.inf)
            for name in ("score", "pd", "amount", "tenor", "age")
        }
        self.hi = {
            name: _bound([getattr(b, f"max_{name}") for b in boxes], np.inf)
            for name in ("score", "pd", "amount", "tenor", "age")
        }
        self.min_income = np.array([b.min_income for b in boxes], dtype=float)
        self.max_dti = np.array([b.max_dti for b in boxes], dtype=float)
        self.provinces = [None if b.provinces is None else frozenset(b.provinces) for b in boxes]
        self.products = [None if b.products is None else frozenset(b.products) for b in boxes]
        self.rate = np.array([float(i.rate) for i in institutions])

    def _per_value(self, values: np.ndarray, accepts: Callable[[str, int], bool]) -> np.ndarray:
        """(n, m) answers of `accepts(value, institution)` via the distinct values, so a batch costs m lookups per
        distinct value."""
        m = len(self.institutions)
        uniques, inverse = np.unique(values.astype(str), return_inverse=True)
        table = np.array([[accepts(u, j) for j in range(m)] for u in uniques], dtype=bool).reshape(len(uniques), m)
        return table[inverse.reshape(-1)]

    def _province(self, province: str, j: int) -> bool:
        allowed = self.provinces[j]
        return allowed is None or province in allowed

    def _product(self, product: str, j: int) -> bool:
        allowed, currency, lends_in = self.products[j], self.currencies.get(product), self.lends_in[j]
        in_currency = currency is not None and lends_in is not None and funds_in(lends_in, currency)
        return in_currency and (allowed is None or product in allowed)

    def masks(self, d: Drawdowns) -> dict[str, np.ndarray]:
        """One (n, m) boolean array per criterion: True where that part of the box accepts."""
        out = {}
        for name in ("score", "pd", "amount", "tenor", "age"):
            col = d.__dict__[name].astype(float)[:, None]
            out[name] = (col >= self.lo[name]) & (col <= self.hi[name])
        out["province"] = self._per_value(d.province, self._province)
        out["income"] = d.income.astype(float)[:, None] >= self.min_income
        out["dti"] = d.dti.astype(float)[:, None] <= self.max_dti
        out["product"] = self._per_value(d.product, self._product)
        out["rate"] = d.rate.astype(float)[:, None] >= self.rate  # the line's rate leaves room for its own
        return out

    def accept(self, d: Drawdowns) -> np.ndarray:
        masks = self.masks(d)
        result = masks["score"]
        for name in CRITERIA[1:]:
            result = result & masks[name]
        return result

    def refusals(self, d: Drawdowns, row: int = 0) -> dict[str, list[str]]:
        """For one drawdown: institution code -> the box criteria it fails."""
        masks = self.masks(d)
        return {inst.code: [c for c in CRITERIA if not masks[c][row, j]] for j, inst in enumerate(self.institutions)}


def debt_to_income(existing_monthly: float, amount: float, rate: float, tenor: int, income: float) -> float:
    """What a box's `max_dti` reads: the borrower's existing debt service plus this drawdown's installment, over
    the monthly income declared in the application (no income: unbounded)."""
    return (existing_monthly + monthly_payment(amount, rate, tenor)) / income if income else float(np.inf)


@dataclass(frozen=True)
class BoxChange:
    """How an institution's changed box, pricing and daily quota would have answered the same drawdowns as its
    current ones: which each lets through, on which criteria each refuses, and on how many days what it let through
    outgrew its daily quota."""

    current: Institution
    changed: Institution
    amount: np.ndarray  # (n,) minor units
    currency: np.ndarray  # (n,) of the drawdown's product
    day: np.ndarray  # (n,) the business day it was requested on
    before: np.ndarray  # (n,) the current box lets it through
    after: np.ndarray  # (n,) the changed box does
    refused_before: dict[str, np.ndarray]  # criterion -> (n,) the current box refuses on it
    refused_after: dict[str, np.ndarray]

    @classmethod
    def of(
        cls, d: Drawdowns, currency: np.ndarray, day: np.ndarray, current: Institution, changed: Institution
    ) -> BoxChange:
        masks = Boxes([current, changed], dict(zip(d.product.astype(str), currency, strict=True))).masks(d)
        refused = [{c: ~masks[c][:, j] for c in CRITERIA} for j in (0, 1)]
        before, after = (~np.logical_or.reduce([r[c] for c in CRITERIA]) for r in refused)
        return cls(current, changed, d.amount, currency, day, before, after, refused[0], refused[1])

    @property
    def newly_accepted(self) -> np.ndarray:
        found: np.ndarray = self.after & ~self.before
        return found

    @property
    def newly_refused(self) -> np.ndarray:
        found: np.ndarray = self.before & ~self.after
        return found

    def totals(self) -> list[dict[str, Any]]:
        """Per currency: the drawdowns, those each box lets through and those whose answer changes (count, amount)."""
        out = []
        for currency in sorted(set(self.currency.tolist())):
            mine = self.currency == currency
            out.append(
                {
                    "currency": currency,
                    **{
                        name: {"count": int((mine & rows).sum()), "amount": int(self.amount[mine & rows].sum())}
                        for name, rows in (
                            ("drawdowns", mine),
                            ("accepted_before", self.before),
                            ("accepted_after", self.after),
                            ("newly_accepted", self.newly_accepted),
                            ("newly_refused", self.newly_refused),
                        )
                    },
                }
            )
        return out

    def criteria(self) -> list[dict[str, Any]]:
        """Per criterion that turned an answer: how many drawdowns the changed box refuses on it though the current
        one let them through, and how many it lets through though the current box refused them on it."""
        found = [
            {
                "criterion": c,
                "newly_refused": int((self.newly_refused & self.refused_after[c]).sum()),
                "newly_accepted": int((self.newly_accepted & self.refused_before[c]).sum()),
            }
            for c in CRITERIA
        ]
        return [row for row in found if row["newly_refused"] or row["newly_accepted"]]

    def days_over_quota(self) -> tuple[int, int]:
        """Days on which what each box let through added up to more than its daily quota (routing would have passed
        the rest on): (current, changed)."""
        return _days_over(self.amount, self.day, self.before, self.current.daily_quota), _days_over(
            self.amount, self.day, self.after, self.changed.daily_quota
        )


def _days_over(amount: np.ndarray, day: np.ndarray, accepted: np.ndarray, quota: int) -> int:
    if not accepted.any():
        return 0
    days, where = np.unique(day[accepted], return_inverse=True)
    totals = np.bincount(where.reshape(-1), weights=amount[accepted].astype(float), minlength=len(days))
    return int((totals > quota).sum())
