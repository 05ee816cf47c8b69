"""`openice demo` (a simulated year of the whole platform) and `openice whatif` (a policy change replayed)."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress, TimeElapsedColumn
from rich.table import Table

from openice.cli.common import console, messages
from openice.money import fmt
from openice.storage.uow import EngineUnits

if TYPE_CHECKING:  # the scenario pulls in the models; load it only when a command runs
    from openice.simulation.scenario import Scenario


Borrowers = Annotated[int, typer.Option(help="Simulated applicants over the run")]
Months = Annotated[int, typer.Option(help="Months of business")]
Seed = Annotated[int, typer.Option(help="Seed of the simulated world (same seed, same people)")]


def _progress(total: int) -> tuple[Progress, Any]:
    progress = Progress(*Progress.get_default_columns(), TimeElapsedColumn(), console=messages)
    task = progress.add_task("business days", total=total)

    def on_day(day: date) -> None:
        progress.update(task, advance=1, description=f"business day {day}")

    return progress, on_day


def demo(
    borrowers: Borrowers = 800,
    months: Months = 12,
    seed: Seed = 7,
    workdir: Annotated[Path, typer.Option(help="Where the database, model and report go (replaced)")] = Path(
        "openice-demo"
    ),
    serve: Annotated[
        bool,
        typer.Option(
            "--serve", help="Serve the API and the front-ends on the demo database afterwards, with a login for each"
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="Port for --serve")] = 8000,
) -> None:
    """Train, onboard five institutions and run a simulated year of the whole platform; print what happened."""
    from openice.demo import run_demo
    from openice.simulation.platform import demo_pii_key
    from openice.simulation.scenario import Scenario

    scenario = Scenario(borrowers=borrowers, months=months, seed=seed)
    progress, on_day = _progress(scenario.days)
    with progress:
        result = run_demo(
            workdir, scenario, on_stage=lambda s: progress.console.print(f"[bold]{s}[/bold]"), on_day=on_day
        )
    _print_quarters(result)
    _print_proofs(result)
    if result.collections:
        from openice.cli.collections import summary_table

        console.print(summary_table(result.collections))
    sim = result.run.result
    console.print(
        f"{len(sim.loan_borrower):,} loans funded, {sim.repayments:,} repayments, {sim.prepayments:,} "
        f"prepayments; drawdowns: {dict(sim.drawdowns)}; ledger trial balance: "
        f"[bold]{result.trial_balance}[/bold]"
    )
    console.print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
    console.print(f"\nwhere to look:\n  database   {result.db}\n  model      {workdir / 'model'}")
    for kind, path in result.report.items():
        console.print(f"  report     {path} ({kind})")
    console.print(
        f"  metrics    .venv/bin/openice metrics --db {result.db}\n"
        f"  collections .venv/bin/openice collections queue --db {result.db}\n"
        f"  what-if    .venv/bin/openice whatif --change FILE.yaml (see docs/simulation.md)"
    )
    key_file = workdir / "pii.key"
    key_file.write_text(demo_pii_key(seed) + "\n")
    key_file.chmod(0o600)
    console.print(f"  PII key    {key_file} (demo only: the key the demo's personal data is encrypted with)")
    if not serve:
        console.print(
            f"  API        run again with --serve, or: OPENICE_PII_KEY=$(cat {key_file}) "
            f".venv/bin/openice serve --db {result.db}"
        )
        return
    _serve(result.db, port, demo_pii_key(seed))


def _serve(db: str, port: int, pii_key: str) -> None:
    from openice.access.keys import ApiKeys
    from openice.cli.api import serve as serve_api
    from openice.decisioning.pii import ENV_KEY
    from openice.demo import demo_logins

    os.environ[ENV_KEY] = pii_key  # the workers read it from the environment
    key = ApiKeys(EngineUnits(_engine(db))).create("operator", "platform", "demo")
    base = f"http://127.0.0.1:{port}"
    console.print(f"\nserving on {base} (API docs at {base}/docs); operator API key: {key['secret']}")
    for login in demo_logins(db):
        console.print(
            f"  {base}/{login.front}/  sign in as [bold]{login.username}[/bold] "
            f"password [bold]{login.password}[/bold]  ({login.who})",
            highlight=False,
        )
    console.print("press Ctrl+C to stop")
    serve_api(db=db, host="127.0.0.1", port=port, workers=1, config=None)


def _engine(db: str) -> Any:
    from openice.storage.engine import make_engine

    return make_engine(db)


def _print_quarters(result: Any) -> None:
    from openice.analytics.report import HEADLINE, fmt_value

    table = Table(title="quarterly metrics (analytics.compute on DuckDB)")
    table.add_column("metric")
    for m in result.quarters:
        table.add_column(f"{m.period.start:%Y} Q{(m.period.start.month + 2) // 3}", justify="right")
    for name, label in HEADLINE:
        table.add_row(label, *[fmt_value(m[name].total(), m[name].unit, m.currency) for m in result.quarters])
    table.add_row(
        "Revenue (the institutions' interest and recoveries apart)",
        *[fmt_value(m.total_revenue, "money", m.currency) for m in result.quarters],
    )
    console.print(table)


def _print_proofs(result: Any) -> None:
    table = Table(title="calibration: platform model PD vs realised 12-month default rate (simulated loans)")
    for col in ("grade", "people", "model PD", "true PD", "dues", "defaults", "realised", "gap"):
        table.add_column(col, justify="right")
    for r in result.calibration:
        table.add_row(
            r["grade"],
            f"{r['borrowers']:,}",
            f"{r['model_pd']:.2%}",
            f"{r['true_pd']:.2%}",
            f"{r['due_events']:,}",
            f"{r['defaults']:,}",
            f"{r['realised_12m']:.2%}",
            f"{r['gap']:+.2%}",
        )
    console.print(table)
    f = result.fraud
    rate = f"{f['rate']:.0%}" if f["rate"] is not None else "n/a"
    console.print(
        f"fraud rings: {f['rings']} rings, {f['applications']} applications, {f['caught']} stopped by the "
        f"decisioning rules ({rate})"
    )
    breaches = result.breaches
    console.print(
        f"institutions inside their credit boxes and quotas: "
        f"{'[green]yes[/green]' if not breaches else f'[red]{len(breaches)} breaches[/red]'}"
    )


ROWS = (
    ("applications", "applications", "count"),
    ("approval_rate", "approval rate", "ratio"),
    ("loans", "loans funded", "count"),
    ("volume", "volume", "money"),
    ("expected_loss", "expected loss (platform PD x LGD)", "money"),
    ("realised_loss", "realised loss (principal owed by defaulters)", "money"),
    ("day1_delinquency", "Day-1 delinquency", "ratio"),
    ("revenue", "platform revenue", "money"),
)


def _cell(value: Any, unit: str) -> str:
    if value is None:
        return "n/a"
    return {"count": f"{value:,}", "ratio": f"{value:.2%}", "money": fmt(int(round(value)), "CNY")}[unit]


def whatif(
    change: Annotated[Path, typer.Option("--change", help="YAML: policy / institutions / behaviour changes")],
    borrowers: Borrowers = 400,
    months: Months = 12,
    seed: Seed = 7,
) -> None:
    """Replay the same simulated applicants under a changed policy, pricing grid or credit box, side by side."""
    from openice.simulation.scenario import Scenario, apply_change, load_change

    base = Scenario(borrowers=borrowers, months=months, seed=seed)
    changed = apply_change(base, load_change(change))
    messages.print("training the platform model, then running baseline and changed worlds side by side")
    results = compare(base, changed)
    table = Table(title=f"what-if: {change} ({borrowers:,} applicants, {months} months, seed {seed})")
    for col in ("", "baseline", "changed", "difference"):
        table.add_column(col, justify="right")
    for key, label, unit in ROWS:
        a, b = results[0][key], results[1][key]
        diff = None if a is None or b is None else b - a
        table.add_row(
            label,
            _cell(a, unit),
            _cell(b, unit),
            "n/a" if diff is None else ("+" if diff >= 0 else "") + _cell(diff, unit),
        )
    console.print(table)


def compare(base: Scenario, changed: Scenario, model: Path | None = None) -> list[dict[str, Any]]:
    """Outcomes of the two scenarios, each on its own fresh database, in two processes at once; the model package
    is trained first unless one is given."""
    from openice.simulation.platform import train_demo_model

    with tempfile.TemporaryDirectory(prefix="openice-whatif-") as tmp:
        model = model or train_demo_model(Path(tmp) / "model")
        urls = [f"sqlite:///{Path(tmp) / name}.db" for name in ("baseline", "changed")]
        # spawn, not fork: forking a process with threads (pytest-xdist, a server) can deadlock the children
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(pool.map(_outcomes, urls, (base, changed), (model, model)))


def _outcomes(url: str, scenario: Scenario, model: Path) -> dict[str, Any]:
    from openice.simulation.report import outcomes
    from openice.simulation.scenario import run_scenario

    run = run_scenario(url, scenario, model)
    return outcomes(run.engine, run.result)


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.command()(whatif)
