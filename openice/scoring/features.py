"""Feature schema: types, the imputation rule, impossible values and known risk directions.

The schema is learned from training data plus a small table of domain knowledge (name patterns), so
that any CSV can be trained on while a known field such as income or age still gets its sane range
and its risk direction (used for monotone binning and LightGBM monotone constraints).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from openice.errors import ValidationError

__all__ = [
    "REASON_LEVELS",
    "FeatureSpec",
    "Prepared",
    "code_of",
    "date_columns",
    "infer_schema",
    "prepare_frame",
    "prepare_record",
]

MISSING = -1  # categorical code of a missing value
UNSEEN = -2  # categorical code of a category never seen in training


# A reason code is a feature's code and how its bin lost points: `scorecard` names each bin so, and readers of a stored
# reason (`decisioning.adverse`) split it back.
REASON_LEVELS = ("HIGH", "LOW", "MISSING", "SPECIAL", "CATEGORY", "OTHER")


def code_of(name: str) -> str:
    """A feature's name as the stem of its reason codes: EMP_LENGTH for emp_length."""
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "FEATURE"


@dataclass(frozen=True)
class _Hint:
    pattern: str
    direction: int  # +1: risk rises with the value, -1: risk falls, 0: unknown
    label: str | None
    lower: float | None = None
    upper: float | None = None


# Domain knowledge, matched on the lower-cased column name. Order matters: the first match wins.
HINTS: tuple[_Hint, ...] = (
    _Hint(r"^revol_util$", +1, "Revolving utilisation", 0.0),
    _Hint(r"^all_util$", +1, "Overall credit utilisation", 0.0),
    _Hint(r"util", +1, None, 0.0),
    _Hint(r"(^|_)age($|_)", -1, "Age", 0.0, 120.0),
    _Hint(r"^annual_inc$", -1, "Annual income", 0.0),
    _Hint(r"income|(^|_)inc($|_)", -1, "Income", 0.0),
    _Hint(r"int_rate", +1, "Interest rate", 0.0),
    _Hint(r"delinq", +1, None, 0.0),
    _Hint(r"^inq_last_6mths$", +1, "Credit inquiries in the last 6 months", 0.0),
    _Hint(r"^inq_last_12m$", +1, "Credit inquiries in the last 12 months", 0.0),
    _Hint(r"^inq_fi$", +1, "Personal finance inquiries", 0.0),
    _Hint(r"(^|_)inq", +1, None, 0.0),
    _Hint(r"pub_rec|derog|bankrupt", +1, None, 0.0),
    _Hint(r"^debt$", +1, "Debt", 0.0),
    _Hint(r"assets", -1, "Assets", 0.0),
    _Hint(r"seniority", -1, "Job seniority", 0.0),
    _Hint(r"expenses", 0, "Expenses", 0.0),
)

LABELS = {
    "funded_amnt": "Loan amount",
    "term": "Loan term",
    "addr_state": "State of residence",
    "verification_status": "Income verification",
    "emp_length": "Length of employment",
    "acc_now_delinq": "Accounts now delinquent",
    "delinq_2yrs": "Delinquencies in the last 2 years",
    "delinq_amnt": "Amount past due",
    "open_il_6m": "Instalment accounts opened in 6 months",
    "open_il_12m": "Instalment accounts opened in 12 months",
    "open_il_24m": "Instalment accounts opened in 24 months",
    "total_bal_il": "Instalment balance",
    "num_il_tl": "Number of instalment accounts",
    "total_il_high_credit_limit": "Instalment credit limit",
    "sub_grade": "Platform sub-grade",
    "home": "Home ownership",
    "time": "Loan term (months)",
    "marital": "Marital status",
    "records": "Adverse records",
    "job": "Job type",
    "amount": "Loan amount",
    "price": "Price of the good",
}


