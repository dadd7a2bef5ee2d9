"""The textbook CNNs in plain JAX, Flax linen and PyTorch, for benchmarks/drivers.py.

A `CnnConfig` names conv stages (feature maps of 5×5 VALID convolutions, each followed by ReLU and 2×2 max
pooling), a dense hidden layer with ReLU and 10 logits, softmax cross-entropy, SGD (with `momentum` when it is
not None) and the batch size: cnn = (20,), cnn2 = (20, 40), hidden 100, batch 64, SGD 0.1 — the shapes of
`jaxnets.models.cnn/cnn2`; `MOMENTUM_CONFIGS` are the same nets with SGD 0.01, momentum 0.9. Every
`build(cfg, x, y, seed)` returns `run()` training one epoch over (x, y) (N, 28, 28, 1) reshuffled each epoch,
the last partial batch included, blocking until done (the same contract as the MLP peers).

- plain JAX: the best hand-written loop — data on the device, one `jax.jit` step per mini-batch with params and
  optimizer state donated and the batch cut inside the step (`peers._jaxloop`), `jax.value_and_grad`, optax.
- Flax linen: `nn.Conv`, `nn.max_pool`, `nn.Dense`, `flax.training.train_state`, the same loop.
- PyTorch CPU: `nn.Sequential` on NCHW tensors, `torch.optim.SGD`, 2 threads.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

N_CLASSES = 10


class CnnConfig(NamedTuple):
    name: str
    features: tuple
    hidden: int = 100
    lr: float = 0.1
    batch: int = 64
    momentum: float | None = None


CNN_CONFIGS = {"cnn": CnnConfig("cnn", (20,)), "cnn2": CnnConfig("cnn2", (20, 40))}
MOMENTUM_CONFIGS = {name: cfg._replace(lr=0.01, momentum=0.9) for name, cfg in CNN_CONFIGS.items()}


def optax_sgd(cfg):
    """The config's optimizer in optax (the same transformation jaxnets.optim.sgd builds)."""
    import optax

    return optax.sgd(cfg.lr, momentum=cfg.momentum)


def jaxnets_model(cfg):
    import jaxnets

    return jaxnets.models.cnn(features=cfg.features, hidden=cfg.hidden, activation="relu")


def _flat_size(cfg, side=28):
    for _ in cfg.features:
        side = (side - 4) // 2
    return side * side * cfg.features[-1]


def build_jax(cfg, x, y, seed):
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

    from peers import _jaxloop

    key = jax.random.PRNGKey(seed)
    params, c_in = [], 1
    for f in cfg.features:
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (5, 5, c_in, f)) * jnp.sqrt(2 / (25 * c_in)), jnp.zeros(f)))
        c_in = f
    for n_in, n_out in ((_flat_size(cfg), cfg.hidden), (cfg.hidden, N_CLASSES)):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (n_in, n_out)) / jnp.sqrt(n_in), jnp.zeros(n_out)))
    tx = optax_sgd(cfg)
    state = [(params, tx.init(params))]
    stages = len(cfg.features)

    def forward(p, xb):
        h = xb
        for w, b in p[:stages]:
            h = lax.conv_general_dilated(h, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
            h = lax.reduce_window(jax.nn.relu(h), -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        h = h.reshape(h.shape[0], -1)
        (w1, b1), (w2, b2) = p[stages:]
        return jax.nn.relu(h @ w1 + b1) @ w2 + b2

    def train_step(p, opt_state, xb, yb):
        loss, grads = jax.value_and_grad(
            lambda q: optax.softmax_cross_entropy_with_integer_labels(forward(q, xb), yb).mean())(p)
        updates, opt_state = tx.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss

    @partial(jax.jit, donate_argnums=(0, 1))
    def step_at(p, opt_state, xs, ys, i):
        return train_step(p, opt_state, *_jaxloop.batch_at(xs, ys, i, cfg.batch))

    step_rest = jax.jit(train_step, donate_argnums=(0, 1))
    return _jaxloop.driver(x, y, cfg.batch, seed, *_closures(state, step_at, step_rest))


def _closures(state, step_at, step_rest):
    def at(xs, ys, i):
        p, opt_state, loss = step_at(*state[0], xs, ys, i)
        state[0] = (p, opt_state)
        return loss

    def rest(xb, yb):
        p, opt_state, loss = step_rest(*state[0], xb, yb)
        state[0] = (p, opt_state)
        return loss

    return at, rest


def build_linen(cfg, x, y, seed):
    import jax
    import optax
    from flax import linen as nn
    from flax.training import train_state

    from peers import _jaxloop

    class Net(nn.Module):
        @nn.compact
        def __call__(self, h):
            for f in cfg.features:
                h = nn.max_pool(nn.relu(nn.Conv(f, (5, 5), padding="VALID")(h)), (2, 2), strides=(2, 2))
            h = h.reshape(h.shape[0], -1)
            return nn.Dense(N_CLASSES)(nn.relu(nn.Dense(cfg.hidden)(h)))

    net = Net()
    params = net.init(jax.random.PRNGKey(seed), x[:1])["params"]
    ts = train_state.TrainState.create(apply_fn=net.apply, params=params, tx=optax_sgd(cfg))
    state = [ts]

    def train_step(ts, xb, yb):
        def cost(p):
            return optax.softmax_cross_entropy_with_integer_labels(ts.apply_fn({"params": p}, xb), yb).mean()

        loss, grads = jax.value_and_grad(cost)(ts.params)
        return ts.apply_gradients(grads=grads), loss

    @partial(jax.jit, donate_argnums=0)
    def step_at(ts, xs, ys, i):
        return train_step(ts, *_jaxloop.batch_at(xs, ys, i, cfg.batch))

    step_rest = jax.jit(train_step, donate_argnums=0)

    def at(xs, ys, i):
        state[0], loss = step_at(state[0], xs, ys, i)
        return loss

    def rest(xb, yb):
        state[0], loss = step_rest(state[0], xb, yb)
        return loss

    return _jaxloop.driver(x, y, cfg.batch, seed, at, rest)


def build_torch(cfg, x, y, seed):
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(2)
    torch.manual_seed(seed)
    layers, c_in = [], 1
    for f in cfg.features:
        layers += [nn.Conv2d(c_in, f, 5), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = f
    layers += [nn.Flatten(), nn.Linear(_flat_size(cfg), cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, N_CLASSES)]
    model = nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum or 0.0)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()   # NHWC -> NCHW, once
    yt = torch.from_numpy(y).long()
    generator = torch.Generator().manual_seed(seed)

    def run(max_batches=None):
        perm = torch.randperm(xt.shape[0], generator=generator)
        xs, ys = xt[perm], yt[perm]
        for i, start in enumerate(range(0, xs.shape[0], cfg.batch)):
            if max_batches is not None and i >= max_batches:
                break
            opt.zero_grad()
            loss = F.cross_entropy(model(xs[start:start + cfg.batch]), ys[start:start + cfg.batch])
            loss.backward()
            opt.step()
        return float(loss)

    return run


BUILDERS = {"jax": build_jax, "linen": build_linen, "torch": build_torch}
