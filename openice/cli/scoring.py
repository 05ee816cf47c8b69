"""`openice model ...`: train, score, report, monitor, export-sql and promote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from openice.cli.common import Commands, JsonOption, console, fail, messages, output_path, print_json
from openice.datasets import DATASETS, load, read_labelled, read_table, split_target
from openice.errors import OpeniceError, ValidationError

if TYPE_CHECKING:  # imported where used: the CLI starts without pandas
    import pandas as pd

model_app = Commands(help="Credit assessment: train, score, explain and monitor models.", no_args_is_help=True)
CHUNK = 100_000
FIGURES = ("auc", "gini", "ks", "brier", "ece", "n", "bad_rate")


def _figures(metrics: dict[str, Any]) -> dict[str, float | int]:
    """The headline figures of a metrics summary as JSON numbers (the summary may hold NumPy scalars)."""
    return {k: int(metrics[k]) if k == "n" else float(metrics[k]) for k in FIGURES if k in metrics}


def _special_codes(items: list[str]) -> dict[str, list[float]]:
    """``FEATURE=V1,V2`` options into {feature: [codes]}; the features themselves are checked against the data."""
    codes: dict[str, list[float]] = {}
    for item in items:
        name, sep, values = (part.strip() for part in item.partition("="))
        if not sep or not name or not values:
            raise ValidationError(f"expected FEATURE=VALUE[,VALUE...], got {item!r}", field="special")
        for value in values.split(","):
            try:
                codes.setdefault(name, []).append(float(value))
            except ValueError:
                raise ValidationError(f"special code {value.strip()!r} is not a number", field=name) from None
    return codes


@model_app.command()
def train(
    out: Path = typer.Option(..., help="Package directory to create."),
    data: Path | None = typer.Option(None, help="A CSV or Parquet file with a binary target column."),
    target: str | None = typer.Option(None, help="Name of the target column (with --data)."),
    bad: str | None = typer.Option(None, help="The target value that means bad (with --data)."),
    dataset: str | None = typer.Option(None, help=f"A bundled data set: {' | '.join(DATASETS)}."),
    include_leaky: bool = typer.Option(False, help="Keep a bundled set's leaky columns (old grade and price)."),
    drop: list[str] = typer.Option([], help="Columns not to use as features (repeatable)."),
    special: list[str] = typer.Option(
        [],
        help="Special values of a numeric feature, binned apart: "
        "FEATURE=V1,V2 (repeatable), e.g. months_since_delinquency=-1,999.",
    ),
    date_column: str | None = typer.Option(
        None,
        help="The application-date column (not a feature; recorded for "
        "monitoring by month). Default: the data's only date column, if any.",
    ),
    allow: list[str] = typer.Option(
        [],
        help="Use a column the screening caught (an identifier, constant, leaky or a near copy of another) "
        "as a feature all the same (repeatable).",
    ),
    no_trend: list[str] = typer.Option(
        [],
        "--no-trend",
        help="Bin a numeric feature without a monotonic trend (repeatable); by default bins follow one.",
    ),
    test_size: float = typer.Option(0.2, help="Share held out as the test sample, at least 0 and below 1 (0 = none)."),
    refit: bool = typer.Option(
        True,
        help="After evaluation, refit the model that scores on every row (test sample included); "
        "--no-refit keeps the model fitted on the training part.",
    ),
    pdo: float = typer.Option(20.0, help="Points to double the odds."),
    base_points: float = typer.Option(600.0, help="Score at the base odds."),
    base_odds: float = typer.Option(50.0, help="Good:bad odds at the base score."),
    inner_folds: int = typer.Option(4, help="Inner CV folds for OOF predictions and tuning."),
    seed: int = typer.Option(0),
    registry: Path | None = typer.Option(None, help="Also register the package in this registry directory."),
    champion: bool = typer.Option(False, help="Mark the registered package as champion."),
    as_json: JsonOption = False,
) -> None:
    """Train the scorecard and the champion, write a model package."""
    from openice.scoring.model import TrainConfig
    from openice.scoring.package import register
    from openice.scoring.train import train_package

    try:
        if dataset:
            ds = load(dataset, include_leaky=include_leaky)
            frame, y = ds.frame, ds.target
            source = {"dataset": dataset, "include_leaky": include_leaky}
        elif data and target and bad is not None:
            frame, y = read_labelled(data, target, bad)
            source = {"file": data.name, "target": target, "bad": bad}
        else:
            raise ValidationError("give --dataset, or --data with --target and --bad", field="data")
        if not 0 <= test_size < 1:
            raise ValidationError(
                f"{test_size:g} is not a share of the rows: give at least 0 and below 1", field="test_size"
            )
        missing = [c for c in drop if c not in frame.columns]
        if missing:
            raise ValidationError(f"no such columns: {missing}", field="drop")
        frame = frame.drop(columns=list(drop))
        cfg = TrainConfig(
            base_points=base_points,
            base_odds=base_odds,
            pdo=pdo,
            inner_folds=inner_folds,
            seed=seed,
            special=_special_codes(special),
            no_trend=tuple(no_trend),
        )
        with messages.status("training (inner CV, scorecard + LightGBM + linear)..."):
            trained = train_package(
                frame,
                y,
                out,
                cfg=cfg,
                test_size=test_size,
                source=source,
                date_column=date_column,
                allow=allow,
                refit=refit,
            )
        for finding in trained.findings:
            verdict = "used as allowed" if finding.allowed else f"left out (--allow {finding.column} to use it)"
            typer.echo(f"warning: {finding.column}: {finding.check}: {finding.why}; {verdict}", err=True)
        version = register(out, registry, champion=champion) if registry else None
        evaluated = {name: _figures(trained.metrics[name]) for name in ("oof", "test") if name in trained.metrics}
        if as_json:
            print_json(
                {
                    "package": str(out),
                    "hash": trained.package_hash,
                    "metrics": evaluated,
                    "refit": trained.refit,
                    "rows": trained.rows,
                    "screening": [finding.to_json() for finding in trained.findings],
                    "registry": None if registry is None else {"path": str(registry), "version": version},
                }
            )
            return
        messages.print(f"package {out} [bold]{trained.package_hash[:16]}[/bold]")
        for name, m in evaluated.items():
            console.print(
                f"{name:>4}: AUC {m['auc']:.4f}  KS {m['ks']:.4f}  Brier {m['brier']:.4f}  "
                f"ECE {m['ece']:.4f}  (n={m['n']})"
            )
        rows = trained.rows
        console.print(
            f"the package scores with a model refit on all {rows['final']} rows after evaluation"
            if trained.refit
            else f"the package scores with the model fitted on the {rows['final']} training rows (no refit)"
        )
        if version is not None:
            messages.print(f"registered as version {version} in {registry}")
    except OpeniceError as err:
        fail(err)


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix.lower() in {".parquet", ".pq"}:
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


@model_app.command()
def score(
    package: Path = typer.Argument(..., help="Package (or registry) directory."),
    input: Path = typer.Option(..., "--input", help="CSV or Parquet of applications."),
    output: Path = typer.Option(..., "--output", help="CSV or Parquet to write."),
    target: str | None = typer.Option(None, help="Target column, to print AUC, KS and Brier."),
    bad: str | None = typer.Option(None, help="The target value that means bad."),
    strict: bool = typer.Option(
        False, help="Refuse an input that lacks a feature column (by default it is scored as missing, with a warning)."
    ),
    as_json: JsonOption = False,
) -> None:
    """Score a file: input columns plus pd, score, grade, reason_1..reason_4 and flags."""
    import pandas as pd

    from openice.scoring.loaded_model import Scorer
    from openice.scoring.metrics import summary

    try:
        scorer = Scorer.load(package)
        frame, y = read_table(input, "input", integers=True), None
        absent = [name for name in scorer.feature_names if name not in frame.columns]
        if absent and strict:
            raise ValidationError(f"lacks the feature columns {', '.join(absent)}", field=str(input))
        if absent:
            typer.echo(
                f"warning: {input}: {len(absent)} of {len(scorer.feature_names)} feature columns are absent and "
                f"scored as missing on every row: {', '.join(absent)} (--strict refuses such a file)",
                err=True,
            )
        if target:
            if bad is None:
                raise ValidationError("--target needs --bad", field="bad")
            y = split_target(frame, target, bad)[1]
        parts = []
        with Progress(console=messages, transient=True) as progress:
            task = progress.add_task("scoring", total=len(frame))
            for start in range(0, len(frame), CHUNK):
                parts.append(scorer.score_frame(frame.iloc[start : start + CHUNK]))
                progress.advance(task, min(CHUNK, len(frame) - start))
        scored = pd.concat(parts) if parts else scorer.score_frame(frame)
        _write(pd.concat([frame, scored], axis=1), output_path(output))
        m = None if y is None else _figures(summary(y.to_numpy(), scored["pd"].to_numpy()))
        if as_json:
            print_json({"rows": len(frame), "output": str(output), "absent_features": absent, "metrics": m})
            return
        messages.print(f"scored {len(frame)} rows -> {output}")
        if m is not None:
            console.print(f"AUC {m['auc']:.4f}  KS {m['ks']:.4f}  Brier {m['brier']:.4f}  ECE {m['ece']:.4f}")
    except OpeniceError as err:
        fail(err)


@model_app.command()
def report(
    package: Path = typer.Argument(..., help="Package directory."),
    out: Path | None = typer.Option(None, help="Directory for report.html and report.json."),
) -> None:
    """Write the HTML and JSON model report."""
    from openice.scoring.report import write_report

    try:
        html, js = write_report(package, out)
        messages.print(f"wrote {html} and {js}")
    except OpeniceError as err:
        fail(err)


def _outcomes(
    frame: pd.DataFrame, metadata: dict[str, Any], target: str | None, bad: str | None
) -> tuple[pd.DataFrame, Any, dict[str, str | None]]:
    """The input without its outcome column, the outcomes (1 = bad; None when unknown) and the column and bad value
    used (None when none): the ``--target`` given, else the package's own target column when the input has it."""
    from openice.scoring.monitor import outcome_column

    trained = outcome_column(metadata)
    if target is None and trained is not None and trained[0] in frame.columns:
        target, bad = trained
    if target is None:
        return frame, None, {"target": None, "bad": None}
    if bad is None:
        if trained is None or trained[0] != target:
            raise ValidationError("--target needs --bad", field="bad")
        bad = trained[1]
    features, y = split_target(frame, target, bad, both=False)
    return features, y.to_numpy(), {"target": target, "bad": bad}


