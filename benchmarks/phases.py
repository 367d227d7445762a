"""Where does a quarter's time go? Milliseconds per quarter for each phase of ``step()``.

Usage::

    python benchmarks/phases.py                       # 1M loans, 40 quarters
    python benchmarks/phases.py --loans 200000 --quarters 20
    python benchmarks/phases.py --profile 25          # also cProfile's 25 costliest functions

Each phase method of ``NPLMarketModel.step`` (the loan book, lending, the banks' books, the AMC
auctions, the deals, the secondary market, the power sector, the measurements) is wrapped with a
timer on the model instance only; the project's code is not changed. A tiny untimed run first
loads the scenario files and the compiled loan-book loops (see ``throughput.warm_up``).
"""

from __future__ import annotations

import argparse
import ast
import cProfile
import inspect
import io
import pstats
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput as tp  # noqa: E402  (the benchmark scripts are not a package)


def step_phases(model: Any) -> list[tuple[str, Any, str]]:
    """The calls of ``step()`` in order, as (label, owner, method name): a phase of the model
    (``self.begin_quarter()``), of one of its institutions (``self.desk.close_due()``), every
    agent of a type (``banks.do(StateBank.close_books)``) or a function of the model's module."""
    source = textwrap.dedent(inspect.getsource(type(model).step))
    namespace = vars(sys.modules[type(model).__module__])
    phases = []
    calls = [n for n in ast.walk(ast.parse(source).body[0]) if isinstance(n, ast.Call)]
    for node in sorted(calls, key=lambda n: (n.lineno, n.col_offset)):
        func = node.func
        if isinstance(func, ast.Name) and callable(namespace.get(func.id)):
            phases.append((func.id, sys.modules[type(model).__module__], func.id))
        elif isinstance(func, ast.Attribute) and func.attr == "do" and node.args:
            cls_name, method = ast.unparse(node.args[0]).split(".")
            phases.append((f"{cls_name}.{method}", namespace[cls_name], method))
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute):
            if isinstance(func.value.value, ast.Name) and func.value.value.id == "self":
                owner = getattr(model, func.value.attr)
                phases.append((f"{func.value.attr}.{func.attr}", owner, func.attr))
        elif isinstance(func, ast.Attribute) and ast.unparse(func.value) == "self":
            phases.append((func.attr, model, func.attr))
    return list({label: (label, owner, name) for label, owner, name in phases}.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--quarters", type=int, default=None, help="default: the scenario's 40")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also print cProfile's N costliest functions (own time); the "
                             "phase times then include the profiler's overhead")  # fmt: skip
    args = parser.parse_args(argv)

    from nplsim import NPLMarketModel

    tp.warm_up(args.seed)
    overrides = {"n_loans": args.loans}
    if args.quarters is not None:
        overrides["quarters"] = args.quarters
    t0 = time.perf_counter()
    model = NPLMarketModel(scenario=tp.SCENARIO, rng=args.seed, **overrides)
    build = time.perf_counter() - t0

    spent: dict[str, float] = defaultdict(float)
    phases = step_phases(model)
    collector = ("DataCollector.collect", model.datacollector, "collect")
    for label, owner, method in [*phases, collector]:
        original = getattr(owner, method)

        def timed(*a, _original=original, _label=label, **k):
            started = time.perf_counter()
            try:
                return _original(*a, **k)
            finally:
                spent[_label] += time.perf_counter() - started

        setattr(owner, method, timed)

    profiler = cProfile.Profile() if args.profile else None
    t1 = time.perf_counter()
    if profiler:
        profiler.enable()
    while model.running:
        model.step()
    if profiler:
        profiler.disable()
    steps = time.perf_counter() - t1
    quarters = model.config.quarters

    print(f"nplsim {tp.SCENARIO}, {args.loans:,} loans, {quarters} quarters, seed {args.seed}")
    print(f"construction {build:.3f} s; quarters {steps:.3f} s = {1e3 * steps / quarters:.1f} ms "
          "a quarter")  # fmt: skip
    print(f"{'phase (in step order)':<40} {'ms/quarter':>10} {'share':>7}")
    for label in [*(p[0] for p in phases), "DataCollector.collect"]:
        if label in spent:
            ms = 1e3 * spent[label] / quarters
            print(f"{label:<40} {ms:>10.2f} {100 * spent[label] / steps:>6.1f}%")
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
