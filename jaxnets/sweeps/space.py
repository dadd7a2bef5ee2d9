"""Search spaces: grids, random-search distributions, and the split into numeric and structural axes.

    grid = {"learning_rate": [0.01, 0.1, 1.0], "lmbda": [0.0, 1.0]}          # grid_search: the product, 6 configs
    space = {"learning_rate": loguniform(1e-3, 1.0), "momentum": uniform(0.0, 0.99),
             "seed": randint(0, 1000), "activation": choice(["sigmoid", "relu"])}   # random_search

A *numeric* axis (every value an int or float, not bool) becomes a traced array inside the compiled sweep,
so all its values train in one program; any other axis (strings, bools, tuples such as layer sizes, or a
name listed in `static=`) is *structural*: one program per distinct combination of structural values.
"""
from __future__ import annotations

import itertools
import math
import numbers
from typing import Callable, NamedTuple, Sequence

import numpy as np


class Distribution(NamedTuple):
    """A random-search axis: a name for tables ("loguniform(0.001, 1)") and `draw(rng, n) -> list of n Python
    values` (made by `uniform`, `loguniform`, `randint`, `choice`, or by you)."""

    name: str
    draw: Callable[[np.random.Generator, int], list]

    def sample(self, rng: np.random.Generator, n: int) -> list:
        """n draws as Python values."""
        return list(self.draw(rng, n))


def _number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def uniform(low: float, high: float) -> Distribution:
    """Uniform on [low, high)."""
    if not (_number(low) and _number(high) and low < high):
        raise ValueError(f"uniform(low, high) needs numbers with low < high, got ({low!r}, {high!r})")
    low, high = float(low), float(high)
    return Distribution(f"uniform({low:g}, {high:g})", lambda rng, n: [float(v) for v in rng.uniform(low, high, n)])


def loguniform(low: float, high: float) -> Distribution:
    """log-uniform on [low, high): uniform in log space, the usual prior for learning rates and λ."""
    if not (_number(low) and _number(high) and 0 < low < high):
        raise ValueError(f"loguniform(low, high) needs 0 < low < high, got ({low!r}, {high!r})")
    lo, hi = math.log(low), math.log(high)
    return Distribution(f"loguniform({low:g}, {high:g})",
                        lambda rng, n: [float(math.exp(v)) for v in rng.uniform(lo, hi, n)])


def randint(low: int, high: int) -> Distribution:
    """Integers in [low, high) (e.g. seeds)."""
    if not (isinstance(low, numbers.Integral) and isinstance(high, numbers.Integral) and low < high):
        raise ValueError(f"randint(low, high) needs ints with low < high, got ({low!r}, {high!r})")
    low, high = int(low), int(high)
    return Distribution(f"randint({low}, {high})", lambda rng, n: [int(v) for v in rng.integers(low, high, n)])


def choice(values: Sequence) -> Distribution:
    """One of `values`, uniformly (numbers are traced; anything else is a structural choice)."""
    values = list(values)
    if not values:
        raise ValueError("choice(values) needs at least one value")
    return Distribution(f"choice({values!r})", lambda rng, n: [values[int(i)] for i in rng.integers(0, len(values), n)])


def grid_configs(grid: dict) -> list[dict]:
    """The Cartesian product of the grid's axes, last axis fastest; a scalar value is a one-point axis."""
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid must be a non-empty dict mapping hyper-parameter names to lists of values, e.g. "
                         "{'learning_rate': [0.01, 0.1, 1.0]}")
    axes = []
    for name, values in grid.items():
        _check_name(name)
        if isinstance(values, (list, tuple, np.ndarray)):
            values = list(values)
            if not values:
                raise ValueError(f"grid axis {name!r} is empty; give it at least one value")
        else:
            values = [values]
        axes.append([v.item() if isinstance(v, np.generic) else v for v in values])
    return [dict(zip(grid, combo)) for combo in itertools.product(*axes)]


def sample_configs(space: dict, n_trials: int, seed: int = 0) -> list[dict]:
    """`n_trials` configurations drawn from `space` (Distribution, list = choice, scalar = constant) with a
    numpy Generator seeded by `seed` (the same seed gives the same configurations)."""
    if not isinstance(space, dict) or not space:
        raise ValueError("space must be a non-empty dict, e.g. {'learning_rate': loguniform(1e-3, 1.0)}")
    if isinstance(n_trials, bool) or not isinstance(n_trials, numbers.Integral) or n_trials < 1:
        raise ValueError(f"n_trials must be a positive int, got {n_trials!r}")
    rng = np.random.default_rng(seed)
    columns = {}
    for name, dist in space.items():
        _check_name(name)
        if isinstance(dist, (list, tuple)) and not isinstance(dist, Distribution):
            dist = choice(dist)
        if isinstance(dist, Distribution):
            columns[name] = dist.sample(rng, int(n_trials))
        else:
            columns[name] = [dist] * int(n_trials)
    return [{name: columns[name][i] for name in space} for i in range(int(n_trials))]


def _check_name(name):
    if not isinstance(name, str) or not name:
        raise ValueError(f"hyper-parameter names must be non-empty strings, got {name!r}")


def split_axes(configs: list[dict], static: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(numeric names, structural names) of the configurations' keys."""
    names = list(configs[0])
    unknown = [s for s in static if s not in names]
    if unknown:
        raise ValueError(f"static={list(static)} names {unknown}, which are not hyper-parameters of this search "
                         f"({names})")
    numeric = [n for n in names if n not in static and all(_number(c[n]) for c in configs)]
    return numeric, [n for n in names if n not in numeric]


def numeric_arrays(configs: list[dict], numeric: list[str]) -> dict:
    """{name: array (K,)}: int32 for all-int axes, float32 otherwise."""
    out = {}
    for name in numeric:
        values = [c[name] for c in configs]
        integral = all(isinstance(v, numbers.Integral) for v in values)
        out[name] = np.asarray(values, np.int32 if integral else np.float32)
    return out


def group_by_structure(configs: list[dict], structural: list[str]) -> list[tuple[dict, list[int]]]:
    """[(structural values, indices of the configurations with them)], in order of first appearance."""
    groups: list[tuple[dict, list[int]]] = []
    for i, c in enumerate(configs):
        values = {n: c[n] for n in structural}
        for g_values, idx in groups:
            if _same(g_values, values):
                idx.append(i)
                break
        else:
            groups.append((values, [i]))
    return groups


def _same(a: dict, b: dict) -> bool:
    try:
        return all(bool(np.all(a[k] == b[k])) and type(a[k]) is type(b[k]) for k in a)
    except (TypeError, ValueError):
        return all(a[k] is b[k] for k in a)


__all__ = ["Distribution", "uniform", "loguniform", "randint", "choice", "grid_configs", "sample_configs"]
