"""Real credit data sets bundled with openice, so that training, tests and benchmarks need no network.

Every loader returns a :class:`Dataset` whose ``target`` is 1 for a bad loan and 0 for a good one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from openice.errors import ValidationError

if TYPE_CHECKING:  # pandas is imported where it is used, so `openice --help` does not pay for it
    import pandas as pd

__all__ = ["DATASETS", "Dataset", "load", "read_frame", "read_labelled", "read_table", "split_target"]


@dataclass(frozen=True)
class Dataset:
    """Features (numeric columns float64, categorical columns str) and a 0/1 target (1 = bad)."""

    name: str
    frame: pd.DataFrame
    target: pd.Series
    leaky: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _Spec:
    file: str
    target: str
    bad: str
    leaky: tuple[str, ...]


DATASETS: dict[str, _Spec] = {
    "lending_club": _Spec("lending_club.csv", "Class", "bad", ("sub_grade", "int_rate")),
    "credit_data": _Spec("credit_data.csv", "Status", "bad", ()),
}


def _typed(frame: pd.DataFrame, integers: bool = False) -> pd.DataFrame:
    """Numbers as float64 (NaN = missing) and everything else as str, so models see one typing rule;
    ``integers`` keeps integer columns as they are."""
    import pandas as pd

    out = {}
    for name in frame.columns:
        col = frame[name]
        if integers and pd.api.types.is_integer_dtype(col):
            out[name] = col
        elif pd.api.types.is_numeric_dtype(col) and col.dtype != bool:
            out[name] = col.astype("float64")
        else:
            out[name] = col.astype("str").where(col.notna())
    return pd.DataFrame(out, index=frame.index)


def read_frame(path: str | Path, field: str = "input") -> pd.DataFrame:
    """Read a CSV (UTF-8) or Parquet file as it is; a missing, empty, unreadable or non-UTF-8 file is refused with
    one sentence naming it (field: the option that gave it)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"no such file: {path}", field=field)
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValidationError(
            f"{path} is not UTF-8 text (it has byte {error.object[error.start]:#04x}); save it as UTF-8 CSV",
            field=field,
        ) from None
    except pd.errors.EmptyDataError:
        raise ValidationError(f"{path} is empty: it needs a header row and data rows", field=field) from None
    except (pd.errors.ParserError, ValueError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValidationError(f"{path} cannot be read: {reason}", field=field) from None
    if frame.empty:
        raise ValidationError(f"{path} has no data rows", field=field)
    return frame


def read_table(path: str | Path, field: str = "input", *, integers: bool = False) -> pd.DataFrame:
    """Read a CSV or Parquet file as typed columns (numbers float64, the rest str); ``integers`` keeps integer
    columns as integers, for output that gives the input back as it was."""
    return _typed(read_frame(path, field), integers)


def read_labelled(path: str | Path, target: str, bad: str, field: str = "data") -> tuple[pd.DataFrame, pd.Series]:
    """Read a CSV or Parquet file with a binary target column; rows whose target equals ``bad`` are 1."""
    return split_target(read_table(path, field), target, bad)


def split_target(frame: pd.DataFrame, target: str, bad: str, *, both: bool = True) -> tuple[pd.DataFrame, pd.Series]:
    """Features without the target column, and the target as 0/1 (1 where it equals ``bad``). Training needs
    ``both`` outcomes; a recent sample being monitored may hold only goods (or only bads) and still be read."""
    import numpy as np
    import pandas as pd

    if target not in frame.columns:
        raise ValidationError(f"column not found; columns are {list(frame.columns)}", field=target)
    frame = frame.copy()
    raw = frame.pop(target)
    if raw.isna().any():
        raise ValidationError(f"{int(raw.isna().sum())} rows have no target value", field=target)
    labels = raw.astype(str).str.removesuffix(".0") if pd.api.types.is_float_dtype(raw) else raw.astype(str)
    values = set(labels)
    if bad not in values and (both or len(values) == 2):  # two values, neither bad: a mistyped bad value
        raise ValidationError(f"bad value {bad!r} never occurs; values are {sorted(values)[:10]}", field=target)
    if len(values) > 2 or (both and len(values) != 2):
        raise ValidationError(f"target must be binary, found {labels.nunique()} values", field=target)
    y = pd.Series(np.where(labels == bad, 1, 0), index=frame.index, name="bad")
    return frame, y


def load(name: str, *, include_leaky: bool = False) -> Dataset:
    """Load a bundled data set by name; leaky columns (the old grade and price) are dropped by default."""
    if name not in DATASETS:
        raise ValidationError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}", field="dataset")
    spec = DATASETS[name]
    with resources.as_file(resources.files("openice.datasets") / "data" / spec.file) as path:
        frame, y = read_labelled(path, spec.target, spec.bad)
    if not include_leaky:
        frame = frame.drop(columns=list(spec.leaky))
    return Dataset(name=name, frame=frame, target=y, leaky=spec.leaky)
