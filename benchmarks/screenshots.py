"""The README's screenshots of the policy lab, taken in Debian's Chromium at 1280×800.

Usage::

    python benchmarks/screenshots.py            # writes docs/screenshot.png, -ab.png, -power.png
    python benchmarks/screenshots.py --out /tmp/shots

Starts ``nplsim viz`` on a free port of 127.0.0.1 and takes three pictures:

- ``screenshot.png``: the Overview tab of restart_2016 (100,000 loans, seed 42) at quarter 16,
  with "Reform now" to the strengthened law at quarter 8;
- ``screenshot-ab.png``: A/B mode on pilot_2005 (20,000 loans), B = a reform to the strengthened
  law at quarter 8, run to quarter 24, with four more seeds in the background;
- ``screenshot-power.png``: the Power tab of shanxi_power at quarter 24.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from browser import ROOT, chromium, lab_server, open_lab, quarter


def _step_to(page, target: int, scope: str = ".nplsim-run") -> None:
    while quarter(page) < target:
        now = quarter(page)
        page.locator(scope).get_by_role("button", name="Step", exact=True).click()
        page.wait_for_function(
            "q => !document.querySelector('.nplsim-quarter').textContent"
            ".startsWith(`Quarter ${q} `)",
            arg=now,
        )


def _set_quarters_per_step(page, quarters: int) -> None:
    """Move the Quarters-per-Step slider to ``quarters``, each key press once the lab has taken
    the one before (its value shows it)."""
    slider = page.locator(".nplsim-control-render-interval [role=slider]")
    value = page.locator(".nplsim-control-render-interval .nplsim-control-value")
    slider.focus()
    for key, shown in [("Home", 1)] + [("ArrowRight", q) for q in range(2, quarters + 1)]:
        if int(value.inner_text()) == shown:
            continue
        slider.press(key)
        page.wait_for_function("([el, v]) => el.textContent === v",
                               arg=[value.element_handle(), str(shown)])  # fmt: skip


def _settle(page, top: bool = True) -> None:
    if top:
        page.locator(".nplsim-quarter").scroll_into_view_if_needed()
        page.evaluate("window.scrollTo(0, 0)")
    page.mouse.move(5, 795)  # no hover readout in the picture
    page.wait_for_timeout(1500)


def overview(page, address: str, path: Path) -> None:
    """restart_2016 at quarter 16, reformed at quarter 8."""
    open_lab(page, address)
    _set_quarters_per_step(page, 7)
    _step_to(page, 7)
    page.get_by_role("button", name="Reform now", exact=True).click()
    page.wait_for_selector(".nplsim-reform-log")
    _step_to(page, 14)
    _set_quarters_per_step(page, 2)
    _step_to(page, 16)
    _settle(page)
    page.screenshot(path=path)


def ab_mode(page, address: str, path: Path) -> None:
    """pilot_2005: B reforms to the strengthened law at quarter 8."""
    open_lab(page, address, "scenario=pilot_2005&n_loans=20000")
    _set_quarters_per_step(page, 12)
    page.get_by_role("tab", name="A/B compare", exact=True).click()
    page.locator(".nplsim-ab .v-select:has(label:text-is('B is'))").click()
    page.get_by_role("option", name="a reform at a quarter", exact=True).click()
    page.locator(".nplsim-ab").get_by_role("button", name="Reset", exact=True).click()
    page.wait_for_timeout(3000)
    for _ in range(2):
        page.locator(".nplsim-ab").get_by_role("button", name="Step", exact=True).click()
        page.wait_for_timeout(2500)
    page.get_by_role("button", name="Run the seeds in the background").click()
    page.wait_for_selector(".nplsim-ab-seeds table", timeout=600_000)
    page.locator(".nplsim-ab-overlay").scroll_into_view_if_needed()
    _settle(page, top=False)
    page.screenshot(path=path)


def power(page, address: str, path: Path) -> None:
    """shanxi_power's Power tab at quarter 24."""
    open_lab(page, address, "scenario=shanxi_power")
    _set_quarters_per_step(page, 12)
    _step_to(page, 24)
    page.get_by_role("tab", name="Power", exact=True).click()
    page.wait_for_selector(".nplsim-coal-price[data-revision]")
    _settle(page)
    page.screenshot(path=path)


def main() -> None:
    """Take the three screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shots = {"screenshot.png": overview, "screenshot-ab.png": ab_mode,
             "screenshot-power.png": power}  # fmt: skip
    with lab_server() as address:
        for name, take in shots.items():
            with chromium() as page:
                take(page, address, args.out / name)
            print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
