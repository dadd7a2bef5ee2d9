"""`from_equinox(module)`: an Equinox module as a jaxnets Layer (backward by autodiff, marked as such).

`eqx.partition(module, eqx.is_inexact_array)` splits the module into its floating arrays, which become the
jaxnets params as a flat dict keyed by their path in the module ("layers[0].weight"), and everything else, kept
static; each forward puts them back together with `eqx.combine`. The module is built already, so its arrays are
the initial params (`init`'s key is not used). Equinox modules act on one example, so the forward maps the module
over the batch (`jax.vmap`), unless `vmap=False` for a module that takes batches itself. `ctx.train` sets
`eqx.nn.inference_mode(module, not train)` (Dropout and the like), and with `key_arg=True` the call receives
`key=` (one key per example, split from `ctx.key`; None without one). Stateful modules (`eqx.nn.State`, as in
`eqx.nn.BatchNorm`) are not supported.
"""
from __future__ import annotations

import jax

from jaxnets.core import Layer
from jaxnets.interop._common import check_name, require
from jaxnets.layers.from_function import autodiff_layer

__all__ = ["from_equinox"]


def _path(path) -> str:
    return jax.tree_util.keystr(path).lstrip(".")


def from_equinox(module, *, vmap: bool = True, key_arg: bool = False, name: str | None = None) -> Layer:
    """A jaxnets Layer running the Equinox `module` (an `eqx.Module` instance) on batches (m, ...) -> (m, ...).

    params: {path: array} of the module's floating arrays (a plain dict; note that jaxnets' default penalties
    regularise leaves under key "w" only: pass `mask=` to `losses.l2` for Equinox's "weight"); state: ().
    vmap: map the module over the batch axis (Equinox modules take one example); key_arg: the module's call
    takes `key=` (e.g. it contains eqx.nn.Dropout), fed from ctx.key. name: default "equinox:<class name>".
    The backward is `jax.vjp` of the forward (`Meta(autodiff_backward=True)`). Raises ImportError naming
    `pip install 'jaxnets[interop]'` when equinox is not installed.
    """
    eqx = require("equinox", "from_equinox")
    check_name("from_equinox", name)
    if not isinstance(module, eqx.Module):
        got = (f"the class {module.__name__} (instantiate it with its key)" if isinstance(module, type)
               else type(module).__name__)
        raise TypeError(f"from_equinox(module): an equinox.Module instance, got {got}")
    for argument, value in (("vmap", vmap), ("key_arg", key_arg)):
        if not isinstance(value, bool):
            raise TypeError(f"from_equinox({argument}): True or False, got {value!r}")
    arrays, static = eqx.partition(module, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(arrays)
    names = [_path(path) for path, _ in leaves]
    params0 = {n: leaf for n, (_, leaf) in zip(names, leaves)}
    label = name or f"equinox:{type(module).__name__}"

    def init_variables(key, input_shape):
        return dict(params0), ()

    def apply(params, state, x, ctx):
        model = eqx.combine(jax.tree_util.tree_unflatten(treedef, [params[n] for n in names]), static)
        model = eqx.nn.inference_mode(model, value=not ctx.train)
        if not key_arg:
            return (jax.vmap(model)(x) if vmap else model(x)), state
        if ctx.key is None:
            return (jax.vmap(lambda xi: model(xi, key=None))(x) if vmap else model(x, key=None)), state
        if not vmap:
            return model(x, key=ctx.key), state
        keys = jax.random.split(ctx.key, x.shape[0])
        return jax.vmap(lambda xi, ki: model(xi, key=ki))(x, keys), state

    return autodiff_layer(init_variables, apply, label)
