"""Shared, expensive fixtures: the hand-worked portfolio (built once per source database and test
worker) and one Spark session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import Engine

from openice.servicing.service import Servicing
from tests.analytics.portfolio import build, build_disclosure, build_funding, seeded, source_engine


def _built_on_use(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    build_on: Callable[[Servicing, Engine], Any],
) -> Iterator[Callable[[str], Engine]]:
    built: dict[str, Engine] = {}
    with ExitStack() as stack:

        def get(kind: str) -> Engine:
            if kind not in built:
                engine = stack.enter_context(source_engine(kind, tmp_path_factory, request))
                build_on(seeded(engine), engine)
                built[kind] = engine
            return built[kind]

        yield get


@pytest.fixture(scope="session")
def portfolio(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Engine]]:
    """`portfolio("sqlite")` or `portfolio("postgres")`: the hand-worked portfolio, built on first use."""
    yield from _built_on_use(request, tmp_path_factory, build)


@pytest.fixture(scope="session")
def disclosure_portfolio(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Engine]]:
    """`disclosure_portfolio("sqlite")` or `("postgres")`: the disclosure-convention portfolio (`build_disclosure`)."""
    yield from _built_on_use(request, tmp_path_factory, build_disclosure)


@pytest.fixture(scope="session")
def funding_portfolio(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Engine]]:
    """`funding_portfolio("sqlite")` or `("postgres")`: the funding-mix portfolio (`build_funding`)."""
    yield from _built_on_use(request, tmp_path_factory, build_funding)


# Spark tuned for a few hundred rows: no code generation to compile, no shuffle fan-out, a JVM that does
# not spend the test in the optimising JIT. About 3x faster per `compute` than the defaults here.
SMALL_DATA_SPARK = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
}


def _start_spark() -> Any:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("openice-tests")
    for key, value in SMALL_DATA_SPARK.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@pytest.fixture(scope="session")
def spark_starting() -> Iterator[Future[Any]]:
    """Start the JVM in the background, so it boots while a portfolio is being built."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(_start_spark)
        yield future
        if future.done() and not future.exception():
            future.result().stop()


@pytest.fixture(scope="session")
def spark(spark_starting: Future[Any]) -> Any:
    return spark_starting.result()
