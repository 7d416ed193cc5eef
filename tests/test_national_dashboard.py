"""The national dashboard in headless Chromium, served by the real reporting app in national
mode over a store holding three regencies' aggregates (``dashboard_national``): it shows nothing
without a national token, then the provinces with the chosen indicator of the chosen month (a
total over hidden cells marked "≥ … · N hidden", never as exact), a province's regencies on a
click, the trend by month, the phase mix, and the regency that has not reported for the last
closed month; Indonesian by default, English on the toggle; it fits a phone.

Screenshots are kept under ``tests/artifacts/national-*.png`` (CI keeps them as artifacts).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

if not os.environ.get("CI"):  # CI must have both: there, a missing one fails loudly
    pytest.importorskip("websockets", reason="the DevTools client (pip install websockets)")

from chromium import Browser, Page, chromium, chromium_path
from dashboard_national import national_server, national_token, seed
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

NOTHING = "\N{EN DASH}"
"""What a total shows when no regency of it reported."""
CARDS = ["card-provinces", "card-silent", "card-trend", "card-phases"]
TITLES = {
    "id": ["Provinsi", "Belum melapor 1", "Tren bulanan", "Unit menurut fase"],
    "en": ["Provinces", "Not reported 1", "Monthly trend", "Units by phase"],
}

if chromium_path() is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("national")
    with national_server(data_dir, seed(data_dir)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with chromium(tmp_path_factory.mktemp("chromium") / "profile") as browser:
        yield browser
        browser.close()


def drawn(page: Page) -> None:
    """Wait until the page is ready and every card has been drawn."""
    page.wait_for(
        "document.body.dataset.state === 'ready' && "
        + " && ".join(f"!!document.querySelector('#{card} h2')" for card in CARDS)
    )


def texts(page: Page, selector: str) -> list[list[str]]:
    """The cells' text of every row matching ``selector`` (spaces collapsed)."""
    return list(
        page.evaluate(
            f"[...document.querySelectorAll({json.dumps(selector)})].map((row) => [...row.cells]"
            ".map((cell) => cell.innerText.replace(/\\s+/g, ' ').trim()))"
        )
    )


def choose(page: Page, select: str, value: str) -> None:
    page.evaluate(
        f"{{ const s = document.getElementById({json.dumps(select)}); s.value = {json.dumps(value)};"
        "s.dispatchEvent(new Event('change')); } true"
    )


def test_without_a_token_the_page_shows_only_the_sign_in_form(browser: Browser, base_url: str) -> None:
    page = browser.new_page()
    page.viewport(1280, 900)
    page.open(f"{base_url}/")
    page.wait_for("document.body.dataset.state === 'login'")
    assert page.evaluate("document.title") == "Pulih · Dasbor Nasional IBM"
    assert page.evaluate("document.getElementById('dashboard').hidden") is True
    assert figures_on_page(page) == 0
    page.screenshot(ARTIFACTS / "national-login.png")
    assert page.console_errors() == []


@pytest.mark.parametrize(
    ("bearer", "message"),
    [
        ("not-a-token", "Token tidak valid atau sudah kedaluwarsa."),
        (token(Role.NATIONAL), "Token ini tidak berhak melihat dasbor ini."),  # a regency's token
        (national_token(Role.FACILITATOR), "Token ini tidak berhak melihat dasbor ini."),
    ],
    ids=["garbage", "regency-token", "national-facilitator"],
)
def test_a_bad_or_unentitled_token_is_told_so_and_sees_no_figures(
    browser: Browser, base_url: str, bearer: str, message: str
) -> None:
    refused(browser, base_url, bearer, message)


def points(page: Page) -> list[dict[str, Any]]:
    """The trend chart's points: their month and whether they are drawn as inexact."""
    return list(
        page.evaluate(
            "[...document.querySelectorAll('#card-trend circle.point')].map((c) => ({period:"
            " c.getAttribute('data-period'), color: c.getAttribute('fill'),"
            " inexact: c.classList.contains('inexact'), title: c.querySelector('title').textContent}))"
        )
    )


