"""The policy lab in a real browser: Debian's Chromium, driven headless by Playwright, against a
Solara server that the test starts with ``nplsim viz`` on 127.0.0.1 and stops.

Skipped when Chromium (or the playwright package) is absent, unless NPLSIM_REQUIRE_CHROMIUM=1, as
in CI, where that is a failure. Never runs ``playwright install``: the browser is the system's.
With NPLSIM_WRITE_SCREENSHOT=1 the final view is also saved as docs/screenshot.png.
"""

from __future__ import annotations

import importlib.util
import io
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

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SERVER_START_S = 60
ACTION_TIMEOUT_MS = 20_000


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
def page(lab_url):
    """A fresh Chromium (new empty profile) on the lab; console errors and off-machine requests
    are collected in ``page.problems``."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="nplsim-chromium-")
    problems: list[str] = []
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1500, "height": 1400},
            )
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            tab = context.new_page()
            tab.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
                ),
            )
            tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            tab.on(
                "request",
                lambda r: (
                    None
                    if re.match(r"(http://127\.0\.0\.1:\d+/|data:|blob:)", r.url)
                    else problems.append(f"off-machine request: {r.url}")
                ),
            )
            tab.problems = problems
            tab.goto(lab_url, timeout=60_000)
            tab.wait_for_selector(".nplsim-bank-ratios", timeout=60_000)
            yield tab
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _quarter(page) -> int:
    return int(re.match(r"Quarter (\d+)", page.inner_text(".nplsim-quarter")).group(1))


def _step(page, times: int) -> None:
    step = page.get_by_role("button", name="Step", exact=True)
    for _ in range(times):
        target = _quarter(page) + 1
        step.click()
        page.wait_for_function(
            f"document.querySelector('.nplsim-quarter').textContent.startsWith('Quarter {target} ')"
        )


def _lever(page, field: str) -> str:
    return page.inner_text(f".nplsim-lever-{field}")


def _new_marker_pixels(before: bytes, after: bytes) -> int:
    """Pixels that turned the reform marker's red between two screenshots of one chart."""
    from PIL import Image

    old, new = (np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
                for png in (before, after))  # fmt: skip
    if old.shape != new.shape:
        return 0
    red = (new[..., 0] > new[..., 1] + 60) & (new[..., 0] > new[..., 2] + 60)
    return int((red & (np.abs(new - old).sum(axis=2) > 60)).sum())


def _settled_shot(page, selector: str) -> bytes:
    """A screenshot of one element once it has stopped changing (the grid may still be mounting
    its cells, or the image still be updating)."""
    from playwright.sync_api import Error

    shot = b""
    for _ in range(30):
        try:
            again = page.locator(selector).screenshot()
        except Error:  # detached while the grid re-mounts it
            again = b""
        if again and again == shot:
            return shot
        shot = again
        page.wait_for_timeout(150)
    raise AssertionError(f"{selector} did not settle")


def test_the_lab_loads_steps_resets_and_reforms(page, tmp_path):
    # The page loads with every view and no console error.
    assert _quarter(page) == 0
    assert page.locator(".nplsim-figure").count() >= 4
    assert page.inner_text(".nplsim-regime-name") == "Regime in force: restart_2016"
    assert page.problems == []

    # Pressing Step changes the charts.
    before = _settled_shot(page, ".nplsim-bank-ratios")
    _step(page, 3)
    after = _settled_shot(page, ".nplsim-bank-ratios")
    assert _quarter(page) == 3
    assert after != before

    # A regime control changed, then Reset: a new model under the new law, back at quarter 0.
    assert _lever(page, "state_guarantee_scheme") == "state guarantee: no"
    page.get_by_text("override the preset with the levers below", exact=True).click()
    page.get_by_text("state guarantee scheme", exact=True).click()
    remoteness = page.locator(".v-input:has(label:text-is('bankruptcy remoteness')) [role=slider]")
    remoteness.focus()
    remoteness.press("End")
    page.get_by_role("button", name="Reset", exact=True).click()
    page.wait_for_function(
        "document.querySelector('.nplsim-regime-name').textContent.includes('+ overrides')"
    )
    assert _quarter(page) == 0
    assert _lever(page, "state_guarantee_scheme") == "state guarantee: yes"
    assert _lever(page, "bankruptcy_remoteness") == "bankruptcy remoteness: 1.00"
    assert _lever(page, "investor_protection") == "investor protection: 0.55"  # as the preset

    # Reform now: the law changes and every time-series chart gets its marker.
    _step(page, 4)
    charts = (".nplsim-bank-ratios", ".nplsim-disposal", ".nplsim-balance-sheet")
    unmarked = {chart: _settled_shot(page, chart) for chart in charts}
    page.get_by_role("button", name="Reform now", exact=True).click()
    page.wait_for_selector(".nplsim-reform-log")
    assert page.inner_text(".nplsim-reform-log") == (
        "reform at quarter 4: strengthened (reform now)"
    )
    assert page.inner_text(".nplsim-regime-name") == "Regime in force: strengthened"
    assert _lever(page, "bankruptcy_remoteness") == "bankruptcy remoteness: 0.97"
    for chart in charts:
        marked = _settled_shot(page, chart)
        assert _new_marker_pixels(unmarked[chart], marked) > 50, chart

    _step(page, 6)
    shot = page.screenshot()
    (tmp_path / "lab.png").write_bytes(shot)
    if os.environ.get("NPLSIM_WRITE_SCREENSHOT") == "1":
        (ROOT / "docs" / "screenshot.png").write_bytes(shot)

    # A contradictory law (securitisation without an SPV): a message, not a traceback.
    page.locator(".v-input:has(label:text-is('spv form')) [role=button]").click()
    page.get_by_role("option", name="none", exact=True).click()
    page.get_by_role("button", name="Reset", exact=True).click()
    message = page.wait_for_selector(".nplsim-config-error")
    assert "needs spv_form 'trust' or 'company'" in message.inner_text()
    assert page.get_by_text("Traceback").count() == 0
    assert page.problems == []
