"""The full parameter-recovery check of ``nplsim calibrate``: restart_2016's loan growth, deposit
growth and reserve ratio fitted to the model's own moments at known values, at a larger size
than the test suite's (``tests/test_calibrate.py``), and a table of truth against posterior.

Usage::

    python benchmarks/calibration_recovery.py                 # 20,000 slots, 12 quarters
    python benchmarks/calibration_recovery.py --loans 10000 --quarters 6 --population 30

Writes the calibration under a new temporary directory (or ``--out``, which must not exist) and
prints each parameter's truth, posterior median and 95% interval, the posterior/prior spread
ratio, and whether the interval covers the truth. Exits 1 if an interval misses its truth.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from nplsim.experiments.calibrate import calibrate
from nplsim.experiments.calibration_recovery import recovery_spec, recovery_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=20_000, help="loan slots (default 20,000)")
    parser.add_argument("--quarters", type=int, default=12, help="quarters (default 12)")
    parser.add_argument("--population", type=int, default=60, help="particles (default 60)")
    parser.add_argument("--generations", type=int, default=10, help="at most (default 10)")
    parser.add_argument("--min-epsilon", type=float, default=0.7, help="stop below (0.7)")
    parser.add_argument("--workers", type=int, default=None, help="default: one per CPU")
    parser.add_argument("--out", type=Path, default=None, help="a new directory")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="nplsim-recovery-")) / "calibration"
    spec = recovery_spec(
        out.parent / "recovery_spec.toml", population=args.population,
        generations=args.generations, min_epsilon=args.min_epsilon, n_loans=args.loans,
        quarters=args.quarters,
    )  # fmt: skip
    started = time.perf_counter()
    report = calibrate(spec, out, workers=args.workers, progress=True)
    table = recovery_table(out)
    elapsed = time.perf_counter() - started
    print(f"\n{report.generations} generations, threshold {report.epsilon:.3f}, "
          f"{report.simulations} simulations, {elapsed:.0f} s; {out}")  # fmt: skip
    print(table.to_string(index=False))
    return 0 if table["covered"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
