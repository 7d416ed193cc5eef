"""The facilitators' dashboard in headless Chromium, served by the real reporting app over a
realistic projection: it shows nothing without a valid token, draws every chart after a
facilitator signs in (no console error), speaks Indonesian by default and English after the
toggle (remembered), fits a phone's width, and puts every value in the page as text.

Screenshots are kept under ``tests/artifacts/dashboard-*.png`` (CI keeps them as artifacts).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest

if not os.environ.get("CI"):  # CI must have both: there, a missing one fails loudly
    pytest.importorskip("websockets", reason="the DevTools client (pip install websockets)")

from chromium import Browser, Page, chromium, chromium_path
from dashboard_regency import reporting_server, seed
from dashboard_support import (
    ARTIFACTS,
    card_titles,
    figures_on_page,
    refused,
    sign_in,
    sign_out,
    switch_language,
)

from pulih.kit.auth import Role
from pulih.kit.testing import token

pytestmark = [pytest.mark.system, pytest.mark.slow]

CARDS = ["card-funnel", "card-risk", "card-sessions", "card-referrals", "card-phases", "card-qol"]
TITLES = {
    "id": [
        "Alur klien bulanan",
        "Tingkat risiko hasil skrining",
        "Sesi dan kehadiran",
        "Rujukan menurut status",
        "Unit menurut fase",
        "Perubahan kualitas hidup",
    ],
    "en": [
        "Monthly client funnel",
        "Risk mix at screening",
        "Sessions and attendance",
        "Referrals by status",
        "Units by phase",
        "Quality-of-life change",
    ],
}
HOSTILE_NAME = '<img src=x onerror="window.pwned=1">Unit <b>Uji</b> & "kutip"'
"""A unit name that would run script if the page put it in as HTML."""

if chromium_path() is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("reporting")
    database_url = seed(data_dir, extra_unit_name=HOSTILE_NAME)
    with reporting_server(data_dir, database_url) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with chromium(tmp_path_factory.mktemp("chromium") / "profile") as browser:
        yield browser
        browser.close()


SLARANG = (
    "[...document.querySelectorAll('#scope option')].find((o) => o.textContent === 'IBM Desa Slarang').value"
)
"""The first pilot unit's id, from the scope menu."""


def drawn(page: Page) -> None:
    """Wait until every card has its chart."""
    page.wait_for(
        "document.body.dataset.state === 'ready' && "
        + " && ".join(f"!!document.querySelector('#{card} svg.chart')" for card in CARDS)
    )


def test_without_a_token_the_page_shows_only_the_sign_in_form(browser: Browser, base_url: str) -> None:
    page = browser.new_page()
    page.viewport(1280, 900)
    page.open(f"{base_url}/")
    page.wait_for("document.body.dataset.state === 'login'")
    assert page.evaluate("document.getElementById('dashboard').hidden") is True
    assert figures_on_page(page) == 0
    assert page.evaluate("document.getElementById('login').offsetHeight") > 0
    page.screenshot(ARTIFACTS / "dashboard-login.png")
    assert page.console_errors() == []


@pytest.mark.parametrize(
    ("bearer", "message"),
    [
        ("not-a-token", "Token tidak valid atau sudah kedaluwarsa."),
        (token(Role.NATIONAL), "Token ini tidak berhak melihat dasbor ini."),
        (
            token(Role.CLINIC, clinic_id="klinik-pratama-cilacap"),
            "Token ini tidak berhak melihat dasbor ini.",
        ),
    ],
)
def test_a_bad_or_unentitled_token_is_told_so_and_sees_no_figures(
    browser: Browser, base_url: str, bearer: str, message: str
) -> None:
    refused(browser, base_url, bearer, message)


