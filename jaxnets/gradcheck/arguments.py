"""The checks' arguments, checked as everywhere in jaxnets: each error names the argument, its value and the fix.

Strings are converted here, once: a loss by name (through `jaxnets.training.validate.check_loss`), a penalty by
the name it prints ("l2(0.1, 1000)"), the finite-difference mode. Inside, the checks see only objects.
"""
from __future__ import annotations

import math
import numbers
import re

import jax.numpy as jnp
import numpy as np

from jaxnets.core import Ctx

MODES = ("auto", "coordinates", "directions")
_PENALTY = re.compile(r"^\s*(l1|l2)\s*\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)\s*$")


def step(value, where: str) -> float:
    """The finite-difference step: a finite number > 0 (relative to each leaf's rms, see `differences`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: step must be a finite number > 0 (the relative finite-difference step, e.g. "
                         f"1e-5), got {value!r}")
    return float(value)


def directions(value, where: str) -> int:
    """The number of random directions per leaf: an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: directions must be an int >= 1 (random directions per leaf, e.g. 4), got "
                         f"{value!r}")
    return int(value)


def finite_diff(value, where: str):
    """"coordinates", "directions", "auto" (True is "auto") or None (False: no finite differences)."""
    if value is False or value is None:
        return None
    if value is True:
        return "auto"
    if not isinstance(value, str) or value not in MODES:
        raise ValueError(f"{where}: finite_diff must be True/'auto', 'coordinates', 'directions' or False, got "
                         f"{value!r}")
    return value


def ctx(value, where: str) -> Ctx:
    """A `jaxnets.Ctx`."""
    if not isinstance(value, Ctx):
        raise TypeError(f"{where}: ctx must be a jaxnets.Ctx, e.g. Ctx(train=True, key=jax.random.key(0)), got "
                        f"{type(value).__name__} {value!r}")
    return value


def loss(value, where: str):
    """A `jaxnets.losses.Loss`, or its name; the same rule as `fit`."""
    from jaxnets.training import validate

    return validate.check_loss(value, where)


def penalty(value, where: str):
    """None, a `jaxnets.losses.Penalty` (value and grad), or its printed name: "l2(lmbda, n)" or "l1(lmbda, n)"."""
    from jaxnets import losses

    if value is None:
        return None
    if isinstance(value, str):
        match = _PENALTY.match(value)
        if match is None:
            raise ValueError(f"{where}: a penalty by name reads 'l2(lmbda, n)' or 'l1(lmbda, n)' (as a penalty "
                             f"prints itself, e.g. 'l2(0.1, 1000)'), got {value!r}; or pass losses.l2(lmbda, n)")
        kind, lmbda, n = match.groups()
        try:
            lmbda_value, n_value = float(lmbda), int(n)
        except ValueError:
            raise ValueError(f"{where}: in the penalty {value!r}, lmbda must be a number and n an int") from None
        return (losses.l2 if kind == "l2" else losses.l1)(lmbda_value, n_value)
    if not (callable(getattr(value, "value", None)) and callable(getattr(value, "grad", None))):
        raise TypeError(f"{where}: penalty must be None, a jaxnets Penalty (value and grad, e.g. losses.l2(0.1, "
                        f"1000)) or its name 'l2(0.1, 1000)', got {type(value).__name__}")
    return value


def compute_dtype(value, where: str):
    """None or a floating dtype (jnp.bfloat16, jnp.float16, jnp.float32, jnp.float64)."""
    if value is None:
        return None
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        raise TypeError(f"{where}: compute_dtype must be a floating dtype such as jnp.bfloat16, got {value!r}") \
            from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"{where}: compute_dtype must be a floating dtype (jnp.bfloat16, jnp.float16, jnp.float32), "
                         f"got {dtype}: gradients cannot be computed in an integer or complex dtype")
    return dtype


def key(value, where: str):
    """None or one PRNG key (`jaxnets.training.validate.check_key`)."""
    from jaxnets.training import validate

    return None if value is None else validate.check_key(value, f"{where}: key")
