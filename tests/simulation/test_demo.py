"""A small demo end to end: the books balance, the metrics are plausible, every funder stayed in its box."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from openice.demo import run_demo
from openice.simulation.scenario import Scenario


def test_small_demo_end_state(tmp_path: Path, model: Path) -> None:
    demo = run_demo(
        tmp_path / "demo",
        Scenario(borrowers=150, months=3, seed=11),
        on_stage=lambda _: None,
        write_report=False,
        model=model,
    )
    sim = demo.run.result
    assert demo.trial_balance == 0
    assert demo.breaches == []
    assert len(demo.quarters) == 2
    q1 = demo.quarters[0]
    assert q1["loans_originated"].total() == len(sim.loan_borrower) > 50
    assert 0 < q1["day1_delinquency_rate"].total() < 0.4
    assert 0.5 < q1["collection_rate_30d"].total() <= 1
    assert q1["cumulative_registered_users"].total() == 150
    approved = sum(b.outcome == "approved" for b in sim.borrowers)
    assert 0.5 < approved / 150 < 1
    assert {r["grade"] for r in demo.calibration} >= {"B", "C"}
    for row in demo.calibration:
        assert 0 < row["model_pd"] < 0.3 and 0 <= row["realised_12m"] <= 1
    # fraud rings: the ring's 2nd member shares a mobile (review), the 3rd+ a device (reject)
    assert demo.fraud["applications"] >= 3 and demo.fraud["caught"] >= demo.fraud["applications"] - demo.fraud["rings"]
    # every loan overdue at the end has one open collection case at its bucket
    with demo.run.engine.connect() as conn:
        overdue = dict(
            conn.execute(
                text("SELECT bucket, COUNT(*) FROM loans WHERE status = 'active' AND dpd >= 1 GROUP BY bucket")
            ).all()
        )
    assert {s["stage"]: s["cases"] for s in demo.collections if s["stage"] != "WO"} == overdue and overdue
