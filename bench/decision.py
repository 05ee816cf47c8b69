"""Benchmark: assessment + routing latency per application, and batch fund matching with HiGHS.

    .venv/bin/python -m bench.decision                 # 5,000 applications; 100,000 drawdowns x 50 institutions
    .venv/bin/python -m bench.decision --quick         # 1,000 applications; 10,000 drawdowns x 20 institutions
    .venv/bin/python -m bench.decision --package DIR   # score with this model package instead of training one

Latency: one thread, in process, per application: fraud rules (with the IsolationForest anomaly score),
the champion model's score (a package trained on the bundled credit_data set; bureau attributes are rows of
it), policy cut-offs, the line and its price, then the real-time ranking of the institutions for a drawdown.
The baseline is the same path scoring anomalies with scikit-learn's `score_samples`.
SQLite: the same through `Decisioning.apply` (registration excluded), reading and writing a database file.
Batch: the greedy waterfall (what real-time routing does, in arrival order) and the HiGHS assignment of
the same drawdowns, objectives side by side; the Lagrangian bound shows how far from optimal either is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from bench.machine import describe, machine_facts
from openice.datasets import load
from openice.decisioning.anomaly import AnomalyModel
from openice.decisioning.assess import assess
from openice.decisioning.domain import AssessmentInput, FraudFacts
from openice.decisioning.pii import PiiVault
from openice.decisioning.policy import Policy, monthly_payment, price
from openice.decisioning.service import Decisioning
from openice.decisioning.synthetic import REGIONS, application, reference_matrix, registration
from openice.matching.boxes import Drawdowns
from openice.matching.institutions import CreditBox, Institution
from openice.matching.optimize import Capacity
from openice.matching.router import Router
from openice.matching.service import product_currencies, product_fees, solve_batch
from openice.servicing.products import PPM, demo_products
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits

ROOT = Path(__file__).resolve().parents[1]

TODAY = date(2026, 6, 10)
PRODUCTS = {p.code: p for p in demo_products()}


def scorer_from(package: Path | None):  # type: ignore[no-untyped-def]
    """The given package, or one trained now on the bundled credit_data set (not timed)."""
    from openice.scoring.loaded_model import Scorer
    from openice.scoring.model import TrainConfig
    from openice.scoring.train import train_package

    if package is None:
        package = Path(tempfile.mkdtemp()) / "credit_data"
        data = load("credit_data")
        train_package(data.frame, data.target, package, cfg=TrainConfig(inner_folds=2))
    return Scorer.load(package)


class SklearnAnomaly:
    """The baseline: scikit-learn's own scoring of one row."""

    def __init__(self, forest, model_hash: str) -> None:  # type: ignore[no-untyped-def]
        self.forest, self.model_hash = forest, model_hash

    def score(self, x: list[float]) -> float:
        return float(-self.forest.score_samples(np.array([x]))[0])


def institutions(m: int, rng: np.random.Generator, volume: float) -> list[Institution]:
    """A varied market: mostly capital-light, some guaranteed, one own balance sheet; quotas ~70% of demand."""
    out = []
    provinces = [r[1] for r in REGIONS]
    for j in range(m):
        model = "on-balance-sheet" if j == 0 else ("capital-heavy" if rng.random() < 0.3 else "capital-light")
        quota = int(volume * 0.7 / m * rng.uniform(0.5, 1.5))
        box = CreditBox(
            max_pd=float(rng.uniform(0.08, 0.4)),
            min_amount=int(rng.choice([0, 100_000])),
            max_amount=int(rng.choice([5_000_000, 20_000_000])),
            max_tenor=int(rng.choice([12, 24, 36])),
            provinces=None if rng.random() < 0.5 else tuple(rng.choice(provinces, 4, replace=False)),
            min_age=int(rng.choice([18, 22])),
            max_age=int(rng.choice([55, 60, 65])),
            min_income=int(rng.choice([0, 300_000, 600_000])),
            max_dti=float(rng.uniform(0.4, 0.8)),
            products=None if rng.random() < 0.6 else ("CASH-EI",),
        )
        out.append(
            Institution(
                code=f"FI{j:02d}",
                name=f"Institution {j}",
                business_model=model,
                funding_cost=Decimal(str(round(rng.uniform(0.02, 0.06), 4))),
                rate=Decimal(str(round(rng.uniform(0.04, 0.09), 4))),
                credit_box=box,
                daily_quota=quota,
                monthly_quota=quota * 22,
                min_monthly_volume=int(quota * 0.5) if rng.random() < 0.2 else 0,
                max_avg_pd=float(rng.uniform(0.06, 0.2)),
                priority=int(rng.integers(1, 100)),
                guarantee_payout_dpd=90 if model == "capital-heavy" else None,
            )
        )
    return out


