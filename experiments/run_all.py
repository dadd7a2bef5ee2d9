"""Run every experiment: `python -m experiments.run_all [--quick] [--out DIR] [--only 1,6,3]`.

Experiments run in one process (JAX is imported and the data loaded once), in the order of importance used for
the full runs: 1, 6, 3, 12, 2, 4, 5, 11, 10, 7, 9, 8. A failing experiment is reported and the others still run; the
exit status is 1 if any failed. Full mode writes each experiment's row of experiments/README.md.
"""
from __future__ import annotations

import argparse
import importlib
import time
import traceback

import jaxnets
from experiments import common

EXPERIMENTS = {
    1: "e01_first_network",
    2: "e02_learning_slowdown",
    3: "e03_overfitting",
    4: "e04_optimizers",
    5: "e05_vanishing_gradients",
    6: "e06_cnn_vs_mlp",
    7: "e07_ensembles",
    8: "e08_pretraining",
    9: "e09_model_selection",
    10: "e10_universal_approximation",
    11: "e11_skip_connections",
    12: "e12_mnist_overfitting",
}
ORDER = (1, 6, 3, 12, 2, 4, 5, 11, 10, 7, 9, 8)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny smoke-test sizes (minutes in all)")
    p.add_argument("--out", default=None, help=f"output directory (default: {common.RESULTS}, or "
                                               f"{common.QUICK_RESULTS} with --quick)")
    p.add_argument("--only", default=None, help="comma-separated experiment numbers, e.g. 1,6")
    p.add_argument("--no-readme", action="store_true", help="do not update experiments/README.md")
    p.add_argument("--readme", default=str(common.README), help="README whose table gets the rows (full mode)")
    args = p.parse_args(argv)
    jaxnets.enable_compilation_cache()  # a rerun loads the programs an earlier run compiled
    chosen = [int(s) for s in args.only.split(",")] if args.only else list(ORDER)
    unknown = [i for i in chosen if i not in EXPERIMENTS]
    if unknown:
        p.error(f"unknown experiment number(s) {unknown}; choose from {sorted(EXPERIMENTS)}")
    flags = ["--readme", args.readme] + (["--out", args.out] if args.out else []) \
        + (["--quick"] if args.quick else []) + (["--no-readme"] if args.no_readme else [])
    times, failed, t0 = {}, [], time.perf_counter()
    for i in chosen:
        name = EXPERIMENTS[i]
        start = time.perf_counter()
        try:
            importlib.import_module(f"experiments.{name}").main(flags)
        except Exception:  # noqa: BLE001 - report and go on with the others
            traceback.print_exc()
            failed.append(name)
        times[name] = time.perf_counter() - start
    total = time.perf_counter() - t0
    print("\nrun_all summary" + (" (quick)" if args.quick else ""))
    for name, t in times.items():
        print(f"  {name:32s} {common.fmt_time(t):>8s}{'  FAILED' if name in failed else ''}")
    print(f"  {'total':32s} {common.fmt_time(total):>8s}  on {common.machine()}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
