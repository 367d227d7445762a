"""Server-side render benchmark: what a press of Step costs the policy lab's Python process.

Usage::

    python benchmarks/render.py                  # restart_2016, 100k loans, 20 timed quarters
    python benchmarks/render.py --steps 20 --warmup 8 --n-loans 200000 --tab Banks

What one timed quarter covers, as a press of Step does in the app: ``PolicyLab.step()`` (one
quarter of ``NPLMarketModel``, data collection included), then Mesa's ``force_update()``, which
re-renders the views of the tab on screen inside ``solara.render``: for the Overview tab the KPI
cards, the law panel and four charts, each of which reads its series from the model and sends
them to its (already embedded) Vega-Lite chart. Untimed warm-up quarters first build the chart
specs and fill the model with deals. The browser's share — drawing the new data — is measured by
``benchmarks/click_to_chart.py``. The script prints the median, min and max of step, render and
total milliseconds, and each chart's data time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import solara
from mesa.visualization.utils import force_update, update_counter

from nplsim.viz import components, lab, series


@solara.component
def Tab(the_lab: lab.PolicyLab, view) -> None:  # noqa: N802 (a Solara component)
    """One tab of the page, as the app shows it (the page reads Mesa's counter once)."""
    view(the_lab, tick=update_counter.get())


def _ms(values: list[float]) -> str:
    return (
        f"median {1e3 * statistics.median(values):7.1f}   "
        f"min {1e3 * min(values):7.1f}   max {1e3 * max(values):7.1f}"
    )


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed quarters (default 20)")
    parser.add_argument("--warmup", type=int, default=4, help="untimed quarters first")
    parser.add_argument("--scenario", default="restart_2016")
    parser.add_argument("--n-loans", type=int, default=None, help="default: the scenario's")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tab", default="Overview", help="the tab on screen")
    args = parser.parse_args()

    settings = lab.settings_for(args.scenario, str(args.seed))
    kwargs = settings.lab_kwargs() | ({"n_loans": args.n_loans} if args.n_loans else {})
    the_lab = lab.PolicyLab(**kwargs)
    market = the_lab.market
    assert market is not None, the_lab.config_error
    view = next(view for name, _, view in components.TABS if name == args.tab)
    _, rc = solara.render(Tab(the_lab, view), handle_error=False)
    for _ in range(args.warmup):
        the_lab.step()
        force_update()
    steps, renders, totals = [], [], []
    for _ in range(args.steps):
        start = time.perf_counter()
        the_lab.step()
        stepped = time.perf_counter()
        force_update()
        done = time.perf_counter()
        steps.append(stepped - start)
        renders.append(done - stepped)
        totals.append(done - start)
    rc.close()

    print(
        f"scenario {market.config.name}, {market.config.n_loans:,} loans, seed {args.seed}, "
        f"tab {args.tab}; quarters {args.warmup + 1}-{args.warmup + args.steps} timed"
    )
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"step            {_ms(steps)}  ms")
    print(f"render (tab)    {_ms(renders)}  ms")
    print(f"step + render   {_ms(totals)}  ms")
    print("each chart's data, read from the model:")
    for name, definition in series.CHARTS.items():
        times = []
        for _ in range(5):
            start = time.perf_counter()
            definition.data(the_lab)
            times.append(time.perf_counter() - start)
        print(f"  {name:20s}  median {1e3 * statistics.median(times):6.1f} ms")


if __name__ == "__main__":
    main()