def percentile_ms(samples: list[float], q: float) -> float:
    return round(float(np.percentile(samples, q)) * 1000, 3)


def latency(
    n: int,
    scorer,
    anomaly,
    router: Router,
    bureau: pd.DataFrame,  # type: ignore[no-untyped-def]
    seed: int,
) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds per application for assess + routing of a drawdown when approved. CPU time leaves out
    the time the thread waited for a core, which on a shared machine is most of the tail."""
    rng = np.random.default_rng(seed)
    policy = Policy(max_pd=0.4)
    rows = bureau.sample(n, replace=True, random_state=seed).to_dict("records")
    times, cpu = [], []
    for k in range(n):
        reg = registration(rng, k, TODAY)
        app = application(rng, "CASH-EI", 12)
        app["bureau"] = {key: (None if isinstance(v, float) and np.isnan(v) else v) for key, v in rows[k].items()}
        facts = FraudFacts(
            applications_24h_by_id=1,
            applications_24h_by_mobile=1,
            applications_24h_by_device=1,
            other_identities_with_mobile=int(rng.random() < 0.02),
        )
        age = TODAY.year - reg["date_of_birth"].year
        inputs = AssessmentInput(app, age, reg["province"], TODAY, facts)
        start, start_cpu = time.perf_counter(), time.thread_time()
        decision = assess(inputs, PRODUCTS["CASH-EI"], scorer, policy, anomaly)
        if decision.line is not None:
            line = decision.line
            payment = monthly_payment(app["requested_amount"], line.rate_ppm / PPM, 12)
            router.rank(
                Drawdowns.one(
                    amount=min(app["requested_amount"], line.amount),
                    tenor=12,
                    score=decision.score,
                    pd=decision.pd,
                    age=age,
                    province=reg["province"],
                    income=app["income_monthly"],
                    product="CASH-EI",
                    rate=line.rate_ppm / PPM,
                    dti=(app["existing_debt_monthly"] + payment) / app["income_monthly"],
                )
            )
        times.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    return times, cpu


def sqlite_latency(n: int, scorer, anomaly: AnomalyModel, bureau: pd.DataFrame) -> list[float]:  # type: ignore[no-untyped-def]
    """Seconds per `Decisioning.apply` on a SQLite file (facts queried, application, decision and line written)."""
    path = Path(tempfile.mkdtemp()) / "bench.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine, TODAY)
    for product in demo_products():
        Servicing(EngineUnits(engine)).create_product(product)
    service = Decisioning(EngineUnits(engine), scorer, PiiVault(os.urandom(32)), Policy(max_pd=0.4), anomaly)
    rng = np.random.default_rng(3)
    rows = bureau.sample(n, replace=True, random_state=3).to_dict("records")
    borrowers = [service.register(registration(rng, k, TODAY))["borrower_id"] for k in range(n)]
    times = []
    for k, borrower in enumerate(borrowers):
        app = application(rng, "CASH-EI", 12)
        app["bureau"] = {key: (None if isinstance(v, float) and np.isnan(v) else v) for key, v in rows[k].items()}
        start = time.perf_counter()
        service.apply(borrower, app)
        times.append(time.perf_counter() - start)
    engine.dispose()
    return times


def batch(n: int, m: int, scorer, bureau: pd.DataFrame, seed: int, sample: int) -> dict:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    rows = bureau.sample(n, replace=True, random_state=seed).reset_index(drop=True)
    scored = scorer.score_frame(rows, reasons=False)
    grid = Policy().pricing
    grades = scored["grade"].to_numpy()
    product = np.where(rng.random(n) < 0.7, "CASH-EI", "CASH-EP")
    rate = np.array(
        [price(PRODUCTS[p], grid.get(g, Decimal("0.30")))[0] / PPM for p, g in zip(product, grades, strict=True)]
    )
    tenor = np.array([rng.choice(PRODUCTS[p].tenors) for p in product])
    amount = (rng.lognormal(np.log(800_000), 0.7, n) // 100 * 100).clip(50_000, 20_000_000)
    income = rng.lognormal(np.log(900_000), 0.5, n) // 100 * 100
    debt = income * rng.uniform(0, 0.3, n)
    payment = amount * (rate / 12) / (1 - (1 + rate / 12) ** -tenor)
    frame = pd.DataFrame(
        {
            "amount": amount,
            "tenor": tenor,
            "score": scored["score"],
            "pd": scored["pd"],
            "age": rows["Age"].fillna(35),
            "province": rng.choice([r[1] for r in REGIONS], n),
            "income": income,
            "dti": (debt + payment) / income,
            "product": product,
            "rate": rate,
        }
    )
    insts = institutions(m, rng, float(amount.sum()))
    products = list(PRODUCTS.values())
    return solve_batch(
        Drawdowns.from_frame(frame),
        insts,
        product_fees(products),
        product_currencies(products),
        Capacity.of(insts),
        penalty=0.02,
        sample=sample,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--applications", type=int)
    parser.add_argument("--drawdowns", type=int)
    parser.add_argument("--institutions", type=int)
    parser.add_argument("--sample", type=int, default=10_000, help="drawdowns per LP (see openice.matching.optimize)")
    parser.add_argument("--package", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    n_apps = args.applications or (1_000 if args.quick else 5_000)
    n_draw = args.drawdowns or (10_000 if args.quick else 100_000)
    n_inst = args.institutions or (20 if args.quick else 50)

    scorer = scorer_from(args.package)
    bureau = load("credit_data").frame
    from sklearn.ensemble import IsolationForest

    reference = reference_matrix()
    forest = IsolationForest(n_estimators=100, max_samples=256, random_state=7).fit(reference)
    compiled = AnomalyModel.from_sklearn(forest)
    baseline_anomaly = SklearnAnomaly(forest, compiled.model_hash)
    products = list(PRODUCTS.values())
    router = Router(
        institutions(n_inst, np.random.default_rng(1), 1e12), product_fees(products), product_currencies(products)
    )

    latency(200, scorer, compiled, router, bureau, seed=99)  # warm caches (pricing, numpy)
    ours, ours_cpu = latency(n_apps, scorer, compiled, router, bureau, seed=1)
    base, base_cpu = latency(max(n_apps // 5, 200), scorer, baseline_anomaly, router, bureau, seed=1)
    stored = sqlite_latency(max(n_apps // 5, 200), scorer, compiled, bureau)
    result = batch(n_draw, n_inst, scorer, bureau, seed=5, sample=args.sample)

    p50, p99, b99 = percentile_ms(ours, 50), percentile_ms(ours, 99), percentile_ms(base, 99)
    gap = (result["lp_bound"] - result["objective"]) / result["lp_bound"]
    results = [
        dict(
            metric="assess_and_route_p50_ms",
            value=p50,
            unit="ms",
            target=None,
            baseline="same path, sklearn score_samples for the anomaly",
            baseline_value=percentile_ms(base, 50),
            ratio=round(percentile_ms(base, 50) / p50, 2),
        ),
        dict(
            metric="assess_and_route_p99_ms",
            value=p99,
            unit="ms",
            target=5,
            baseline="same path, sklearn score_samples for the anomaly",
            baseline_value=b99,
            ratio=round(b99 / p99, 2),
        ),
        dict(
            metric="assess_and_route_cpu_p99_ms",
            value=percentile_ms(ours_cpu, 99),
            unit="ms",
            target=5,
            baseline="same path, sklearn score_samples for the anomaly",
            baseline_value=percentile_ms(base_cpu, 99),
            ratio=round(percentile_ms(base_cpu, 99) / percentile_ms(ours_cpu, 99), 2),
        ),
        dict(
            metric="apply_sqlite_p99_ms",
            value=percentile_ms(stored, 99),
            unit="ms",
            target=None,
            baseline="in-process assess+route p99",
            baseline_value=p99,
            ratio=round(percentile_ms(stored, 99) / p99, 2),
        ),
        dict(
            metric=f"batch_{n_draw}x{n_inst}_highs_seconds",
            value=round(result["seconds"], 2),
            unit="s",
            target=30,
            baseline="greedy waterfall seconds",
            baseline_value=round(result["greedy_seconds"], 2),
            ratio=round(result["seconds"] / result["greedy_seconds"], 2),
        ),
        dict(
            metric=f"batch_{n_draw}x{n_inst}_expected_margin",
            value=round(result["objective"]),
            unit="minor units",
            target=None,
            baseline="greedy waterfall",
            baseline_value=round(result["greedy_objective"]),
            ratio=round(result["objective"] / result["greedy_objective"], 4),
        ),
        dict(
            metric=f"batch_{n_draw}x{n_inst}_gap_to_bound",
            value=round(gap, 5),
            unit="fraction",
            target=None,
            baseline="greedy gap to the same bound",
            baseline_value=round((result["lp_bound"] - result["greedy_objective"]) / result["lp_bound"], 5),
            ratio=None,
        ),
    ]
    doc = {
        "name": "decision",
        "date": date.today().isoformat(),
        "machine": machine_facts(),
        "sizes": {"applications": n_apps, "drawdowns": n_draw, "institutions": n_inst, "sample": args.sample},
        "model_package": scorer.package_hash,
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "decision.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = ["| metric | value | unit | target | baseline | baseline value | ratio |", "|---|---|---|---|---|---|---|"]
    lines += [
        f"| {r['metric']} | {r['value']} | {r['unit']} | {r['target'] if r['target'] is not None else ''} | "
        f"{r['baseline']} | {r['baseline_value']} | {r['ratio'] if r['ratio'] is not None else ''} |"
        for r in results
    ]
    side = (
        f"\nBatch of {n_draw:,} drawdowns x {n_inst} institutions: HiGHS {result['objective']:,.0f} "
        f"(funded {result['funded']:,}, shortfall {result['shortfall']:,.0f}) vs greedy "
        f"{result['greedy_objective']:,.0f} (funded {result['greedy_funded']:,}, shortfall "
        f"{result['greedy_shortfall']:,.0f}); upper bound {result['lp_bound']:,.0f}; "
        f"gain {result['gain']:,.0f} minor units ({result['objective'] / result['greedy_objective'] - 1:+.2%})."
    )
    header = (
        f"# decision benchmark, {doc['date']}\n\n{describe(doc['machine'])} at the end, sizes {doc['sizes']}, "
        f"`{' '.join(['python -m bench.decision'] + sys.argv[1:])}`\n\n"
    )
    (args.out / "decision.md").write_text(header + "\n".join(lines) + "\n" + side + "\n")
    print("\n".join(lines))
    print(side)


if __name__ == "__main__":
    main()
