"""Where the metric SQL runs: DuckDB (embedded default), PostgreSQL (directly) or Apache Spark.

DuckDB and Spark read a snapshot of the servicing tables — Arrow tables pulled through SQLAlchemy,
or a directory of Parquet files (one `<table>.parquet` per table, as `write_parquet` makes and
the benchmark generates). PostgreSQL runs the SQL where the data lives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, inspect, text

from openice.analytics.definitions import for_dialect
from openice.errors import ValidationError

I64 = pa.int64()
F64 = pa.float64()
STR = pa.string()
BOOL = pa.bool_()

# The columns analytics reads, table by table (docs/analytics.md lists them). `OPTIONAL` ones may be absent: the
# products give the book's currency, the decisioning stage's tables the users, the PDs stored with the decisions
# behind the loans (drawdown -> credit line) and the funding costs, the funding stage's tables the asset-backed deals
# issued (their pools' loans and tranches); `loan_pd` (loan_id, pd_ppm, grade) is optional
# model-monitoring input that takes the place of the stored PDs.
TABLES: dict[str, dict[str, pa.DataType]] = {
    "loans": {
        "id": I64,
        "borrower_id": STR,
        "product_code": STR,
        "principal": I64,
        "tenor": I64,
        "disbursed_day": I64,
        "original_funder": STR,
        "funder": STR,
        "business_model": STR,
        "channel": STR,
        "status": STR,
        "closed_day": I64,
    },
    "installments": {"loan_id": I64, "seq": I64, "due_day": I64, "principal": I64, "interest": I64, "fee": I64},
    "allocations": {"loan_id": I64, "seq": I64, "value_day": I64, "component": STR, "amount": I64},
    "journal_entries": {"id": I64, "business_day": I64, "kind": STR},
    "journal_lines": {"entry_id": I64, "loan_id": I64, "account": STR, "amount": I64},
    "portfolio_snapshots": {"as_of_day": I64, "loan_id": I64, "status": STR, "dpd": I64, "principal_outstanding": I64},
    "products": {"code": STR, "currency": STR},
    "borrowers": {"id": STR, "registered_day": I64},
    "credit_lines": {"id": STR, "borrower_id": STR, "approved_day": I64, "pd": F64, "grade": STR},
    "drawdowns": {"loan_id": I64, "line_id": STR},
    "institutions": {"code": STR, "funding_cost_ppm": I64, "kind": STR},
    "abs_deals": {
        "id": I64,
        "funder": STR,
        "currency": STR,
        "derecognise": BOOL,
        "cut_off_day": I64,
        "pool_balance": I64,
    },
    "abs_pool_loans": {"loan_id": I64, "deal_id": I64, "joined_day": I64, "left_day": I64},
    "abs_tranches": {"deal_id": I64, "balance": I64, "coupon": STR},
}
OPTIONAL = (
    "products",
    "borrowers",
    "credit_lines",
    "drawdowns",
    "institutions",
    "abs_deals",
    "abs_pool_loans",
    "abs_tranches",
)
PD_SCHEMA = pa.schema([("loan_id", I64), ("pd_ppm", I64), ("grade", STR)])


class Backend(Protocol):
    """An engine that runs the canonical SQL (transpiled for its dialect)."""

    dialect: str

    def has_table(self, name: str) -> bool: ...

    def materialise(self, name: str, sql: str, *more: str) -> None:
        """Create temporary table `name` as `sql`, and append the rows of each of `more`."""
        ...

    def loan_ranges(self) -> list[tuple[int, int] | None]:
        """Loan-id ranges to build the installment facts in (`[None]`: in one go)."""
        ...

    def query(self, sql: str) -> list[dict[str, Any]]: ...

    def register(self, name: str, table: pa.Table) -> None: ...

    def close(self) -> None: ...


def _plain(value: Any) -> Any:
    """Engines return sums as HUGEINT, NUMERIC or DECIMAL: bring integers back to int."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def _rows(columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[dict[str, Any]]:
    names = list(columns)
    return [{k: _plain(v) for k, v in zip(names, row, strict=True)} for row in rows]


def book_version(engine: Engine) -> tuple[Any, ...]:
    """What the figures up to a closed day can still change with, on a migrated database: every booking (a
    backdated payment, a reversal) adds a journal entry, the institutions' funding costs weigh the blended cost and
    their kinds class the funding sources. Cheap: one index lookup and a few hundred institution rows."""
    with engine.connect() as conn:
        last_entry = conn.execute(text("SELECT MAX(id) FROM journal_entries")).scalar()
        costs = tuple(conn.execute(text("SELECT code, funding_cost_ppm, kind FROM institutions ORDER BY code")).all())
    return last_entry, costs


