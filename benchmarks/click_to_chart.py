"""Click-to-chart benchmark: from a click on Step to updated charts, in a real browser.

Usage::

    python benchmarks/click_to_chart.py                 # restart_2016, 100k loans, 25 steps
    python benchmarks/click_to_chart.py --steps 30 --query "scenario=shanxi_power"
    python benchmarks/click_to_chart.py --url http://127.0.0.1:8765/   # a running lab

Starts ``nplsim viz`` on a free port of 127.0.0.1 (unless ``--url``), opens the lab in Debian's
Chromium at 1280×800 on the Overview tab, runs untimed warm-up steps, then times each of
``--steps`` presses of Step (one quarter each). The time of a press is measured inside the page,
from the click event to the moment the status line shows the new quarter and every chart on
screen has drawn the new quarter's data (each chart marks its element with the data revision it
has drawn). The time the model itself took for each quarter is read from the page (the status
line shows it) to give the model's share. Prints median, 90th percentile and max; also the time
Playwright itself sees (it adds its own round trips). Not a test: the targets (median ≤ 300 ms,
max ≤ 600 ms at 100k loans) are checked by reading the numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from browser import chromium, lab_server, open_lab, quarter

CLICK_TO_CHART_JS = """async (target) => {
  const step = Array.from(document.querySelectorAll('.nplsim-run button'))
    .find(b => b.innerText.trim().toLowerCase() === 'step');
  const done = () => {
    const status = document.querySelector('.nplsim-quarter');
    if (!status || !status.textContent.startsWith(`Quarter ${target} `)) { return false; }
    const charts = Array.from(document.querySelectorAll('.nplsim-tab-content .nplsim-chart'));
    return charts.length > 0
      && charts.every(c => (c.dataset.revision || '').split('-')[1] === String(target));
  };
  return await new Promise(resolve => {
    let t0 = null;
    const observer = new MutationObserver(() => {
      if (t0 !== null && done()) { observer.disconnect(); resolve(performance.now() - t0); }
    });
    observer.observe(document.body, {subtree: true, childList: true, characterData: true,
                                     attributes: true, attributeFilter: ['data-revision']});
    t0 = performance.now();
    step.click();
  });
}"""


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return (f"median {statistics.median(values):6.0f}   p90 {p90:6.0f}   "
            f"min {min(values):6.0f}   max {max(values):6.0f}  ms")  # fmt: skip


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=25, help="timed presses of Step (≥ 20)")
    parser.add_argument("--warmup", type=int, default=4, help="untimed presses first")
    parser.add_argument("--query", default="", help="lab link query, e.g. scenario=pilot_2005")
    parser.add_argument("--url", help="a lab already running (default: start one)")
    args = parser.parse_args()
    if args.steps + args.warmup > 40:
        parser.error("steps + warmup must fit the 40 quarters of a run")

    with lab_server(args.url) as address, chromium() as page:
        open_lab(page, address, args.query)
        status = page.inner_text(".nplsim-quarter")
        for _ in range(args.warmup):
            page.evaluate(CLICK_TO_CHART_JS, quarter(page) + 1)
        in_page, seen, model = [], [], []
        for _ in range(args.steps):
            target = quarter(page) + 1
            started = time.perf_counter()
            in_page.append(page.evaluate(CLICK_TO_CHART_JS, target))
            seen.append(1e3 * (time.perf_counter() - started))
            model.append(float(page.inner_text(".nplsim-step-ms").split()[1]))
        charts = page.locator(".nplsim-tab-content .nplsim-chart").count()

    print(f"lab: {status}; {charts} charts on screen, 1280x800")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{args.steps} presses of Step after {args.warmup} untimed ones:")
    print(f"  click to updated charts (in the page)  {_summary(in_page)}")
    print(f"  as Playwright sees it                  {_summary(seen)}")
    print(f"  the model's own step                   {_summary(model)}")
    share = statistics.median(model) / statistics.median(in_page)
    print(f"  model step / click-to-chart, medians   {100 * share:.0f}%")


if __name__ == "__main__":
    main()
