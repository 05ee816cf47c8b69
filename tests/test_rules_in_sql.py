"""The rules end of day runs as generated SQL give, on every engine, exactly what their Python definitions give."""

from __future__ import annotations

import random

from sqlalchemy import Engine, text

from openice.money import mul_div_half_up, mul_div_half_up_sql
from openice.servicing import ledger
from openice.servicing.buckets import bucket_sql, delinquency_bucket


def big(value: int) -> str:
    return f"CAST({value} AS BIGINT)"


def test_bucket_ladder_and_half_up_rounding_match_python(engine: Engine) -> None:
    cases = [(dpd, write_off) for write_off in (90, 180, 365) for dpd in range(0, 400, 7)]
    rnd = random.Random(5)
    triples = [(rnd.randint(0, 10**9), rnd.randint(0, 10**6), rnd.randint(1, 10**6)) for _ in range(200)]
    triples += [(1, 1, 2), (3, 1, 2), (5, 1, 10), (15, 1, 10)]  # exact halves round up
    with engine.connect() as conn:
        buckets = conn.execute(
            text(" UNION ALL ".join(f"SELECT {d}, {w}, {bucket_sql(str(d), str(w))}" for d, w in cases))
        ).all()
        rounded = conn.execute(
            text(
                " UNION ALL ".join(
                    f"SELECT {a}, {b}, {c}, {mul_div_half_up_sql(big(a), big(b), big(c))}" for a, b, c in triples
                )
            )
        ).all()
    assert sorted((d, w, delinquency_bucket(d, w)) for d, w in cases) == sorted(tuple(r) for r in buckets)
    assert sorted((a, b, c, mul_div_half_up(a, b, c)) for a, b, c in triples) == sorted(tuple(r) for r in rounded)


def test_account_choices_name_the_same_account_in_sql(engine: Engine) -> None:
    choices = (ledger.FEE_BILLED, ledger.PENALTY_BILLED, ledger.FUNDER_INTEREST, ledger.WRITE_OFF_LOSS)
    with engine.connect() as conn:
        for choice in choices:
            for holds in (True, False):
                sql = f"SELECT {choice.sql('1 = 1' if holds else '1 = 0')}"
                assert conn.execute(text(sql)).scalar_one() == choice.pick(holds)
