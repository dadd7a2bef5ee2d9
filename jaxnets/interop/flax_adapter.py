"""`from_flax(module)`: a Flax linen or NNX module as a jaxnets Layer (backward by autodiff, marked as such).

linen: the module's variables are split into jaxnets params (the "params" collection, a nested dict) and layer
state (every other collection, e.g. "batch_stats"); `init(key, input_shape)` calls `module.init` on one zero
example, so a linen module needs no input shape of its own. In training mode the other collections are mutable
and their updates are the new state; the PRNG streams named in `rng_streams` (default "dropout") get keys from
`ctx.key`. The call's mode argument is passed when named: `train_arg="train"` gives `train=ctx.train`,
`deterministic_arg="deterministic"` gives `deterministic=not ctx.train`.

NNX: the module is built already (its arrays are the initial values, so `init`'s key is not used); `nnx.split`
gives the `nnx.Param` variables (params, as a nested dict) and the others but the RNG state (layer state, e.g.
BatchNorm statistics). Each forward merges them into the module, sets `train()` / `eval()` from `ctx.train` and,
when `ctx.key` is given, reseeds every PRNG stream of the module from it (a dropout mask is then a function of the
context's key, as for jaxnets' Dropout); without a key the module's own streams are used as they were built.
"""
from __future__ import annotations

import jax

from jaxnets.core import Layer
from jaxnets.interop._common import check_arg, check_name, example, mode_kwargs, require
from jaxnets.layers.from_function import autodiff_layer

__all__ = ["from_flax"]


def _streams(where, rng_streams) -> tuple:
    if isinstance(rng_streams, str):
        rng_streams = (rng_streams,)
    rng_streams = tuple(rng_streams)
    if not all(isinstance(s, str) and s for s in rng_streams):
        raise TypeError(f"{where}(rng_streams): names of PRNG streams, e.g. ('dropout',), got {rng_streams!r}")
    return rng_streams


def _keys(ctx, rng_streams) -> dict:
    """{stream: key} drawn from the context's key (none without one)."""
    if ctx.key is None:
        return {}
    return {s: jax.random.fold_in(ctx.key, i) for i, s in enumerate(rng_streams)}


def from_flax(module, *, train_arg: str | None = None, deterministic_arg: str | None = None,
              rng_streams=("dropout",), name: str | None = None) -> Layer:
    """A jaxnets Layer running the Flax `module` (a `flax.linen.Module` or a `flax.nnx.Module`) on batches
    (m, ...) -> (m, ...): params and state as described in the module docstring, backward `jax.vjp` of the
    forward (`Meta(autodiff_backward=True)`).

    train_arg / deterministic_arg: linen only, the name of the `__call__` keyword that receives ctx.train, or
    not ctx.train (e.g. `deterministic_arg="deterministic"` for a module whose Dropout reads it); None: the call
    takes no mode argument. rng_streams: linen only, the PRNG streams fed from ctx.key in training mode (`rngs=`
    of apply); an NNX module has every stream reseeded. name: default "flax:<class name>", e.g. "flax:Dense".
    Raises ImportError naming `pip install 'jaxnets[interop]'` when flax is not installed.
    """
    nn = require("flax.linen", "from_flax")
    nnx = require("flax.nnx", "from_flax")
    check_name("from_flax", name)
    check_arg("from_flax", "train_arg", train_arg)
    check_arg("from_flax", "deterministic_arg", deterministic_arg)
    rng_streams = _streams("from_flax", rng_streams)
    label = name or f"flax:{type(module).__name__}"
    if isinstance(module, nn.Module):
        return _linen(module, label, train_arg, deterministic_arg, rng_streams)
    if isinstance(module, nnx.Module):
        if train_arg is not None or deterministic_arg is not None:
            raise TypeError("from_flax(train_arg, deterministic_arg): for linen modules only; an NNX module's mode is "
                            "set by its train()/eval(), which the layer calls from ctx.train")
        return _nnx(nnx, module, label)
    got = (f"the class {module.__name__} (instantiate it, e.g. nn.Dense(10))" if isinstance(module, type)
           else type(module).__name__)
    raise TypeError(f"from_flax(module): a flax.linen.Module or flax.nnx.Module instance, got {got}")


def _linen(module, label, train_arg, deterministic_arg, rng_streams) -> Layer:
    def init_variables(key, input_shape):
        k_params, k_rest = jax.random.split(key)
        rngs = {"params": k_params, **{s: jax.random.fold_in(k_rest, i) for i, s in enumerate(rng_streams)}}
        try:
            variables = module.init(rngs, example(input_shape), **mode_kwargs(train_arg, deterministic_arg, False))
        except TypeError as err:
            if train_arg is not None or deterministic_arg is not None:
                raise
            raise TypeError(f"from_flax({label}): calling the module on one example of shape {input_shape} "
                            f"failed ({err}); if its __call__ takes a mode argument, name it: "
                            "from_flax(module, train_arg='train') or deterministic_arg='deterministic'") from err
        variables = dict(variables)
        params = variables.pop("params", {})
        return params, variables

    def apply(params, state, x, ctx):
        kwargs = mode_kwargs(train_arg, deterministic_arg, bool(ctx.train))
        variables = {"params": params, **state}
        rngs = _keys(ctx, rng_streams) if ctx.train else {}
        if ctx.train and state:
            y, updates = module.apply(variables, x, rngs=rngs, mutable=list(state), **kwargs)
            return y, {**state, **dict(updates)}
        return module.apply(variables, x, rngs=rngs, **kwargs), state

    return autodiff_layer(init_variables, apply, label)


def _nnx(nnx, module, label) -> Layer:
    filters = (nnx.Param, nnx.RngState, ...)
    graphdef, params0, _, rest0 = nnx.split(module, *filters)
    # every PRNG stream of the module (a Dropout built with nnx.Rngs(0) draws from "default", not "dropout")
    tags = sorted({node.tag for _, node in nnx.iter_graph(module) if isinstance(node, nnx.RngStream)})
    params0, rest0 = nnx.to_pure_dict(params0), nnx.to_pure_dict(rest0)

    def merged(params, state, train, key):
        """The module with these params and state, in the mode `train`, its streams reseeded from `key`."""
        # fresh States: replace_by_pure_dict updates in place, and the variables (the RNG counts, which the call
        # advances) must be made in this trace, hence the copy by tree_map
        p, g, r = (jax.tree_util.tree_map(lambda a: a, st) for st in nnx.split(module, *filters)[1:])
        nnx.replace_by_pure_dict(p, params)
        nnx.replace_by_pure_dict(r, state)
        model = nnx.merge(graphdef, p, g, r)
        if train:
            model.train()
        else:
            model.eval()
        if key is not None and tags:
            nnx.reseed(model, **{tag: jax.random.fold_in(key, i) for i, tag in enumerate(tags)})
        return model

    def init_variables(key, input_shape):
        return params0, rest0

    def apply(params, state, x, ctx):
        model = merged(params, state, bool(ctx.train), ctx.key)
        y = model(x)
        return y, nnx.to_pure_dict(nnx.split(model, *filters)[3])

    return autodiff_layer(init_variables, apply, label)