@dataclass(frozen=True)
class FeatureSpec:
    """What training saw of one feature, and the rules applied when scoring it."""

    name: str
    kind: str  # "numeric" or "categorical"
    label: str
    direction: int
    had_missing: bool
    impute: float | str | None  # the training median (numeric) or mode (categorical)
    lower: float | None = None
    upper: float | None = None
    categories: tuple[str, ...] = ()

    @property
    def median(self) -> float:
        """A numeric feature's imputed value, the training median."""
        if not isinstance(self.impute, int | float):
            raise ValidationError(f"the imputed value must be a number, got {self.impute!r}", field=self.name)
        return float(self.impute)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = list(self.categories)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FeatureSpec:
        return cls(**{**d, "categories": tuple(d["categories"])})


def _hint(name: str) -> _Hint | None:
    low = name.lower()
    return next((h for h in HINTS if re.search(h.pattern, low)), None)


def _label(name: str, hint: _Hint | None) -> str:
    if hint is not None and hint.label:
        return hint.label
    return LABELS.get(name.lower(), name.replace("_", " ").strip().capitalize())


def infer_schema(frame: pd.DataFrame) -> list[FeatureSpec]:
    """Types from the column dtypes (numbers are numeric, the rest categorical) and rules from the hints.

    A numeric feature that was never negative in training may not be negative when scored; a hinted
    feature also gets its domain range (age 0-120).
    """
    specs = []
    for name in frame.columns:
        col = frame[name]
        hint = _hint(name)
        had_missing = bool(col.isna().any())
        if pd.api.types.is_numeric_dtype(col) and col.dtype != bool:
            values = col.to_numpy(dtype=float)
            finite = values[~np.isnan(values)]
            if finite.size == 0:
                continue
            lower = hint.lower if hint and hint.lower is not None else (0.0 if finite.min() >= 0 else None)
            specs.append(
                FeatureSpec(
                    name,
                    "numeric",
                    _label(name, hint),
                    hint.direction if hint else 0,
                    had_missing,
                    float(np.median(finite)),
                    lower,
                    hint.upper if hint else None,
                )
            )
        else:
            text = col.dropna().astype(str)
            if text.empty:
                continue
            specs.append(
                FeatureSpec(
                    name,
                    "categorical",
                    _label(name, hint),
                    0,
                    had_missing,
                    str(text.mode().iloc[0]),
                    categories=tuple(sorted(text.unique())),
                )
            )
    return specs


def date_columns(frame: pd.DataFrame) -> list[str]:
    """Text (or datetime) columns whose every value is a date, such as an application or issue date.

    A date is not a feature (every later date would be an unseen category) but the time axis of
    monitoring. Only the distinct values are parsed, and a column is given up on at its first
    non-date among a sample, so wide files of ids and codes are checked quickly.
    """
    found = []
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_datetime64_any_dtype(col):
            found.append(name)
            continue
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            continue
        values = pd.Series(col.dropna().unique()).astype(str)
        if values.empty:
            continue
        if all(
            pd.to_datetime(part, errors="coerce", format="mixed").notna().all() for part in (values.iloc[:20], values)
        ):
            found.append(name)
    return found


@dataclass
class Prepared:
    """Model-ready columns: numeric float64 (NaN = missing), categorical int codes (MISSING, UNSEEN)."""

    columns: dict[str, np.ndarray]
    n: int


