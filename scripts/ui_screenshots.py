"""Screenshots of the front-ends' main pages at phone (390 px) and desktop (1280 px) widths, for docs/ui.md.

    .venv/bin/python scripts/ui_screenshots.py [--workdir DIR]

Serves a demo book (built with `openice demo --workdir DIR` first when DIR has none) on a loopback port, signs in
as each role in Debian's Chromium, and writes docs/ui/FRONT-PAGE-WIDTH.png: phone and desktop in English, phone in
Chinese (which needs a CJK font, such as Debian's fonts-wqy-microhei).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = {"phone": (390, 844, "en"), "desktop": (1280, 900, "en"), "phone-zh": (390, 844, "zh-CN")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/openice-bench-web-800"))
    args = parser.parse_args()
    if not (args.workdir / "openice.db").exists():
        subprocess.run([str(ROOT / ".venv/bin/openice"), "demo", "--workdir", str(args.workdir)], check=True)
    os.environ["OPENICE_PII_KEY"] = (args.workdir / "pii.key").read_text().strip()

    import uvicorn
    from playwright.sync_api import sync_playwright

    from openice.access.users import Users
    from openice.api.settings import Settings
    from openice.storage.engine import make_engine, migrate
    from openice.storage.uow import EngineUnits
    from openice.web.site import create_site

    db = f"sqlite:///{args.workdir / 'openice.db'}"
    engine = make_engine(db)
    migrate(engine)
    password = secrets.token_urlsafe(12)
    suffix = secrets.token_hex(3)
    users = Users(EngineUnits(engine))
    users.create(f"ops-{suffix}", password, "operator", "platform", display_name="Operator")
    users.create(f"agent-{suffix}", password, "collections", "platform", display_name="Agent")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    site = create_site(Settings(db=db), engine=engine)
    server = uvicorn.Server(uvicorn.Config(site, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    out = ROOT / "docs" / "ui"
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for width, (w, h, lang) in WIDTHS.items():
            for front, user, pages in (
                ("console", f"ops-{suffix}", ["", "loans", "eod", "ledger"]),
                ("desk", f"agent-{suffix}", [""]),
            ):
                context = browser.new_context(viewport={"width": w, "height": h})
                context.add_cookies([{"name": "openice_lang", "value": lang, "url": base}])
                page = context.new_page()
                page.goto(f"{base}/{front}/login")
                page.fill("#username", user)
                page.fill("#password", password)
                page.click("form button[type=submit]")
                page.wait_for_url(re.compile(rf"{re.escape(base)}/{front}/"))
                for name in pages:
                    page.goto(f"{base}/{front}/{name}")
                    page.wait_for_timeout(400)  # charts draw after load
                    page.screenshot(path=str(out / f"{front}-{name or 'home'}-{width}.png"), full_page=False)
                if front == "console":
                    page.goto(f"{base}/console/loans?status=active")
                    page.click("#loans tbody a >> nth=0")
                    page.screenshot(path=str(out / f"console-loan-{width}.png"))
                if front == "desk":
                    link = page.locator("#queue tbody a")
                    if link.count():
                        link.first.click()
                        page.screenshot(path=str(out / f"desk-case-{width}.png"))
        browser.close()
    server.should_exit = True
    print(f"wrote {len(list(out.glob('*.png')))} screenshots to {out}")


if __name__ == "__main__":
    main()
