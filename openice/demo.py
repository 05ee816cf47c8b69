"""The full-platform demo: a year of business on the embedded default, from model training to disclosure report.

It creates a fresh SQLite database, trains the platform's model on the bundled LendingClub loans, onboards five
institutions, then runs the simulator day by day (applications, decisions, matching, drawdowns, repayments, end
of day) and gathers the quarterly metrics, the calibration and fraud proofs and the quarterly report.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from openice.analytics.metrics import MetricSet, Period
from openice.collections.service import Collections
from openice.servicing.summary import portfolio_summary
from openice.simulation.platform import train_demo_model
from openice.simulation.population import World
from openice.simulation.report import calibration, fraud_catch, institution_breaches, metrics
from openice.simulation.scenario import Run, Scenario, run_scenario
from openice.storage.uow import EngineUnits
from openice.tenancy import collections_desk


@dataclass
class Demo:
    run: Run
    db: str
    workdir: Path
    quarters: list[MetricSet]
    calibration: list[dict]
    fraud: dict
    breaches: list[str]
    trial_balance: int
    collections: list[dict] = field(default_factory=list)  # open collection cases by stage at the end
    report: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def quarters_of(start: date, end: date) -> list[Period]:
    """Calendar quarters from `start` to the last closed day `end`, the last one cut at `end`."""
    out = []
    q = Period.quarter(f"{start.year}Q{(start.month - 1) // 3 + 1}")
    while q.start <= end:
        out.append(Period(q.start, min(q.end, end)))
        nxt = q.end + timedelta(days=1)
        q = Period.quarter(f"{nxt.year}Q{(nxt.month - 1) // 3 + 1}")
    return out


def run_demo(
    workdir: Path,
    scenario: Scenario,
    on_stage: Callable[[str], None] = print,
    on_day: Callable[[date], None] | None = None,
    write_report: bool = True,
    model: Path | None = None,
) -> Demo:
    """Everything the `openice demo` command does, returned for printing (and for the test's checks).

    `model` reuses an already trained package instead of training one (the tests share one).
    """
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    db = f"sqlite:///{workdir / 'openice.db'}"
    if model is None:
        on_stage("training the platform model on the bundled LendingClub loans (9,857 real loans)")
        model = train_demo_model(workdir / "model")
    seconds["train"] = time.perf_counter() - clock
    on_stage("fitting the simulator to the real data (Gaussian copula, ground-truth risk model)")
    world = World.fit()
    seconds["fit_world"] = time.perf_counter() - clock - seconds["train"]
    on_stage(f"running {scenario.months} months of business for {scenario.borrowers:,} applicants, day by day")
    run = run_scenario(db, scenario, model, world, on_day)
    seconds["simulate"] = time.perf_counter() - clock - seconds["train"] - seconds["fit_world"]
    last = run.result.end - timedelta(days=1)
    periods = quarters_of(scenario.start, last)
    demo = Demo(
        run,
        db,
        workdir,
        [metrics(run.engine, p) for p in periods],
        calibration(run.result),
        fraud_catch(run.result),
        institution_breaches(run.engine, run.platform.institutions),
        portfolio_summary(run.engine)["trial_balance"],
        Collections(EngineUnits(run.engine)).summary(collections_desk(None)),
        seconds=seconds,
    )
    if write_report:
        on_stage(f"writing the quarterly report for {periods[-1].label}")
        demo.report = _quarterly_report(run, periods[-1], workdir / "report")
    seconds["total"] = time.perf_counter() - clock
    return demo


def _quarterly_report(run: Run, period: Period, out: Path) -> dict[str, Path]:
    from openice.analytics.backends import DuckDBBackend, snapshot
    from openice.analytics.report import quarterly, write_report

    backend = DuckDBBackend.from_arrow(snapshot(run.engine))
    try:
        return write_report(
            quarterly(backend, Period.quarter(f"{period.start.year}Q{(period.start.month + 2) // 3}"), period.end), out
        )
    finally:
        backend.close()


@dataclass(frozen=True)
class Login:
    """A ready sign-in for one front-end of a served demo."""

    front: str
    username: str
    password: str
    who: str


def demo_logins(db: str) -> list[Login]:
    """One user per role on the demo book, with a fresh random password each: an operator, the platform's
    collections agent, the institution that funded the first loan, and that loan's borrower."""
    from openice.access.users import Users
    from openice.servicing import queries as servicing
    from openice.storage.engine import make_engine
    from openice.tenancy import PLATFORM, Principal, Role, Scope, Window

    engine = make_engine(db)
    units = EngineUnits(engine)
    with engine.connect() as conn:
        first = servicing.loans(
            Scope(conn, Principal("demo", Role.OPERATOR, PLATFORM)), Window(1), None, None, None, None
        )
    loan = first.items[0]
    made = []
    for front, username, role, tenant, who in (
        ("console", "operator", "operator", PLATFORM, "operator"),
        ("desk", "agent", "collections", PLATFORM, "the platform's collections agent"),
        (
            "portal",
            loan.original_funder.lower(),
            "institution",
            loan.original_funder,
            f"institution {loan.original_funder}",
        ),
        (
            "app",
            f"borrower-{loan.borrower_id}".lower()[:64],
            "borrower",
            loan.borrower_id,
            f"borrower of loan {loan.id}",
        ),
    ):
        password = secrets.token_urlsafe(12)
        Users(units).create(username, password, role, tenant, display_name=who, created_by="demo")
        made.append(Login(front, username, password, who))
    return made
