"""Benchmark: server time and CPU per page of every front-end (the operator console, the collections desk, the
institution portal and the borrower app) on the demo book, each against the JSON API calls that carry the same data,
measured in the same run in alternation.

    .venv/bin/python -m bench.web                 # the 8,000-applicant demo book (built first: several minutes)
    .venv/bin/python -m bench.web --quick         # the default 800-applicant demo book, fewer rounds
    .venv/bin/python -m bench.web --workdir DIR   # reuse a demo already built with `openice demo --workdir DIR`

Pages and API calls run in-process through the same ASGI test client, each front signed in as a person of its role
(a session cookie) and its API calls made with a key of the same role and tenant (the portal as the institution that
funded the loan timed, the app as that loan's borrower), so the client's own cost is the same on both sides. A
page's ratio is its time over the sum of the API calls it replaces (a loan page shows the loan and its transactions:
two calls). The goal: p99 at most 50 ms and at most 2x the API. Pages no API call carries (the dashboard, the
ledger, end of day, the models page with the champion's monitoring over every decision it made, the portal's
book, the app's messages) are reported without a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.machine import describe, machine_facts

ROOT = Path(__file__).resolve().parents[1]
P99_GOAL_MS, RATIO_GOAL = 50.0, 2.0


def build_demo(workdir: Path, borrowers: int) -> None:
    subprocess.run(
        [str(ROOT / ".venv/bin/openice"), "demo", "--borrowers", str(borrowers), "--workdir", str(workdir)],
        check=True,
        env={**os.environ, "COLUMNS": "200"},
        stdout=subprocess.DEVNULL,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the default demo size and 40 rounds")
    parser.add_argument("--borrowers", type=int, default=None, help="demo applicants (default 8000; --quick 800)")
    parser.add_argument("--rounds", type=int, default=None, help="calls of each page and API set (default 200)")
    parser.add_argument("--workdir", type=Path, default=None, help="an existing demo to reuse")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated page labels (e.g. 'console: models'): time those alone, print them, write no results",
    )
    args = parser.parse_args()
    borrowers = args.borrowers or (800 if args.quick else 8000)
    rounds = args.rounds or (40 if args.quick else 200)
    workdir = args.workdir or Path(f"/tmp/openice-bench-web-{borrowers}")
    if not (workdir / "openice.db").exists():
        print(f"building the {borrowers:,}-applicant demo in {workdir} ...", flush=True)
        build_demo(workdir, borrowers)
    os.environ["OPENICE_PII_KEY"] = (workdir / "pii.key").read_text().strip()

    from fastapi.testclient import TestClient

    from openice.access.keys import ApiKeys
    from openice.access.users import Users
    from openice.api.settings import Settings
    from openice.storage.engine import make_engine, migrate
    from openice.storage.uow import EngineUnits
    from openice.web.site import create_site

    db = f"sqlite:///{workdir / 'openice.db'}"
    engine = make_engine(db)
    migrate(engine)  # as `openice serve` does: a demo built before the latest migration is brought up to date
    password = "bench-password-0123"
    stamp = int(time.time())
    users, keys = Users(EngineUnits(engine)), ApiKeys(EngineUnits(engine))
    registry = workdir / "registry"  # the demo's model as the champion, which the models page monitors
    if not (registry / "registry.json").exists():
        from openice.scoring.package import register

        register(workdir / "model", registry, champion=True)
    settings = Settings(db=db, rate_limit_per_second=1e9, rate_limit_burst=1e9, model_registry=str(registry))
    site = create_site(settings, engine=engine)

    def signed_in(front: str, role: str, tenant: str) -> tuple[TestClient, TestClient]:
        """A session on `front` for a new person of `role`, and an API client with a key of the same role and
        tenant: both sides see the same rows."""
        name = f"bench-{front}-{stamp}"
        users.create(name, password, role, tenant)
        page = TestClient(site)
        token = re.search(r'name="form_token" value="([^"]+)"', page.get(f"/{front}/login").text)
        assert token
        data = {"username": name, "password": password, "form_token": token[1]}
        signed = page.post(f"/{front}/login", data=data, follow_redirects=False)
        assert signed.status_code == 303, signed.text
        key = keys.create(role, tenant, f"bench.web {front}")["secret"]
        return page, TestClient(site, headers={"Authorization": f"Bearer {key}"})

    console, api = signed_in("console", "operator", "platform")
    loans = api.get("/v1/loans", params={"limit": 50, "status": "active"}).json()["items"]
    picked = loans[len(loans) // 2]
    loan = picked["id"]
    cases = api.get("/v1/collections/cases", params={"status": "open", "limit": 1}).json()["items"]
    case = cases[0]["id"] if cases else None
    portal, funder = signed_in("portal", "institution", picked["original_funder"])
    app, borrower = signed_in("app", "borrower", picked["borrower_id"])
    closed = date.fromisoformat(api.get("/v1/business-date").json()["business_date"]) - timedelta(days=1)
    quarter = f"{closed.year}Q{(closed.month - 1) // 3 + 1}"

    # (label, page client, path, API client, the API calls carrying the same data)
    pairs: list[tuple[str, TestClient, str, TestClient, list[str]]] = [
        ("console: loans", console, "/console/loans?status=active", api, ["/v1/loans?limit=50&status=active"]),
        (
            "console: a loan",
            console,
            f"/console/loans/{loan}",
            api,
            [f"/v1/loans/{loan}", f"/v1/loans/{loan}/transactions"],
        ),
        ("desk: queue", console, "/desk/", api, ["/v1/collections/queue?limit=100", "/v1/collections/summary"]),
        ("console: dashboard", console, "/console/", api, []),
        ("console: ledger", console, "/console/ledger", api, []),
        ("console: ledger, one account", console, "/console/ledger?account=funding_cash", api, []),
        ("console: end of day", console, "/console/eod", api, []),
        ("console: models", console, "/console/models", api, []),
        ("portal: offers", portal, "/portal/", funder, ["/v1/offers?status=sent&limit=50"]),
        ("portal: book", portal, "/portal/book", funder, []),
        (
            "portal: settings",
            portal,
            "/portal/settings",
            funder,
            [f"/v1/institutions/{picked['original_funder']}", "/v1/products"],
        ),
        (
            "portal: figures",
            portal,
            f"/portal/figures?quarter={quarter}",
            funder,
            [f"/v1/portfolio/metrics?quarter={quarter}"],
        ),
        ("app: home", app, "/app/", borrower, ["/v1/loans?limit=50", "/v1/credit-lines?limit=50"]),
        ("app: a loan", app, f"/app/loans/{loan}", borrower, [f"/v1/loans/{loan}", f"/v1/loans/{loan}/transactions"]),
        ("app: messages", app, "/app/messages", borrower, []),
    ]
    if case is not None:
        pairs.insert(3, ("desk: a case", console, f"/desk/cases/{case}", api, [f"/v1/collections/cases/{case}"]))
    only = {label.strip() for label in args.only.split(",") if label.strip()}
    unknown = only - {label for label, *_ in pairs}
    if unknown:
        parser.error(f"--only: no page {sorted(unknown)}; the pages are {[label for label, *_ in pairs]}")
    pairs = [p for p in pairs if not only or p[0] in only]

    def timed(call: Callable[[], Any]) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        answer = call()
        assert answer.status_code == 200, (answer.status_code, answer.text[:300])
        return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000

    rows = []
    for label, page, path, api_client, calls in pairs:
        for _ in range(5):  # warm the statement caches and the templates
            page.get(path)
            for c in calls:
                api_client.get(c)
        page_ms, page_cpu, api_ms, api_cpu = [], [], [], []
        for _ in range(rounds):  # alternate, so drift in the machine's load hits both sides alike
            w, c = timed(lambda page=page, path=path: page.get(path))
            page_ms.append(w)
            page_cpu.append(c)
            if calls:
                w = c = 0.0
                for call in calls:
                    dw, dc = timed(lambda api_client=api_client, call=call: api_client.get(call))
                    w, c = w + dw, c + dc
                api_ms.append(w)
                api_cpu.append(c)
        row: dict[str, Any] = {
            "page": label,
            "path": path,
            "p50_ms": round(statistics.median(page_ms), 2),
            "p99_ms": round(percentile(page_ms, 0.99), 2),
            "cpu_ms_per_page": round(statistics.median(page_cpu), 2),
            "api_calls": calls,
        }
        if calls:
            row.update(
                api_p50_ms=round(statistics.median(api_ms), 2),
                api_p99_ms=round(percentile(api_ms, 0.99), 2),
                api_cpu_ms=round(statistics.median(api_cpu), 2),
                ratio_p50=round(statistics.median(page_ms) / statistics.median(api_ms), 2),
                ratio_p99=round(percentile(page_ms, 0.99) / percentile(api_ms, 0.99), 2),
            )
        row["meets_goal"] = row["p99_ms"] <= P99_GOAL_MS and row.get("ratio_p99", 0) <= RATIO_GOAL
        rows.append(row)
        ratio = f"  vs API p50 {row['api_p50_ms']} ms: {row['ratio_p50']}x (p99 {row['ratio_p99']}x)" if calls else ""
        timing = f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  cpu {row['cpu_ms_per_page']} ms"
        print(f"{label:30} {timing}{ratio}")

    if only:
        return
    with engine.connect() as conn:
        from sqlalchemy import text

        book = conn.execute(text("SELECT count(*) FROM loans")).scalar_one()
    doc = {
        "date": date.today().isoformat(),
        "command": "python -m bench.web" + (" --quick" if args.quick else ""),
        "borrowers": borrowers,
        "loans": book,
        "rounds": rounds,
        "goal": {"p99_ms": P99_GOAL_MS, "ratio_p99": RATIO_GOAL},
        "pages": rows,
        "machine": machine_facts(),
    }
    out = ROOT / "bench" / "results"
    name_ = "web.quick" if args.quick else "web"
    (out / f"{name_}.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = [
        f"# web pages benchmark, {doc['date']}",
        "",
        f"{describe(doc['machine'])}; demo of {borrowers:,} applicants ({book:,} loans), SQLite, {rounds} rounds "
        f"per page in alternation with its API calls; in-process ASGI client. Command: `{doc['command']}`.",
        "",
        "| page | p50 ms | p99 ms | CPU ms/page | API p50 ms | API p99 ms | ratio p50 | ratio p99 | goal met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['page']} | {r['p50_ms']} | {r['p99_ms']} | {r['cpu_ms_per_page']} | {r.get('api_p50_ms', '—')} | "
            f"{r.get('api_p99_ms', '—')} | {r.get('ratio_p50', '—')} | {r.get('ratio_p99', '—')} | "
            f"{'yes' if r['meets_goal'] else 'no'} |"
        )
    (out / f"{name_}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / (name_ + '.json')} and .md")


if __name__ == "__main__":
    main()
