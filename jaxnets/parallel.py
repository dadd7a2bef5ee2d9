"""Data parallelism on JAX's own sharding: a 1-D device mesh with a "data" axis.

The global batch is split over the "data" axis; params and optimizer state are replicated; inside `jit`
XLA inserts the gradient all-reduce. Nothing here is a home-made collective.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices=None, axis: str = DATA_AXIS) -> Mesh:
    """A 1-D mesh over `devices` (default: all devices of all processes) named `axis`."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("make_mesh: no devices given")
    return Mesh(np.asarray(devices), (axis,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Arrays whose leading (batch) axis is split across the mesh's data axis."""
    return NamedSharding(mesh, P(mesh.axis_names[0]))


def replicated(mesh: Mesh) -> NamedSharding:
    """Arrays held whole on every device (params, optimizer state, layer state)."""
    return NamedSharding(mesh, P())


def check_divisible(mesh: Mesh, size: int, what: str = "batch size") -> None:
    """Raise ValueError unless `size` splits evenly over the mesh's devices."""
    n = mesh.devices.size
    if size % n:
        lower, upper = (size // n) * n, (size // n + 1) * n
        raise ValueError(
            f"{what} {size} does not divide over {n} devices; use a multiple of {n} "
            f"(e.g. {lower or upper} or {upper}), or a mesh with a device count that divides {size}"
        )