def _check_range(spec: FeatureSpec, values: np.ndarray, index: pd.Index | None = None) -> None:
    if values.size == 0:
        return
    lo, hi = np.fmin.reduce(values), np.fmax.reduce(values)  # NaN (missing) skipped; two passes, no temporaries
    if not (
        np.isinf(lo)
        or np.isinf(hi)
        or (spec.lower is not None and lo < spec.lower)
        or (spec.upper is not None and hi > spec.upper)
    ):
        return
    bad = np.zeros(values.shape, dtype=bool)
    if spec.lower is not None:
        bad |= values < spec.lower
    if spec.upper is not None:
        bad |= values > spec.upper
    bad |= np.isinf(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f" (row {index[i]})" if index is not None else ""
        raise ValidationError(
            f"impossible value {float(values[i]):g}{where}: allowed range is "
            f"[{spec.lower if spec.lower is not None else '-inf'}, "
            f"{spec.upper if spec.upper is not None else 'inf'}]",
            field=spec.name,
        )


def prepare_frame(
    frame: pd.DataFrame, schema: list[FeatureSpec], special: dict[str, list[float]] | None = None
) -> Prepared:
    """Validate and encode a batch; a column that is absent is treated as all missing (imputed, flagged)."""
    special = special or {}
    cols: dict[str, np.ndarray] = {}
    n = len(frame)
    for spec in schema:
        if spec.name not in frame.columns:
            raw = pd.Series(np.nan, index=frame.index)
        else:
            raw = frame[spec.name]
        if spec.kind == "numeric":
            if raw.dtype == np.dtype(np.float64):
                values = raw.to_numpy()  # the frame's own array (read-only), not a copy
            elif pd.api.types.is_numeric_dtype(raw) and raw.dtype != bool:
                values = raw.to_numpy(dtype=float, na_value=np.nan)
            else:
                values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                wrong = np.isnan(values) & raw.notna().to_numpy()
                if wrong.any():
                    i = int(np.flatnonzero(wrong)[0])
                    raise ValidationError(
                        f"expected a number, got {raw.iloc[i]!r} (row {frame.index[i]})", field=spec.name
                    )
            codes = special.get(spec.name)
            _check_range(spec, np.where(np.isin(values, codes), np.nan, values) if codes else values, frame.index)
            cols[spec.name] = values
        else:
            # factorise once (fast hashing), then map the few distinct values to training codes
            codes, uniques = pd.factorize(raw, use_na_sentinel=True)
            index = {c: i for i, c in enumerate(spec.categories)}
            lut = np.array([index.get(str(u), UNSEEN) for u in uniques] + [MISSING], dtype=np.int64)
            cols[spec.name] = lut[codes]
    return Prepared(cols, n)


def prepare_record(
    record: dict[str, Any],
    schema: list[FeatureSpec],
    lookup: dict[str, dict[str, int]],
    special: dict[str, list[float]] | None = None,
) -> tuple[list[float], list[str]]:
    """Validate one application: numeric value or categorical code per feature, plus flags.

    Wrong types and impossible values raise ValidationError naming the field; missing values and
    unseen categories are flagged ("missing:FIELD", "unseen_category:FIELD") and handled by the model.
    """
    values: list[float] = []
    flags: list[str] = []
    for spec in schema:
        v = record.get(spec.name)
        if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and v.strip() == ""):
            flags.append(f"missing:{spec.name}")
            values.append(math.nan if spec.kind == "numeric" else MISSING)
            continue
        if spec.kind == "numeric":
            if isinstance(v, bool) or not isinstance(v, int | float | str | np.number):
                raise ValidationError(f"expected a number, got {type(v).__name__} {v!r}", field=spec.name)
            try:
                x = float(v)
            except ValueError:
                raise ValidationError(f"expected a number, got {v!r}", field=spec.name) from None
            if math.isnan(x):
                flags.append(f"missing:{spec.name}")
            elif not (special and x in special.get(spec.name, ())):
                if (
                    math.isinf(x)
                    or (spec.lower is not None and x < spec.lower)
                    or (spec.upper is not None and x > spec.upper)
                ):
                    _check_range(spec, np.array([x]))
            values.append(x)
        else:
            if not isinstance(v, str | int | np.integer) or isinstance(v, bool):
                raise ValidationError(f"expected a category (text), got {type(v).__name__} {v!r}", field=spec.name)
            code = lookup[spec.name].get(str(v), UNSEEN)
            if code == UNSEEN:
                flags.append(f"unseen_category:{spec.name}")
            values.append(code)
    return values, flags
