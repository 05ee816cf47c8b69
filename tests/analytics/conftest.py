"""Shared, expensive fixtures: the hand-worked portfolio (built once per source database and test
worker) and one Spark session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.analytics.portfolio import build, seeded, source_engine


@pytest.fixture(scope="session")
def portfolio(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        Callable[[str], Engine]]:
    """`portfolio("sqlite")` or `portfolio("postgres")`: the hand-worked portfolio, built on first use."""
    built: dict[str, Engine] = {}
    with ExitStack() as stack:
        def get(kind: str) -> Engine:
            if kind not in built:
                engine = stack.enter_context(source_engine(kind, tmp_path_factory, request))
                build(seeded(engine), engine)
                built[kind] = engine
            return built[kind]

        yield get


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("openice-tests").config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    yield session
    session.stop()
