"""What the two dashboards' browser tests share: the reporting service under ``uvicorn`` on a
prepared store (the regency's in ``dashboard_regency``, the national view's in
``dashboard_national``), and a person at the page in headless Chromium: signing in with a token,
switching the language, being refused.

Screenshots go under ``tests/artifacts/`` (CI keeps them as artifacts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from pulih.kit.nats_server import free_port, stop_process
from pulih.kit.testing import JWT_SECRET

if TYPE_CHECKING:  # the server needs no browser (nor the websockets the browser's client needs)
    from chromium import Browser, Page

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@contextmanager
def reporting_process(
    data_dir: Path, database_url: str, *, today: date, timeout: float = 60, **settings: str
) -> Iterator[str]:
    """``uvicorn pulih.reporting.app:app`` on a free port over ``database_url``, its clock on
    ``today``, NATS down (the API works without it), with ``settings`` (``PULIH_…`` variables)
    besides; yields its base URL and stops it afterwards."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PULIH_", "NATS_", "DATABASE_"))},
        "PULIH_ENV": "development",
        "PULIH_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "NATS_URL": f"nats://127.0.0.1:{free_port()}",  # nobody listens: the API works without NATS
        "PULIH_JWT_SECRET": JWT_SECRET,
        "PULIH_CLOCK": "manual",
        "PULIH_CLOCK_START": today.isoformat(),
        "PULIH_SCHEDULER_SECONDS": "3600",
        **settings,
    }
    log_file = data_dir / "uvicorn.log"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "pulih.reporting.app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"reporting did not start: {log_file.read_text()[-3000:]}")
                time.sleep(0.2)
            yield base
        finally:
            stop_process(process, timeout=15)


def sign_in(page: Page, bearer: str) -> None:
    """Type the token into the sign-in form and send it, as a person would."""
    page.wait_for("document.body.dataset.state === 'login'")
    page.evaluate(
        f"document.getElementById('token').value = {json.dumps(bearer)};"
        "document.getElementById('login-form').requestSubmit(); true"
    )


def figures_on_page(page: Page) -> int:
    """Charts, tables and headline tiles anywhere on the page."""
    return int(page.evaluate("document.querySelectorAll('svg.chart, table, .kpi').length"))


def card_titles(page: Page) -> list[str]:
    """The cards' headings, spaces collapsed."""
    return list(
        page.evaluate(
            "[...document.querySelectorAll('.card h2')]"
            ".map((h) => h.textContent.replace(/\\s+/g, ' ').trim())"
        )
    )


def switch_language(page: Page, lang: str) -> None:
    """Press the ID or EN button (``lang`` ``id`` or ``en``) and wait until the page speaks it."""
    page.evaluate(f"document.querySelector('[data-lang={lang}]').click(); true")
    page.wait_for(f"document.documentElement.lang === {json.dumps(lang)}")


def sign_out(page: Page) -> None:
    """Press "sign out" and wait for the sign-in form."""
    page.evaluate("document.getElementById('logout').click(); true")
    page.wait_for("document.body.dataset.state === 'login'")


def refused(browser: Browser, base_url: str, bearer: str, message: str) -> None:
    """Sign in with ``bearer`` and find it refused: the form says ``message``, no figure is on the
    page and the token is forgotten; nothing but the API's 401/403 is logged as an error."""
    page = browser.new_page()
    page.open(f"{base_url}/")
    sign_in(page, bearer)
    page.wait_for(f"document.getElementById('login-error').textContent === {json.dumps(message)}")
    state = page.evaluate("document.body.dataset.state")
    assert state == "login", state
    assert figures_on_page(page) == 0, "no figure on the page"
    assert page.evaluate("sessionStorage.getItem('pulih.token')") is None, "the token is forgotten"
    # the API's 401/403 answers are logged by the browser as failed loads; nothing else may be
    errors = [p for p in page.console_errors() if "status of 40" not in p]
    assert errors == [], errors
