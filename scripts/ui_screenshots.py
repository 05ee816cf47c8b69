"""Screenshots of the front-ends' main pages at phone (390 px) and desktop (1280 px) widths, in English and Chinese,
for docs/ui.md.

    .venv/bin/python scripts/ui_screenshots.py [--workdir DIR] [--only PREFIX,...]

Serves a copy of a demo book (built with `openice demo --workdir DIR` first when DIR has none; the demo itself is left
as it was) on a loopback port, signs in as each role (`openice.demo.demo_logins`) in Debian's Chromium, and writes
docs/ui/FRONT-PAGE-WIDTH.png for the operator console, the collections desk, the institution portal and the
borrower app. Chinese needs a CJK font, such as Debian's fonts-wqy-microhei. Before the pages are taken, every
institution is set to answer its offers by hand and the app's borrower draws on their line, so the portal has an
offer waiting with its investigation report.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = {
    "phone": (390, 844, "en"),
    "desktop": (1280, 900, "en"),
    "phone-zh": (390, 844, "zh-CN"),
    "desktop-zh": (1280, 900, "zh-CN"),
}
DRAWN = "1000"  # what the app's borrower draws (major units), within what their line has left
TENOR = "6"


def sign_in(
    browser: Any, base: str, front: str, username: str, password: str, viewport: tuple[int, int], lang: str
) -> Any:
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    context.add_cookies([{"name": "openice_lang", "value": lang, "url": base}])
    page = context.new_page()
    page.goto(f"{base}/{front}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(rf"{re.escape(base)}/{front}/"))
    return page


ONLY: tuple[str, ...] = ()  # shot names to take (by prefix); all when empty


def shot(page: Any, out: Path, name: str, full: bool = False) -> None:
    if ONLY and not name.startswith(ONLY):
        return
    page.wait_for_timeout(400)  # charts draw after load
    page.screenshot(path=str(out / f"{name}.png"), full_page=full)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/openice-bench-web-800"))
    parser.add_argument("--only", default="", help="comma-separated name prefixes (e.g. portal-,desk-performance)")
    args = parser.parse_args()
    global ONLY
    ONLY = tuple(prefix.strip() for prefix in args.only.split(",") if prefix.strip())
    if not (args.workdir / "openice.db").exists():
        subprocess.run([str(ROOT / ".venv/bin/openice"), "demo", "--workdir", str(args.workdir)], check=True)
    os.environ["OPENICE_PII_KEY"] = (args.workdir / "pii.key").read_text().strip()

    import httpx
    import uvicorn
    from playwright.sync_api import sync_playwright

    from openice.access.keys import ApiKeys
    from openice.access.users import Users
    from openice.api.settings import Settings
    from openice.demo import demo_logins
    from openice.storage.engine import make_engine, migrate
    from openice.storage.uow import EngineUnits
    from openice.web.site import create_site

    scratch = Path(tempfile.mkdtemp(prefix="openice-ui-"))
    with sqlite3.connect(args.workdir / "openice.db") as source, sqlite3.connect(scratch / "openice.db") as copy:
        source.backup(copy)
    db = f"sqlite:///{scratch / 'openice.db'}"
    engine = make_engine(db)
    migrate(engine)
    logins = {login.front: login for login in demo_logins(db)}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    site = create_site(Settings(db=db), engine=engine)
    server = uvicorn.Server(uvicorn.Config(site, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    operator = ApiKeys(EngineUnits(engine)).create("operator", "platform", "screenshots")["secret"]
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {operator}"})
    for institution in api.get("/v1/institutions", params={"limit": 100}).json()["items"]:
        put = api.put(f"/v1/institutions/{institution['code']}", json={**institution, "acceptance": "manual"})
        assert put.status_code == 200, put.text
    out = ROOT / "docs" / "ui"
    out.mkdir(parents=True, exist_ok=True)
    app = logins["app"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        # The borrower draws on their line; with every institution answering by hand, the offer waits in a portal.
        page = sign_in(browser, base, "app", app.username, app.password, (1280, 900), "en")
        page.click("#lines a.button >> nth=0")
        page.fill("#amount", DRAWN)
        page.select_option("#tenor", TENOR)
        page.click("#draw-form button[type=submit]")
        page.click("#confirm-form button[type=submit]")
        page.wait_for_url(re.compile(rf"{re.escape(base)}/app/drawdowns/"))
        drawdown = int(page.url.rsplit("/", 1)[1])
        page.context.close()
        offer = api.get("/v1/offers", params={"drawdown_id": drawdown}).json()["items"][0]
        funder, password = f"{offer['institution_code'].lower()}-desk", logins["app"].password
        Users(EngineUnits(engine)).create(
            funder, password, "institution", offer["institution_code"], display_name=funder
        )
        borrower = api.get("/v1/loans", params={"limit": 1}).json()["items"][0]["borrower_id"]  # as demo_logins
        decision = api.get("/v1/decisions", params={"borrower_id": borrower, "limit": 1}).json()["items"][0]["id"]
        mine = api.get("/v1/loans", params={"borrower_id": borrower, "status": "active", "limit": 1}).json()["items"]
        loan = (mine or api.get("/v1/loans", params={"borrower_id": borrower, "limit": 1}).json()["items"])[0]["id"]
        for width, (w, h, lang) in WIDTHS.items():
            for front, username, secret in (
                ("console", logins["console"].username, logins["console"].password),
                ("desk", logins["desk"].username, logins["desk"].password),
                ("portal", funder, password),
                ("app", app.username, app.password),
            ):
                page = sign_in(browser, base, front, username, secret, (w, h), lang)
                if front == "console":
                    for name in ["", "loans", "eod", "ledger"]:
                        page.goto(f"{base}/console/{name}")
                        shot(page, out, f"console-{name or 'home'}-{width}")
                    page.goto(f"{base}/console/loans?status=active")
                    page.click("#loans tbody a >> nth=0")
                    shot(page, out, f"console-loan-{width}")
                elif front == "desk":
                    shot(page, out, f"desk-home-{width}")
                    link = page.locator("#queue tbody a")
                    if link.count():
                        link.first.click()
                        shot(page, out, f"desk-case-{width}")
                    page.goto(f"{base}/desk/performance")
                    shot(page, out, f"desk-performance-{width}", full=True)
                elif front == "portal":
                    shot(page, out, f"portal-offers-{width}")
                    page.goto(f"{base}/portal/offers/{offer['id']}")
                    shot(page, out, f"portal-offer-{width}", full=True)
                    for name in ("book", "figures"):
                        page.goto(f"{base}/portal/{name}")
                        shot(page, out, f"portal-{name}-{width}", full=True)
                    page.goto(f"{base}/portal/settings")
                    highest_pd = float(page.input_value("#f-max_pd") or "10")
                    page.fill("#f-max_pd", f"{highest_pd * 0.6:g}")  # a tighter box: what it would have refused
                    page.click("#preview-button")
                    page.wait_for_selector("#preview")
                    shot(page, out, f"portal-settings-{width}", full=True)
                    for name in ("integration", "keys"):
                        page.goto(f"{base}/portal/{name}")
                        shot(page, out, f"portal-{name}-{width}", full=True)
                else:
                    shot(page, out, f"app-home-{width}", full=True)
                    page.goto(f"{base}/app/loans/{loan}")
                    shot(page, out, f"app-loan-{width}", full=True)
                    page.goto(f"{base}/app/decisions/{decision}")
                    shot(page, out, f"app-decision-{width}", full=True)
                    page.goto(f"{base}/app/")
                    page.click("#lines a.button >> nth=0")
                    page.fill("#amount", DRAWN)
                    page.select_option("#tenor", TENOR)
                    page.click("#draw-form button[type=submit]")
                    page.wait_for_selector("#preview")
                    shot(page, out, f"app-draw-{width}", full=True)
                    page.goto(f"{base}/app/messages")
                    shot(page, out, f"app-messages-{width}", full=True)
                page.context.close()
        browser.close()
    server.should_exit = True
    engine.dispose()
    shutil.rmtree(scratch)
    print(f"wrote {len(list(out.glob('*.png')))} screenshots to {out}")


if __name__ == "__main__":
    main()
