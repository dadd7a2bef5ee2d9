"""Layers from other JAX libraries' modules: `from_flax` (Flax linen and NNX) and `from_equinox` (Equinox).

    layer = jaxnets.interop.from_flax(flax.linen.Dense(10))
    layer = jaxnets.interop.from_equinox(eqx.nn.MLP(4, 3, 16, 2, key=jax.random.key(0)))

Each returns a jaxnets `Layer` that composes with any other (`serial(Flatten(), layer, Relu())`), trains with
`jaxnets.fit` and is checked by `jaxnets.gradcheck.check_model`. Its params are plain pytrees (nested dicts of
arrays), its backward is `jax.vjp` of its forward, so its `Meta(autodiff_backward=True)`: `summary` and the
checker mark it, and `check_layer` refuses it unless `allow_autodiff=True`. Train/eval mode and randomness come
from the `Ctx` (`ctx.train`, `ctx.key`) as for jaxnets' own layers.

Flax and Equinox are optional: `pip install 'jaxnets[interop]'`. They are imported only when an adapter is
called. Guide: docs/interop.md.
"""
from jaxnets.interop.equinox_adapter import from_equinox
from jaxnets.interop.flax_adapter import from_flax

__all__ = ["from_flax", "from_equinox"]
