"""What the adapters share: the optional import with its install hint, argument checks, and the example batch."""
from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp

__all__ = ["require", "check_name", "check_arg", "example", "default_float"]

INSTALL = "pip install 'jaxnets[interop]'"


def require(module: str, where: str):
    """Import `module` (e.g. "flax.linen") for the adapter `where`, or raise ImportError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{where} needs {module.split('.')[0]}, which is not installed ({err}); install the optional "
                          f"dependencies with: {INSTALL}") from err


def check_name(where: str, name):
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"{where}(name): a non-empty str or None, got {name!r}")


def check_arg(where: str, argument: str, value):
    """None or a keyword name (a str that is a Python identifier)."""
    if value is not None and (not isinstance(value, str) or not value.isidentifier()):
        raise TypeError(f"{where}({argument}): None or the name of a keyword argument of the module's __call__, e.g. "
                        f"'train' or 'deterministic', got {value!r}")


def default_float():
    """JAX's default float dtype: float32, or float64 under jax_enable_x64."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def example(input_shape, dtype=None):
    """Zeros of shape (1, *input_shape): one example, to initialise a module for inputs of that shape."""
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    return jnp.zeros((1,) + tuple(input_shape), default_float() if dtype is None else dtype)


def mode_kwargs(train_arg, deterministic_arg, train: bool) -> dict:
    """The call's keyword arguments that carry the mode: train_arg=train, deterministic_arg=not train."""
    kwargs = {}
    if train_arg is not None:
        kwargs[train_arg] = train
    if deterministic_arg is not None:
        kwargs[deterministic_arg] = not train
    return kwargs
