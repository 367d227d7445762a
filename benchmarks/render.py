"""Render benchmark: is the policy lab responsive on the default scenario?

Usage::

    python benchmarks/render.py                  # restart_2016, 100k loans, 10 timed quarters
    python benchmarks/render.py --steps 20 --warmup 8 --n-loans 200000

What one timed quarter covers, as a press of Step does in the app: ``PolicyLab.step()`` (one
quarter of ``NPLMarketModel``, data collection included), then Mesa's ``force_update()``, which
re-renders every view of ``nplsim.viz.app.VIEWS`` at once (both tabs; the app itself only
renders the tab on screen) inside ``solara.render``: KPI cards, law panel, balance sheets, bank
ratios, disposal flows, ABS market, deals table and the network (the network is redrawn every
``NETWORK_EVERY_Q`` quarters, so the max shows a quarter that redraws it). Each figure is drawn
into the figure its view kept and encoded as PNG. Untimed warm-up quarters first load fonts and
fill the model with deals. The script prints the median, min and max of step, render and total
milliseconds, and each chart's own drawing time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import solara
from mesa.visualization.utils import force_update, update_counter

from nplsim.viz import app, components

CHARTS = (
    "balance_sheet_figure",
    "bank_ratios_figure",
    "disposal_figure",
    "abs_market_figure",
    "network_figure",
)


@solara.component
def AllViews(lab: app.PolicyLab) -> None:  # noqa: N802 (a Solara component)
    """Every view of the page, as the app wires them."""
    update_counter.get()
    for view, _page in app.VIEWS:
        view(lab)


def _ms(values: list[float]) -> str:
    return (
        f"median {1e3 * statistics.median(values):7.1f}   "
        f"min {1e3 * min(values):7.1f}   max {1e3 * max(values):7.1f}"
    )


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed quarters (default 10)")
    parser.add_argument("--warmup", type=int, default=4, help="untimed quarters first")
    parser.add_argument("--n-loans", type=int, default=app.DEFAULTS["n_loans"])
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    lab = app.PolicyLab(n_loans=args.n_loans, rng=args.seed)
    market = lab.market
    assert market is not None, lab.config_error
    _, rc = solara.render(AllViews(lab), handle_error=False)
    for _ in range(args.warmup):
        lab.step()
        force_update()
    steps, renders, totals = [], [], []
    for _ in range(args.steps):
        start = time.perf_counter()
        lab.step()
        stepped = time.perf_counter()
        force_update()
        done = time.perf_counter()
        steps.append(stepped - start)
        renders.append(done - stepped)
        totals.append(done - start)
    rc.close()

    print(
        f"scenario {market.config.name}, {market.config.n_loans:,} loans, seed {args.seed}; "
        f"quarters {args.warmup + 1}-{args.warmup + args.steps} timed"
    )
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"step            {_ms(steps)}  ms")
    print(f"render (all)    {_ms(renders)}  ms")
    print(f"step + render   {_ms(totals)}  ms")
    print("each chart, drawn again into its figure and encoded as PNG:")
    for name in CHARTS:
        draw = getattr(components, name)
        fig = draw(market)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            components.figure_png(draw(market, fig=fig))
            times.append(time.perf_counter() - start)
        print(f"  {name:22s}  median {1e3 * statistics.median(times):6.1f} ms")


if __name__ == "__main__":
    main()
