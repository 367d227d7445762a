"""The policy lab in a real browser: Debian's Chromium, driven headless by Playwright, against a
Solara server that the tests start with ``nplsim viz`` on 127.0.0.1 and stop.

Skipped when Chromium (or the playwright package) is absent, unless NPLSIM_REQUIRE_CHROMIUM=1, as
in CI, where that is a failure. Never runs ``playwright install``: the browser is the system's.
Every test opens a fresh browser profile at 1280×800 and fails on a console error, a page error or
a request that leaves the machine. Most tests open the lab through a link with a small economy
(``/?scenario=pilot_2005&n_loans=5000``), which the lab supports for sharing settings.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SERVER_START_S = 60
ACTION_TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1280, "height": 800}
SMALL = "n_loans=5000"
TABS = ("Overview", "Banks", "ABS market & deals", "Holdings", "Indicators", "A/B compare",
        "Export")  # fmt: skip


def _require_browser() -> None:
    missing = [
        what
        for what, present in (
            (CHROMIUM, Path(CHROMIUM).exists()),
            ("the playwright package", importlib.util.find_spec("playwright") is not None),
        )
        if not present
    ]
    if not missing:
        return
    message = f"browser test needs {' and '.join(missing)}"
    if os.environ.get("NPLSIM_REQUIRE_CHROMIUM") == "1":
        pytest.fail(message + " (NPLSIM_REQUIRE_CHROMIUM=1)")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(server: subprocess.Popen) -> None:
    """Stop the server and anything it started (its own process group)."""
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    """``nplsim viz --port P`` running on a free port; stopped after the module's tests."""
    _require_browser()
    port = _free_port()
    log = tmp_path_factory.mktemp("viz") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "nplsim.experiments.cli", "viz", "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"nplsim viz exited with {server.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"nplsim viz did not answer in {SERVER_START_S} s:\n{log.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        _stop(server)


@pytest.fixture
def browser_context(lab_url):
    """A fresh Chromium (new empty profile); yields ``open(query, dark=False, hold=None)`` that
    opens the lab in a new tab whose console errors and off-machine requests go to
    ``tab.problems``; requests matching the glob ``hold`` are kept in ``tab.held`` unanswered."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="nplsim-chromium-")
    tabs = []
    try:
        with sync_playwright() as playwright:
            contexts = {}

            def open_lab(query: str = "", dark: bool = False, hold: str | None = None):
                if dark not in contexts:
                    contexts[dark] = playwright.chromium.launch_persistent_context(
                        f"{profile}-{int(dark)}",
                        executable_path=CHROMIUM,
                        headless=True,
                        args=CHROMIUM_ARGS,
                        viewport=VIEWPORT,
                        color_scheme="dark" if dark else "light",
                    )
                    contexts[dark].set_default_timeout(ACTION_TIMEOUT_MS)
                tab = contexts[dark].new_page()
                tab.problems = []
                tab.on("console", lambda m, t=tab: t.problems.append(f"console: {m.text}")
                       if m.type == "error" else None)  # fmt: skip
                tab.on("pageerror", lambda e, t=tab: t.problems.append(f"page error: {e}"))
                tab.on(
                    "request",
                    lambda r, t=tab: (
                        None
                        if re.match(r"(http://127\.0\.0\.1:\d+/|data:|blob:)", r.url)
                        else t.problems.append(f"off-machine request: {r.url}")
                    ),
                )
                tab.held = []
                if hold is not None:  # requests for URLs matching ``hold`` wait in tab.held
                    tab.route(hold, _keeper(tab.held))
                tab.goto(lab_url + (f"?{query}" if query else ""), timeout=90_000)
                tab.wait_for_selector(".nplsim-quarter", timeout=90_000)
                tabs.append(tab)
                return tab

            yield open_lab
            for context in contexts.values():
                context.close()
    finally:
        for suffix in ("", "-0", "-1"):
            shutil.rmtree(profile + suffix, ignore_errors=True)


# ====================================================================== helpers
def _keeper(held: list):
    """A route handler that answers nothing and keeps the route in ``held``."""

    def keep(route):
        held.append(route)

    return keep


def expect(locator):
    """Playwright's waiting assertions (imported late: the module loads without playwright)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _quarter(page) -> int:
    return int(re.match(r"Quarter (\d+)", page.inner_text(".nplsim-quarter")).group(1))


def _run_button(page, name: str, scope: str = ".nplsim-run"):
    return page.locator(scope).get_by_role("button", name=name, exact=True)


def _step(page, times: int = 1, scope: str = ".nplsim-run") -> None:
    for _ in range(times):
        before = _quarter(page)
        _run_button(page, "Step", scope).click()
        page.wait_for_function(
            "q => !document.querySelector('.nplsim-quarter').textContent"
            ".startsWith(`Quarter ${q} `)",
            arg=before,
        )


def _reset(page) -> None:
    _run_button(page, "Reset").click()
    page.wait_for_function("!document.querySelector('.nplsim-pending')")
    page.wait_for_function(
        "document.querySelector('.nplsim-quarter').textContent.startsWith('Quarter 0 ')"
    )


def _slider(page, control: str):
    return page.locator(f".nplsim-control-{control} [role=slider]")


def _set_slider(page, control: str, presses: int, start: str = "Home") -> None:
    """Move a slider to its start (Home or End), then ``presses`` steps right (or left), each
    once the lab has taken the one before (the control's value shows it)."""
    slider = _slider(page, control)
    value = page.locator(f".nplsim-control-{control} .nplsim-control-value")
    slider.focus()
    for key in [start] + ["ArrowRight" if presses > 0 else "ArrowLeft"] * abs(presses):
        before = value.inner_text()
        slider.press(key)
        try:
            page.wait_for_function(
                "([el, v]) => el.textContent !== v",
                arg=[value.element_handle(), before],
                timeout=5_000,
            )
        except Exception:  # Home or End where the slider already is
            if key not in ("Home", "End"):
                raise


def _choose(page, scope: str, label: str, option: str) -> None:
    page.locator(f"{scope} .v-select:has(label:text-is('{label}'))").first.click()
    page.locator(".menuable__content__active").get_by_role(
        "option", name=option, exact=True
    ).click()


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_timeout(300)


def _chart(page, name: str, quarter: int | None = None):
    """The chart element once it shows ``quarter`` (its data revision names it)."""
    selector = f".nplsim-chart.nplsim-{name}"
    if quarter is None:
        page.wait_for_selector(f"{selector}[data-revision]")
    else:
        page.wait_for_function(
            "([s, q]) => { const el = document.querySelector(s);"
            " return el && (el.dataset.revision || '').split('-')[1] === String(q); }",
            arg=[selector, quarter],
        )
    return page.locator(selector)


def _boxes(page, selector: str) -> list[dict]:
    return page.evaluate(
        """s => Array.from(document.querySelectorAll(s))
             .filter(e => e.offsetParent !== null)
             .map(e => { const r = e.getBoundingClientRect();
                         return {x: r.x, y: r.y, w: r.width, h: r.height,
                                 text: (e.innerText || e.textContent || '').slice(0, 40)}; })
             .filter(b => b.w > 0 && b.h > 0)""",
        selector,
    )


def _overlapping(boxes: list[dict], slack: float = 1.0) -> list[tuple[str, str]]:
    found = []
    for a, b in itertools.combinations(boxes, 2):
        dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
        dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
        if dx > slack and dy > slack:
            found.append((a["text"], b["text"]))
    return found


CONTRAST_JS = """els => els.map(el => {
  const rgb = s => s.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const style = getComputedStyle(el);
  const fg = rgb(el instanceof SVGElement ? style.fill : style.color);
  let node = el, bg = null;
  while (node && node.nodeType === 1) {
    const c = rgb(getComputedStyle(node).backgroundColor);
    if (c.length < 4 || c[3] > 0.5) { bg = c; break; }
    node = node.parentElement;
  }
  bg = bg || [255, 255, 255];
  const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  return {text: (el.textContent || '').slice(0, 30), ratio: (l1 + 0.05) / (l2 + 0.05)};
})"""


# ====================================================================== tests
@pytest.mark.slow
def test_the_lab_loads_steps_and_reforms(browser_context):
    page = browser_context()
    assert _quarter(page) == 0
    assert page.inner_text(".nplsim-quarter").endswith("law: restart_2016")
    names = page.locator(".nplsim-tabs [role=tab]").all_inner_texts()
    assert names == list(TABS)  # no power plants, no Power tab
    _chart(page, "npl-ratio", 0)

    _step(page, 3)
    assert _quarter(page) == 3
    for chart in ("npl-ratio", "car", "disposal", "abs-market"):
        _chart(page, chart, 3)
    # the time axis names calendar quarters from restart_2016's start, 2016Q1 at quarter 1
    ticks = _chart(page, "car", 3).locator("text", has_text=re.compile(r"^20[12][0-9]Q[1-4]$"))
    expect(ticks.first).to_be_visible()
    assert "2015Q4" in ticks.all_text_contents()  # quarter 0, the opening balance sheets

    page.get_by_role("button", name="Reform now", exact=True).click()
    expect(page.locator(".nplsim-reform-log")).to_have_text(
        "reform scheduled for quarter 4: strengthened"
    )
    _step(page)
    expect(page.locator(".nplsim-regime-name")).to_have_text("Law in force: strengthened")
    expect(page.locator(".nplsim-reform-log")).to_have_text("reform at quarter 4: strengthened")
    label = _chart(page, "car", 4).locator("text", has_text=re.compile("^→ strengthened$"))
    expect(label).to_have_count(1)
    assert page.problems == []


@pytest.mark.slow
def test_the_levers_follow_the_scenario(browser_context):
    page = browser_context(SMALL)
    _choose(page, ".nplsim-settings", "scenario", "amc_only_1999")
    page.wait_for_selector(".nplsim-pending")
    expect(page.locator(".nplsim-control-n-loans .nplsim-control-value")).to_have_text("100,000")
    expect(page.locator(".nplsim-control-securitisation-allowed")).to_contain_text(
        "securitisation allowed: no"
    )
    expect(page.locator(".nplsim-control-spv-form")).to_contain_text("none")
    assert (
        page.locator(".nplsim-levers .nplsim-help")
        .first.inner_text()
        .startswith("Whether loans may be securitised")
    )

    _choose(page, ".nplsim-settings", "scenario", "shanxi_power")
    page.wait_for_function(
        "document.querySelector('.nplsim-control-n-loans .nplsim-control-value').textContent"
        " === '20,000'"
    )
    _reset(page)
    expect(page.locator(".nplsim-quarter")).to_contain_text("Quarter 0 of 40 · shanxi_power")
    expect(page.locator(".nplsim-regime-name")).to_have_text("Law in force: shanxi_centre_today")

    _set_slider(page, "disclosure-level", 0, start="End")
    page.wait_for_selector(".nplsim-pending")
    assert "law" in page.inner_text(".nplsim-pending")
    _reset(page)
    expect(page.locator(".nplsim-regime-name")).to_have_text(
        "Law in force: shanxi_centre_today (1 field changed)"
    )
    changed = page.locator(".nplsim-lever-changed").all_inner_texts()
    assert len(changed) == 1 and changed[0].startswith("disclosure level: 1.00 (preset ")
    assert page.problems == []


@pytest.mark.slow
@pytest.mark.parametrize("interval", [3, 7, 20])
def test_no_step_runs_past_the_horizon(browser_context, interval):
    page = browser_context(SMALL)
    _set_slider(page, "render-interval", interval - 1)
    assert page.inner_text(".nplsim-control-render-interval .nplsim-control-value") == str(interval)
    step = _run_button(page, "Step")
    for _ in range(40 // interval + 2):
        if step.is_disabled():
            break
        _step(page)
    assert _quarter(page) == 40
    assert step.is_disabled()
    assert page.problems == []


@pytest.mark.slow
def test_play_stops_at_the_horizon(browser_context):
    page = browser_context(SMALL)
    _set_slider(page, "render-interval", 19)
    _set_slider(page, "play-interval", 0)
    page.locator(".nplsim-run").get_by_role("button", name="▶", exact=True).click()
    page.wait_for_function(
        "document.querySelector('.nplsim-quarter').textContent.startsWith('Quarter 40 ')",
        timeout=120_000,
    )
    page.wait_for_timeout(1500)
    assert _quarter(page) == 40
    assert _run_button(page, "Step").is_disabled()
    assert page.problems == []


@pytest.mark.slow
def test_ab_mode_shows_the_paired_difference(browser_context):
    page = browser_context(f"scenario=pilot_2005&{SMALL}")
    _set_slider(page, "render-interval", 9)
    _tab(page, "A/B compare")
    _choose(page, ".nplsim-ab", "B is", "a reform at a quarter")
    _run_button(page, "Reset", ".nplsim-ab").click()
    _run_button(page, "Step", ".nplsim-ab").click()
    difference = _chart(page, "ab-difference", 10)
    overlay = _chart(page, "ab-overlay", 10)
    assert "Paired difference B − A" in page.inner_text(".nplsim-ab")
    assert difference.locator("path").count() > 3 and overlay.locator("path").count() > 3
    reform = overlay.locator("text", has_text=re.compile("^→ strengthened$"))
    assert reform.count() == 1  # B's reform at quarter 8

    _set_slider(page, "more-seeds", 0)
    page.get_by_role("button", name="Run the seeds in the background").click()
    page.wait_for_selector(".nplsim-ab-seeds table", timeout=180_000)
    assert "2 seeds, 95% CI" in page.inner_text(".nplsim-ab-seeds")
    assert page.problems == []


@pytest.mark.slow
def test_the_export_reproduces_the_run(browser_context, tmp_path):
    page = browser_context(f"scenario=pilot_2005&{SMALL}&disclosure_level=0.8&shock_z=-2")
    _set_slider(page, "render-interval", 19)
    _step(page, 2)
    assert _quarter(page) == 40
    _tab(page, "Export")
    field = page.locator(".nplsim-export-path input")
    field.fill(str(tmp_path / "export"))
    field.press("Enter")
    page.get_by_role("button", name="Export", exact=True).click()
    page.wait_for_selector(".nplsim-export-done", timeout=120_000)
    out = tmp_path / "export"
    assert (out / "figures" / "lab" / "npl-ratio.svg").exists()
    assert (out / "csv" / "model.csv").exists()
    subprocess.run(
        [sys.executable, "-m", "nplsim.experiments.cli", "run", str(out / "scenario.toml"),
         "--seed", "42", "--out", str(tmp_path / "rerun"), "--quiet"],
        cwd=tmp_path, check=True, timeout=300,
    )  # fmt: skip
    for table in ("model", "banks", "amcs", "deals", "trades", "events"):
        exported = (out / f"{table}.parquet").read_bytes()
        assert exported == (tmp_path / "rerun" / f"{table}.parquet").read_bytes(), table
    assert page.problems == []


@pytest.mark.slow
def test_the_power_view_of_shanxi_power(browser_context):
    page = browser_context("scenario=shanxi_power")
    _set_slider(page, "render-interval", 7)
    _step(page)
    assert "Power" in page.locator(".nplsim-tabs [role=tab]").all_inner_texts()
    _tab(page, "Power")
    assert page.inner_text(".nplsim-power-note").startswith("30 power plants")
    for chart in ("coal-price", "power-costs", "power-shares", "power-capex", "power-defaults",
                  "power-npl"):  # fmt: skip
        assert _chart(page, chart, 8).locator("path").count() > 3, chart
    assert page.problems == []


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["mature_market", "shanxi_power"])
def test_nothing_overlaps_at_1280x800(browser_context, scenario):
    page = browser_context(f"scenario={scenario}&{SMALL}")
    _step(page, 4)
    sidebar = _boxes(page, ".nplsim-run")[0]
    texts = _boxes(
        page,
        ".nplsim-run .v-btn, .nplsim-settings .nplsim-help, .nplsim-control-label, "
        ".nplsim-control-value, .v-navigation-drawer .v-label, .v-select__selection",
    )
    assert _overlapping(texts) == []
    tracks = _boxes(page, ".nplsim-control .v-slider__track-container")
    assert len(tracks) >= 10 and min(t["w"] for t in tracks) > 150  # no squeezed slider
    names = page.locator(".nplsim-tabs [role=tab]").all_inner_texts()
    assert ("Power" in names) == (scenario == "shanxi_power")
    for name in names:
        _tab(page, name)
        if name == "A/B compare":  # with both runs and their charts on screen
            _run_button(page, "Reset", ".nplsim-ab").click()
            _run_button(page, "Step", ".nplsim-ab").click()
            _chart(page, "ab-difference", 1)
        page.wait_for_timeout(1500)
        cards = _boxes(page, ".nplsim-tab-content .nplsim-card, .nplsim-kpi")
        assert cards, name
        assert _overlapping(cards) == [], name
        for box in cards + _boxes(page, ".nplsim-tabs [role=tab]"):
            assert box["x"] >= sidebar["x"] + sidebar["w"] - 1, (name, box["text"])
            assert box["x"] + box["w"] <= VIEWPORT["width"] + 1, (name, box["text"])
        for chart in _boxes(page, ".nplsim-tab-content .nplsim-chart svg.marks"):
            assert chart["w"] > 300, (name, "a chart squeezed")
    assert page.problems == []


@pytest.mark.slow
def test_the_deals_table_fits_its_card(browser_context):
    page = browser_context(f"scenario=pilot_2005&{SMALL}")
    _set_slider(page, "render-interval", 19)
    _step(page)
    _tab(page, "ABS market & deals")
    expect(page.locator(".nplsim-deal-count")).not_to_have_text("0 deals issued")
    widths = page.evaluate(
        "() => { const w = document.querySelector('.nplsim-deals-table .v-data-table__wrapper');"
        " const c = document.querySelector('.nplsim-deals');"
        " return [w.scrollWidth, w.clientWidth, c.getBoundingClientRect().right]; }"
    )
    assert widths[0] <= widths[1] + 1, "the deals table is cut off on the right"
    assert widths[2] <= VIEWPORT["width"] + 1
    assert page.problems == []


@pytest.mark.slow
def test_the_dark_theme_is_readable(browser_context):
    page = browser_context(SMALL, dark=True)
    page.wait_for_selector(".v-application.theme--dark")
    _step(page, 2)
    _chart(page, "car", 2)
    labels = page.evaluate(CONTRAST_JS, page.locator(".nplsim-kpi-label, .nplsim-kpi-note,"
                                                    " .nplsim-help").element_handles())  # fmt: skip
    assert len(labels) >= 10
    assert min(item["ratio"] for item in labels) >= 4.5, labels
    axis = page.evaluate(CONTRAST_JS, page.locator(".nplsim-car svg.marks text").element_handles())
    assert axis and min(item["ratio"] for item in axis) >= 4.5, axis
    background = page.evaluate(
        "getComputedStyle(document.querySelector('.nplsim-car svg.marks')).backgroundColor"
    )
    assert background in ("transparent", "rgba(0, 0, 0, 0)"), "a white box in the dark"
    assert page.problems == []


@pytest.mark.slow
def test_reform_labels_never_overlap(browser_context):
    page = browser_context(
        f"scenario=pilot_2005&{SMALL}&reform=3:strengthened&reform=4:mature_market"
    )
    _set_slider(page, "render-interval", 5)
    _step(page)
    for chart in ("npl-ratio", "car", "disposal", "abs-market"):
        labels = _boxes(page, f".nplsim-{chart} svg.marks text")
        reform = [b for b in labels if b["text"].startswith("→")]
        assert [b["text"] for b in reform] == ["→ strengthened", "→ mature_market"], chart
        assert _overlapping(reform, slack=0.0) == [], chart
    assert page.problems == []


@pytest.mark.slow
def test_a_link_restores_the_settings(browser_context):
    query = f"scenario=pilot_2005&seed=9&{SMALL}&disclosure_level=0.9&shock_z=-1.5&shock_quarter=6"
    page = browser_context(query)
    assert page.inner_text(".nplsim-quarter").startswith("Quarter 0 of 40 · pilot_2005")
    assert page.input_value(".nplsim-seed input") == "9"
    assert page.inner_text(".nplsim-control-shock-z .nplsim-control-value") == "-1.50"
    assert page.inner_text(".nplsim-control-disclosure-level .nplsim-control-value") == "0.90"
    assert page.inner_text(".nplsim-regime-name") == "Law in force: pilot_2005 (1 field changed)"
    assert page.locator(".nplsim-pending").count() == 0
    _tab(page, "Export")
    link = page.input_value(".nplsim-share-url input")
    for part in query.split("&"):
        assert part in link
    assert page.problems == []


@pytest.mark.slow
def test_a_chart_that_leaves_the_page_while_loading_fails_quietly(browser_context):
    """Switching tabs before the chart library has loaded destroys the charts; when it arrives,
    nothing may be drawn into an element that is gone (it raised "undefined does not exist")."""
    page = browser_context(SMALL, hold="**/vega-embed*")
    page.wait_for_function("document.querySelectorAll('.nplsim-chart').length > 0")
    expect(page.locator(".nplsim-chart[data-revision]")).to_have_count(0)
    _tab(page, "Export")
    assert page.held, "the chart library was not requested before the tab switch"
    for route in page.held:
        route.continue_()
    page.unroute("**/vega-embed*")
    page.wait_for_timeout(1500)
    _tab(page, "Overview")
    page.wait_for_selector(".nplsim-chart[data-revision]")
    assert page.problems == []