def test_the_national_office_sees_provinces_trends_phases_and_who_is_silent(
    browser: Browser, base_url: str
) -> None:
    page = browser.new_page()
    page.viewport(1280, 900)
    page.open(f"{base_url}/")
    sign_in(page, national_token())
    drawn(page)
    assert page.evaluate("document.documentElement.lang") == "id"
    assert card_titles(page) == TITLES["id"]
    assert page.evaluate("document.getElementById('month').value") == "2026-10", "the last closed month"
    assert page.evaluate("document.getElementById('indicator').value") == "clients_screened"

    # October: Banyumas hid its figure, Kendari sent nothing; Cilacap's revision 2 (52) counts
    assert texts(page, "table.provinces tbody tr") == [
        ["33", "Jawa Tengah", "≥ 52 1 tersembunyi", "", "2 dari 2"],
        ["74", "Sulawesi Tenggara", NOTHING, "", "0 dari 1"],
    ]
    assert texts(page, "table.provinces tfoot tr") == [
        ["", "Indonesia", "≥ 52 1 tersembunyi", "", "2 dari 3"]
    ]
    kpis = page.evaluate("[...document.querySelectorAll('.kpi .kpi-value')].map((k) => k.textContent)")
    assert kpis == ["≥ 52", "2 dari 3", "1 dari 2", "1"]
    assert page.evaluate("document.querySelector('[data-kpi=n_kpi_silent]').classList.contains('alarm')")

    assert texts(page, "table.silent tbody tr") == [
        ["Kota Kendari 7471", "Sulawesi Tenggara", "September 2026"]
    ]

    # the nation's trend: a point for each month reported, hollow where cells were hidden
    nation = points(page)
    assert [p["period"] for p in nation] == ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
    assert [p["period"] for p in nation if p["inexact"]] == ["2026-06", "2026-07", "2026-10"]
    assert nation[4]["title"] == "Nasional · September 2026: 98"
    assert nation[5]["title"] == "Nasional · Oktober 2026: ≥ 52 (1 tersembunyi)"

    # the phase mix of October, the nation's
    assert page.evaluate("document.querySelector('#card-phases .headline').textContent") == "18 unit"
    assert page.evaluate(
        "[...[...document.querySelectorAll('#card-phases svg.chart')][0].querySelectorAll('rect.bar title')]"
        ".map((t) => t.textContent)"
    ) == ["Rintisan: 5", "Tumbuh: 5", "Berkembang: 5", "Tangguh: 2", "Prima: 1"]
    page.screenshot(ARTIFACTS / "national-laptop-id.png")

    # a province's regencies, and its line on the trend
    page.evaluate("document.querySelector('tr[data-province=\"33\"]').click(); true")
    page.wait_for("!!document.querySelector('table.regencies')")
    assert texts(page, "table.regencies tbody tr") == [
        ["3301", "Cilacap", "52", "Oktober 2026"],
        ["3302", "Banyumas", "disembunyikan", "Oktober 2026"],
    ]
    assert page.evaluate("document.getElementById('scope-name').textContent") == "· Provinsi Jawa Tengah"
    assert len(points(page)) == 12, "the province's six months beside the nation's"
    assert page.evaluate("document.querySelector('#card-phases .note').textContent").endswith("(Jawa Tengah)")

    # September: everybody reported, nothing hidden
    choose(page, "month", "2026-09")
    page.wait_for("document.querySelector('.kpi-period').textContent === 'September 2026'")
    assert texts(page, "table.provinces tbody tr") == [
        ["33", "Jawa Tengah", "80", "", "2 dari 2"],
        ["74", "Sulawesi Tenggara", "18", "", "1 dari 1"],
    ]
    assert texts(page, "table.provinces tfoot tr") == [["", "Indonesia", "98", "", "3 dari 3"]]
    assert page.evaluate("document.querySelectorAll('#card-provinces .hidden-mark').length") == 0
    assert page.evaluate("document.querySelector('#card-phases .headline').textContent") == "18 unit"
    page.evaluate("document.querySelector('#card-provinces button.back').click(); true")
    page.wait_for("!document.querySelector('table.regencies')")
    assert page.evaluate("document.querySelector('#card-phases .headline').textContent") == "23 unit"

    # another indicator reloads the figures
    choose(page, "indicator", "sessions_held")
    page.wait_for(
        "document.querySelector('#card-provinces .note').textContent"
        ".startsWith('Sesi diadakan, September 2026')"
    )

    switch_language(page, "en")
    assert card_titles(page) == TITLES["en"]
    assert page.evaluate("document.getElementById('logout').textContent") == "Sign out"
    page.screenshot(ARTIFACTS / "national-laptop-en.png")
    switch_language(page, "id")

    sign_out(page)
    assert figures_on_page(page) == 0, "signing out takes every figure off the page"
    assert page.console_errors() == []


def test_on_a_phone_the_page_fits_the_screen(browser: Browser, base_url: str) -> None:
    page = browser.new_page()
    page.viewport(390, 844, mobile=True, scale=2)
    page.open(f"{base_url}/")
    sign_in(page, national_token(Role.ADMIN))
    drawn(page)
    page.evaluate("document.querySelector('tr[data-province=\"74\"]').click(); true")
    page.wait_for("!!document.querySelector('table.regencies')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    widths = page.evaluate(
        "[...document.querySelectorAll('.card')].map((c) => [c.clientWidth,"
        " Math.max(0, ...[...c.querySelectorAll('svg.chart')].map((s) => s.getBoundingClientRect().width))])"
    )
    assert all(chart <= card for card, chart in widths), widths
    page.screenshot(ARTIFACTS / "national-phone-id.png")
    assert page.console_errors() == []


def test_the_csv_button_asks_for_every_regency_figure_as_csv(base_url: str) -> None:
    """What the page's "Unduh CSV" asks for: every regency's figures of the months shown."""
    answer = httpx.get(
        f"{base_url}/v1/national/indicators",
        params={"level": "regency", "from": "2025-11", "to": "2026-10"},
        headers={"Authorization": f"Bearer {national_token()}", "Accept": "text/csv"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers.get("content-disposition", "")
    lines = answer.text.splitlines()
    assert any(line.startswith("regency,3302,Banyumas,2026-10,clients_screened,") for line in lines), lines[
        :3
    ]


def test_the_page_and_its_files_are_served_by_the_national_service(base_url: str) -> None:
    """``/`` is the national page (not the regency dashboard), with the dashboard's CSP; its
    scripts come from the service itself."""
    page = httpx.get(f"{base_url}/")
    assert page.status_code == 200
    assert "Dasbor Nasional IBM" in page.text and "/static/js/national.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("js/national.js", "js/national_views.js", "js/national_labels.js", "national.css"):
        assert httpx.get(f"{base_url}/static/{asset}").status_code == 200, asset
    assert httpx.get(f"{base_url}/static/../app.py").status_code == 404
