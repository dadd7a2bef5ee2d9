"""Benchmark configurations and one small training-loop module per implementation.

Every implementation module exposes `build(cfg, x, y, seed) -> runner`, where `runner()` trains one epoch over
(x, y) in mini-batches of `cfg.batch` (shuffled, the last partial batch included, so every implementation
does the same work) and blocks until the result is computed. `x` is float32 (n, 784) and `y` int32 labels
(n,) as NumPy arrays; each module moves them to its device once, outside the timed epochs.
"""
from __future__ import annotations

import importlib
from typing import NamedTuple


class Config(NamedTuple):
    """One benchmark network: layer widths, hidden activation, cost, optimizer and batch size.

    activation: "sigmoid" (every layer, outputs included, Nielsen's network) or "relu" (hidden layers; the
    outputs are logits). loss: "quadratic" (½‖a − y‖² on sigmoid outputs, one-hot y, batch mean) or
    "softmax_ce" (softmax cross-entropy on logits). optimizer: ("sgd", lr), ("momentum", lr, μ) or ("adam", lr).
    """

    name: str
    sizes: tuple
    activation: str
    loss: str
    optimizer: tuple
    batch: int


CONFIGS = {
    "nielsen": Config("nielsen", (784, 30, 10), "sigmoid", "quadratic", ("sgd", 3.0), 10),
    "mid": Config("mid", (784, 256, 256, 10), "relu", "softmax_ce", ("momentum", 0.01, 0.9), 128),
    "large": Config("large", (784, 2048, 2048, 10), "relu", "softmax_ce", ("adam", 1e-3), 512),
}

# name -> (module, label). jaxnets rows first; "jaxnets-*" rows are not peers in the target check.
IMPLEMENTATIONS = {
    "jaxnets-manual": ("jaxnets_fit", "jaxnets.fit manual"),
    "jaxnets-autodiff": ("jaxnets_fit", "jaxnets.fit autodiff"),
    "jax": ("plain_jax", "plain JAX jit step"),
    "linen": ("flax_linen", "Flax linen"),
    "nnx": ("flax_nnx", "Flax NNX"),
    "equinox": ("eqx_peer", "Equinox"),
    "torch": ("torch_peer", "PyTorch CPU (2 thr)"),
}
PEERS = ("jax", "linen", "nnx", "equinox", "torch")


def builder(impl: str):
    """The `build` function of an implementation (imports its library lazily)."""
    module, _ = IMPLEMENTATIONS[impl]
    mod = importlib.import_module(f"peers.{module}")
    if impl.startswith("jaxnets-"):
        gradients = impl.split("-", 1)[1]
        return lambda cfg, x, y, seed: mod.build(cfg, x, y, seed, gradients=gradients)
    return mod.build


def optax_optimizer(cfg: Config):
    """The optax transformation of a config (shared by the JAX-based implementations)."""
    import optax

    kind, lr, *rest = cfg.optimizer
    if kind == "sgd":
        return optax.sgd(lr)
    if kind == "momentum":
        return optax.sgd(lr, momentum=rest[0])
    if kind == "adam":
        return optax.adam(lr)
    raise ValueError(f"unknown optimizer {kind!r}")


def jax_loss(cfg: Config):
    """loss(outputs, labels) -> batch-mean cost, written with jax.numpy for the JAX peers.

    quadratic: outputs are sigmoid activations, C = mean over the batch of ½‖a − onehot(y)‖².
    softmax_ce: outputs are logits, C = mean of −log softmax(z)_y.
    """
    import jax
    import jax.numpy as jnp
    import optax

    n_out = cfg.sizes[-1]
    if cfg.loss == "quadratic":
        def quadratic(a, y):
            return 0.5 * jnp.mean(jnp.sum((a - jax.nn.one_hot(y, n_out, dtype=a.dtype)) ** 2, axis=-1))
        return quadratic

    def softmax_ce(z, y):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(z, y))
    return softmax_ce


def batch_slices(n: int, batch: int):
    """(start, stop) of the mini-batches of an epoch: n // batch full ones, then the remainder if any."""
    full = n // batch
    spans = [(i * batch, (i + 1) * batch) for i in range(full)]
    if n % batch:
        spans.append((full * batch, n))
    return spans