@model_app.command()
def monitor(
    package: Path = typer.Argument(..., help="Package (or registry) directory."),
    input: Path = typer.Option(..., "--input", help="Recent applications (CSV or Parquet)."),
    by: str | None = typer.Option(None, help="'month' (of the application date) or a column to group by."),
    date_column: str | None = typer.Option(
        None,
        help="Application date column for --by month (default: the one "
        "recorded in the package, else the input's only date column).",
    ),
    target: str | None = typer.Option(
        None,
        help="Outcome column, for bad rate, AUC, KS and calibration (default: the column the package was "
        "trained on, when the input has it).",
    ),
    bad: str | None = typer.Option(None, help="The target value that means bad (default: the package's)."),
    html: Path | None = typer.Option(None, "--html", help="Also write the monitoring report as HTML to this file."),
    json_out: Path | None = typer.Option(None, "--json-out", help="Also write the results as JSON to this file."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON instead of the table")] = False,
) -> None:
    """PSI of the score and CSI of each feature against the training reference (watch 0.1, act 0.25); with
    outcomes, bad rate, AUC, KS and calibration by PD band against the training figures."""
    from openice.scoring.loaded_model import Scorer
    from openice.scoring.monitor import monitor as run_monitor
    from openice.scoring.monitor import training_figures

    try:
        scorer = Scorer.load(package)
        frame, y, used = _outcomes(read_table(input), scorer.metadata, target, bad)
        rows = run_monitor(scorer, frame, by=by, date_column=date_column, y=y)
    except OpeniceError as err:
        fail(err)
    if html:
        from openice.scoring.monitor_report import render_html

        about = {
            "package_hash": scorer.package_hash,
            "created_at": scorer.metadata.get("created_at", ""),
            "input": input.name,
            "by": by,
            **used,
        }
        output_path(html).write_text(render_html(rows, about, training_figures(scorer.metadata)), encoding="utf-8")
        messages.print(f"wrote {html}")
    if json_out:
        output_path(json_out).write_text(json.dumps(rows, indent=1))
        messages.print(f"wrote {json_out}")
    if as_json:
        print_json(rows)
        return
    table = Table("group", "n", "score PSI", "status", "features to act", "features to watch")
    if y is not None:
        for column in ("bad rate", "AUC", "KS"):
            table.add_column(column)
    for r in rows:
        cells = [
            r["group"],
            str(r["n"]),
            f"{r['score_psi']:.4f}",
            r["score_status"],
            ", ".join(r["features_to_act"]),
            ", ".join(r["features_to_watch"]),
        ]
        if y is not None:
            o = r["outcomes"]
            cells += ["n/a" if o[k] is None else f"{o[k]:.4f}" for k in ("bad_rate", "auc", "ks")]
        table.add_row(*cells)
    console.print(table)


@model_app.command("export-sql")
def export_sql(
    package: Path = typer.Argument(..., help="Package (or registry) directory."),
    table: str = typer.Option("applications", help="Table or view holding the applications."),
    out: Path | None = typer.Option(None, help="Write the SQL here instead of printing it."),
) -> None:
    """The scorecard as one SELECT with a CASE per feature (DuckDB and PostgreSQL)."""
    from openice.scoring.loaded_model import Scorer
    from openice.scoring.sql import scorecard_sql

    try:
        sql = scorecard_sql(Scorer.load(package).model.scorecard, table)
    except OpeniceError as err:
        fail(err)
    if out:
        output_path(out).write_text(sql + "\n")
        messages.print(f"wrote the scorecard as SQL over {table} to {out}")
    else:
        typer.echo(sql)


@model_app.command()
def promote(registry: Path = typer.Argument(...), version: int = typer.Argument(...)) -> None:
    """Mark a registered version as the champion."""
    from openice.scoring.package import promote as do_promote

    try:
        do_promote(registry, version)
        messages.print(f"version {version} is now champion in {registry}")
    except OpeniceError as err:
        fail(err)