def snapshot(engine: Engine, tables: Iterable[str] = TABLES) -> dict[str, pa.Table]:
    """Read the analytics columns of each present table into Arrow, typed the same on every source."""
    present = set(inspect(engine).get_table_names())
    out: dict[str, pa.Table] = {}
    with engine.connect() as conn:
        for name in tables:
            if name not in present:
                continue
            schema = pa.schema(list(TABLES[name].items()))
            result = conn.execute(text(f"SELECT {', '.join(schema.names)} FROM {name}"))
            columns: list[Sequence[Any]] = list(zip(*result.fetchall(), strict=True)) or [[] for _ in schema.names]
            out[name] = pa.table(
                [pa.array(_typed(col, f.type), type=f.type) for col, f in zip(columns, schema, strict=True)],
                schema=schema,
            )
    return out


def _typed(column: Sequence[Any], kind: pa.DataType) -> Sequence[Any]:
    """SQLite keeps a boolean as 0 or 1, which Arrow does not take for a boolean."""
    return [None if v is None else bool(v) for v in column] if kind == BOOL else column


# Written sorted by these keys: an installment's allocations then sit side by side in a row group, so DuckDB's
# per-installment aggregate folds them before its hash tables are merged, and a loan-id range reads fewer row
# groups (4M loans: `compute` 6-7 % less CPU, bench/HISTORY.md).
SORT_KEYS: dict[str, list[tuple[str, str]]] = {
    "allocations": [("loan_id", "ascending"), ("seq", "ascending")],
    "installments": [("loan_id", "ascending"), ("seq", "ascending")],
}