def test_a_facilitator_sees_every_chart_in_indonesian_then_english(browser: Browser, base_url: str) -> None:
    page = browser.new_page()
    page.viewport(1280, 900)
    page.open(f"{base_url}/")
    sign_in(page, token(Role.FACILITATOR))
    drawn(page)
    assert page.evaluate("document.documentElement.lang") == "id"
    assert card_titles(page) == TITLES["id"]
    assert (
        page.evaluate("document.getElementById('scope').selectedOptions[0].textContent")
        == "Seluruh kabupaten"
    )
    overdue = page.evaluate("[...document.querySelectorAll('table.overdue tbody tr')].length")
    assert overdue == 2, "the two unanswered referrals past respond_by are listed"
    assert (
        page.evaluate("document.querySelector('[data-kpi=kpi_overdue]').classList.contains('alarm')") is True
    )
    assert page.evaluate("document.querySelectorAll('#card-risk svg.chart rect.bar').length") >= 12
    page.screenshot(ARTIFACTS / "dashboard-laptop-id.png")

    switch_language(page, "en")
    assert card_titles(page) == TITLES["en"]
    assert page.evaluate("document.getElementById('logout').textContent") == "Sign out"
    page.screenshot(ARTIFACTS / "dashboard-laptop-en.png")

    page.open(f"{base_url}/")  # English is remembered, and so is the sign-in (this tab's session)
    drawn(page)
    assert card_titles(page) == TITLES["en"]
    switch_language(page, "id")
    assert page.console_errors() == []


def test_every_value_is_put_in_as_text(browser: Browser, base_url: str) -> None:
    """A unit named like markup shows as that text, and none of it runs."""
    page = browser.new_page()
    page.open(f"{base_url}/")
    sign_in(page, token(Role.FACILITATOR))
    drawn(page)
    names = page.evaluate("[...document.querySelectorAll('#scope option')].map((o) => o.textContent)")
    assert HOSTILE_NAME in names
    assert (
        page.evaluate(
            "[...document.querySelectorAll('table.units td span')].some((s) => s.textContent === "
            f"{json.dumps(HOSTILE_NAME)})"
        )
        is True
    )
    assert page.evaluate("document.querySelectorAll('main img, main b').length") == 0
    assert page.evaluate("window.pwned === undefined") is True
    assert page.console_errors() == []


def test_on_a_phone_the_page_fits_the_screen_and_one_unit_can_be_chosen(
    browser: Browser, base_url: str
) -> None:
    page = browser.new_page()
    page.viewport(390, 844, mobile=True, scale=2)
    page.open(f"{base_url}/")
    sign_in(page, token(Role.FACILITATOR))
    drawn(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    widths = page.evaluate(
        "[...document.querySelectorAll('.card')]"
        ".map((c) => [c.clientWidth, c.querySelector('svg.chart').getBoundingClientRect().width])"
    )
    assert all(chart <= card for card, chart in widths), widths
    page.screenshot(ARTIFACTS / "dashboard-phone-id.png")

    unit = page.evaluate(SLARANG)
    page.evaluate(
        f"const s = document.getElementById('scope'); s.value = {json.dumps(unit)};"
        "s.dispatchEvent(new Event('change')); true"
    )
    drawn(page)
    assert page.evaluate("document.querySelectorAll('table.units tbody tr').length") == 1
    assert (
        page.evaluate("document.querySelector('table.units td.name span').textContent") == "IBM Desa Slarang"
    )
    assert page.console_errors() == []


def test_an_agent_sees_their_own_unit(browser: Browser, base_url: str) -> None:
    page = browser.new_page()
    page.open(f"{base_url}/")
    sign_in(page, token(Role.FACILITATOR))
    drawn(page)
    unit = page.evaluate(SLARANG)
    sign_out(page)
    assert figures_on_page(page) == 0, "signing out takes every figure off the page"

    sign_in(page, token(Role.AGENT, unit_id=uuid.UUID(unit)))
    drawn(page)
    assert page.evaluate("document.getElementById('scope').selectedOptions[0].textContent") == "Unit Anda"
    assert page.evaluate("document.querySelectorAll('table.units tbody tr').length") == 1
    assert page.console_errors() == []
