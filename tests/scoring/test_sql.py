"""The exported SQL gives exactly the package's scorecard points, in DuckDB and in PostgreSQL."""

from __future__ import annotations

import os
import uuid

import duckdb
import numpy as np
import pandas as pd
import pytest

from openice.scoring.loaded_model import Scorer
from openice.scoring.sql import scorecard_sql

PG_URL = os.environ.get("OPENICE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _rows(credit) -> pd.DataFrame:
    frame = credit.frame.iloc[:400].copy()
    frame.loc[frame.index[:5], "Income"] = np.nan  # missing -> missing points
    frame.loc[frame.index[5], "Home"] = "castle"  # unseen -> Other bin
    frame.insert(0, "rid", np.arange(len(frame)))
    return frame


def _expected(scorer: Scorer, frame: pd.DataFrame) -> np.ndarray:
    return np.array([scorer.score(r, reasons=False).scorecard_points for r in frame.to_dict("records")])


def test_sql_matches_python_points_in_duckdb(scorer: Scorer, credit) -> None:
    frame = _rows(credit)
    con = duckdb.connect()
    con.register("src", frame)
    con.execute("CREATE TABLE apps AS SELECT * FROM src")
    sql = f"SELECT scorecard_points FROM ({scorecard_sql(scorer.model.scorecard, 'apps')}) s ORDER BY rid"
    got = con.execute(sql).df()["scorecard_points"].astype(float)
    assert np.array_equal(np.round(got.to_numpy(), 2), np.round(_expected(scorer, frame), 2))


def _pg_connect():
    import psycopg

    try:
        return psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5)
    except psycopg.OperationalError as err:
        if os.environ.get("OPENICE_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL is required (OPENICE_REQUIRE_PG=1) but unreachable: {err}")
        pytest.skip(f"PostgreSQL unreachable: {err}")


@pytest.mark.postgres
def test_sql_matches_python_points_in_postgres(scorer: Scorer, credit) -> None:
    frame = _rows(credit)
    table = f"apps_{uuid.uuid4().hex[:12]}"
    specs = {s.name: s for s in scorer.model.schema}
    cols = ", ".join(
        f'"{c}" {"TEXT" if c in specs and specs[c].kind == "categorical" else "DOUBLE PRECISION"}'
        for c in frame.columns
    )
    values = [
        [None if pd.isna(v) else (float(v) if isinstance(v, np.number) else v) for v in row]
        for row in frame.itertuples(index=False)
    ]
    with _pg_connect() as conn:
        try:
            conn.execute(f'CREATE TABLE "{table}" ({cols})')
            with conn.cursor() as cur:
                marks = ", ".join(["%s"] * len(frame.columns))
                cur.executemany(f'INSERT INTO "{table}" VALUES ({marks})', values)
            sql = f"SELECT scorecard_points FROM ({scorecard_sql(scorer.model.scorecard, table)}) s ORDER BY rid"
            got = np.array([float(r[0]) for r in conn.execute(sql).fetchall()])
        finally:
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    assert np.array_equal(np.round(got, 2), np.round(_expected(scorer, frame), 2))
