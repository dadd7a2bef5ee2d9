"""What the checks share: how a check of n entries is probed (per coordinate up to `COORDINATE_LIMIT`, else along
random directions), the report's labels, and small conversions of pytrees."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.gradcheck import arguments

__all__ = ["COORDINATE_LIMIT", "check_mode", "dtype_name", "path_str", "host", "size_of", "fd_label", "options",
           "AUTODIFF_LAYER", "AUTODIFF_LOSS", "is_autodiff", "autodiff_notes"]


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


# Rows of a layer whose backward is jax.vjp of its forward (Meta.autodiff_backward: layers.from_function, the interop
# adapters), or of a loss whose grad is jax.grad of its value (Loss.autodiff_grad: losses.from_function): their
# manual and autodiff gradients are the same computation, so "manual = autodiff" proves nothing there; only the
# columns against finite differences test them.
AUTODIFF_LAYER = "autodiff backward: man=auto by construction"
AUTODIFF_LOSS = "autodiff grad: man=auto by construction"


def is_autodiff(layer) -> bool:
    """True for a layer whose backward is autodiff of its forward (its Meta says so)."""
    return bool(getattr(getattr(layer, "meta", None), "autodiff_backward", False))


def autodiff_notes(model=None, loss=None) -> list:
    """The report's header lines naming the layers (pre-order) with an autodiff backward and a loss with an autodiff
    gradient: what the check cannot verify as hand-written."""
    from jaxnets import nodes

    lines = []
    found = [(path, layer) for path, layer in nodes.nodes(model) if is_autodiff(layer)] if model is not None else []
    if found:
        where = ", ".join(f"{layer.name}" + (f" at {'/'.join(map(str, path))}" if path else "") for path, layer in found)
        lines.append(f"autodiff backward (jax.vjp of the forward, not hand-written): {where}; manual~autodiff is 0 "
                     "there by construction, only the finite-difference columns test it")
    if loss is not None and getattr(loss, "autodiff_grad", False):
        lines.append(f"loss {getattr(loss, 'name', 'loss')}: gradient by autodiff (losses.from_function), not "
                     "hand-written; manual~autodiff is 0 by construction")
    return lines