def write_parquet(tables: dict[str, pa.Table], directory: Path) -> Path:
    """One `<name>.parquet` per table, the installment tables in loan and installment order (`SORT_KEYS`)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        keys = SORT_KEYS.get(name)
        pq.write_table(table.sort_by(keys) if keys else table, directory / f"{name}.parquet")
    return directory


def parquet_tables(directory: Path) -> dict[str, Path]:
    """The tables of a Parquet snapshot: `<name>.parquet` files or `<name>/` directories of parts."""
    if not directory.is_dir():
        raise ValidationError(f"{directory} is not a directory of Parquet tables", field="parquet")
    return _snapshot_tables({p.name: p for p in directory.iterdir()}, str(directory))


def _snapshot_tables(entries: dict[str, Any], where: str) -> dict[str, Any]:
    """The entries (by file name) of a snapshot directory that hold a table, by table name; it needs loans."""
    found = {
        name.removesuffix(".parquet"): entry
        for name, entry in entries.items()
        if name.removesuffix(".parquet") in (*TABLES, "loan_pd")
    }
    if "loans" not in found:
        raise ValidationError(f"{where} has no loans table", field="parquet")
    return found


def is_uri(location: str | Path) -> bool:
    """A file-system URI (s3a://, hdfs://, abfss://, file://...) rather than a local path."""
    return isinstance(location, str) and "://" in location


class DuckDBBackend:
    dialect = "duckdb"
    loans_per_part = 500_000

    def __init__(self, threads: int | None = None, memory_limit: str | None = None) -> None:
        import duckdb

        self.con = duckdb.connect()
        self.con.execute("SET preserve_insertion_order = false")  # every metric aggregates: row order is free memory
        # The build-side optimizer builds the per-loan facts' joins on the wide loans side, whose as-of filter it
        # estimates at a fifth of its rows: without it, 10M loans took 3-12 % less CPU and 0.8 GiB less memory in
        # three alternating pairs, the same numbers (bench/HISTORY.md).
        self.con.execute("SET disabled_optimizers = 'build_side_probe_side'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self._tables: set[str] = set()
        self._keep: list[pa.Table] = []

    @classmethod
    def from_arrow(cls, tables: dict[str, pa.Table], **kwargs: Any) -> DuckDBBackend:
        backend = cls(**kwargs)
        for name, table in tables.items():
            backend.register(name, table)
        return backend

    @classmethod
    def from_parquet(cls, directory: Path, **kwargs: Any) -> DuckDBBackend:
        backend = cls(**kwargs)
        for name, path in parquet_tables(directory).items():
            pattern = f"{path}/*.parquet" if path.is_dir() else str(path)
            backend.con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{pattern}')")
            backend._tables.add(name)
        return backend

    def has_table(self, name: str) -> bool:
        return name in self._tables

    def register(self, name: str, table: pa.Table) -> None:
        self._keep.append(table)
        self.con.register(name, table)
        self._tables.add(name)

    def materialise(self, name: str, sql: str, *more: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        for part in more:
            self.con.execute(f"INSERT INTO {name} {part}")
        self._tables.add(name)

    def loan_ranges(self) -> list[tuple[int, int] | None]:
        """Ranges of about `loans_per_part` loans, so that the installments ⋈ allocations hash tables stay
        small (bench/analytics.py)."""
        ((low, high, count),) = self.con.execute("SELECT MIN(id), MAX(id), COUNT(*) FROM loans").fetchall()
        parts = -(-count // self.loans_per_part) if count else 1
        if parts <= 1:
            return [None]
        step = -(-(high - low + 1) // parts)
        return [(lo, min(lo + step - 1, high)) for lo in range(low, high + 1, step)]

    def query(self, sql: str) -> list[dict[str, Any]]:
        cur = self.con.execute(sql)
        return _rows((d[0] for d in cur.description), cur.fetchall())

    def close(self) -> None:
        self.con.close()


class PostgresBackend:
    """Runs on the live database through one connection (temporary tables live as long as it)."""

    dialect = "postgres"

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValidationError(
                f"the postgres engine needs a PostgreSQL URL, not {engine.dialect.name}", field="engine"
            )
        self.conn = engine.connect()
        self._present = set(inspect(self.conn).get_table_names())

    def has_table(self, name: str) -> bool:
        return name in self._present

    def register(self, name: str, table: pa.Table) -> None:
        cols = ", ".join(f"{f.name} {'BIGINT' if pa.types.is_integer(f.type) else 'TEXT'}" for f in table.schema)
        self.conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        self.conn.execute(text(f"CREATE TEMP TABLE {name} ({cols})"))
        if table.num_rows:
            placeholders = ", ".join(f":{n}" for n in table.schema.names)
            self.conn.execute(text(f"INSERT INTO {name} VALUES ({placeholders})"), table.to_pylist())
        self._present.add(name)

    def materialise(self, name: str, sql: str, *more: str) -> None:
        self.conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        self.conn.execute(text(f"CREATE TEMP TABLE {name} AS {for_dialect(sql, self.dialect)}"))
        for part in more:
            self.conn.execute(text(f"INSERT INTO {name} {for_dialect(part, self.dialect)}"))
        self.conn.execute(text(f"ANALYZE {name}"))
        self._present.add(name)

    def query(self, sql: str) -> list[dict[str, Any]]:
        result = self.conn.execute(text(for_dialect(sql, self.dialect)))
        return _rows(result.keys(), result.fetchall())

    def loan_ranges(self) -> list[tuple[int, int] | None]:
        return [None]

    def close(self) -> None:
        self.conn.rollback()
        self.conn.close()


class SparkBackend:
    """Spark SQL over Parquet: `local[*]` on one machine, or a cluster by its master URL."""

    dialect = "spark"

    def __init__(self, master: str = "local[2]", spark: Any = None) -> None:
        if spark is None:
            from pyspark.sql import SparkSession

            spark = (
                SparkSession.builder.master(master)
                .appName("openice-analytics")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.shuffle.partitions", "8")
                .config("spark.sql.session.timeZone", "UTC")
                .getOrCreate()
            )
        self.spark = spark
        self._cached: list[Any] = []
        self._tables: set[str] = set()

    @classmethod
    def from_parquet(cls, directory: Path | str, master: str = "local[2]", spark: Any = None) -> SparkBackend:
        """A snapshot directory: a local (or mounted) path, or a URI that Spark's Hadoop file system lists and
        reads (`s3a://bucket/snapshot`, `hdfs://...`; the connector must be on the cluster's classpath)."""
        backend = cls(master, spark)
        tables = backend._list_uri(str(directory)) if is_uri(directory) else parquet_tables(Path(directory))
        for name, path in tables.items():
            backend.spark.read.parquet(str(path)).createOrReplaceTempView(name)
            backend._tables.add(name)
        return backend

    def _list_uri(self, uri: str) -> dict[str, str]:
        """The snapshot's tables under a URI, listed through the Hadoop file system Spark reads it with."""
        from py4j.protocol import Py4JJavaError

        path = self.spark.sparkContext._jvm.org.apache.hadoop.fs.Path(uri)
        try:
            fs = path.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())
            statuses = fs.listStatus(path)
        except Py4JJavaError as error:  # no file system for the scheme, or no such directory
            raise ValidationError(f"cannot list {uri}: {error.java_exception.toString()}", field="parquet") from None
        base = uri.rstrip("/")
        return _snapshot_tables({s.getPath().getName(): f"{base}/{s.getPath().getName()}" for s in statuses}, uri)

    def has_table(self, name: str) -> bool:
        return name in self._tables

    def register(self, name: str, table: pa.Table) -> None:
        """Typed by the table's own schema, row by row: a column that is all NULL, or an integer one with NULLs, stays
        what it is rather than what pandas would make of it."""
        kinds = ", ".join(f"{f.name} {'BIGINT' if pa.types.is_integer(f.type) else 'STRING'}" for f in table.schema)
        rows = [tuple(r.values()) for r in table.to_pylist()]
        self.spark.createDataFrame(rows, schema=kinds).createOrReplaceTempView(name)
        self._tables.add(name)

    def materialise(self, name: str, sql: str, *more: str) -> None:
        frame = self.spark.sql(for_dialect(sql, self.dialect))
        for part in more:
            frame = frame.unionByName(self.spark.sql(for_dialect(part, self.dialect)))
        frame = frame.cache()
        frame.count()
        frame.createOrReplaceTempView(name)
        self._cached.append(frame)
        self._tables.add(name)

    def query(self, sql: str) -> list[dict[str, Any]]:
        frame = self.spark.sql(for_dialect(sql, self.dialect))
        return _rows(frame.columns, (tuple(r) for r in frame.collect()))

    def loan_ranges(self) -> list[tuple[int, int] | None]:
        return [None]

    def close(self) -> None:
        for frame in self._cached:
            frame.unpersist()
        for name in self._tables:
            self.spark.catalog.dropTempView(name)
