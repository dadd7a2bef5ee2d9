"""What the checks share: how a check of n entries is probed (per coordinate up to `COORDINATE_LIMIT`, else along
random directions), the report's labels, and small conversions of pytrees."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.gradcheck import arguments

__all__ = ["COORDINATE_LIMIT", "check_mode", "dtype_name", "path_str", "host", "size_of", "fd_label", "options"]


COORDINATE_LIMIT = 4096


def check_mode(finite_diff, size: int, where: str = "check"):
    """None (no finite differences), "coordinates" or "directions" for a check of `size` entries."""
    mode = arguments.finite_diff(finite_diff, where)
    if mode == "auto":
        return "coordinates" if size <= COORDINATE_LIMIT else "directions"
    return mode


def dtype_name(tree) -> str:
    floats = [a.dtype for a in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(a.dtype, jnp.floating)]
    return str(floats[0]) if floats else "float32"


def path_str(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)


def host(tree) -> list:
    return [np.asarray(a, np.float64) for a in jax.tree_util.tree_leaves(tree)]


def size_of(tree) -> int:
    return sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(tree))


def fd_label(mode, directions):
    return None if mode is None else ("coordinates" if mode == "coordinates" else f"{directions} directions")


def options(where, finite_diff, directions, step, key):
    arguments.finite_diff(finite_diff, where)
    return arguments.directions(directions, where), arguments.step(step, where), arguments.key(key, where)
