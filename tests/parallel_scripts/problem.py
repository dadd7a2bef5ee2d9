"""The small training problem shared by the data-parallel test scripts and tests/test_parallel.py.

Imported by the subprocess scripts (which set XLA_FLAGS before importing JAX) and by the test process
itself; it sets no environment and touches no device at import time.
"""
from __future__ import annotations

import numpy as np

FEATURES, CLASSES, HIDDEN, BATCH, EPOCHS = 12, 4, 16, 32, 2
N = 192            # 6 batches of 32 per epoch
N_REM = 200        # 6 batches of 32 and a last one of 8 (splits over 8 devices, 1 per device)

# name -> (model: "mlp" or "residual", batch_norm, dropout rate, gradients, optimizer name, number of examples)
CASES = {
    "manual": ("mlp", False, None, "manual", "sgd", N_REM),
    "autodiff-dropout": ("mlp", False, 0.25, "autodiff", "adam", N),
    "batchnorm-manual": ("mlp", True, None, "manual", "sgd", N),
    "batchnorm-autodiff": ("mlp", True, None, "autodiff", "sgd", N),
    "residual-manual": ("residual", True, None, "manual", "sgd", N),
    "residual-autodiff": ("residual", True, 0.25, "autodiff", "adam", N),
}


def make_data(n: int = N, seed: int = 0):
    """Separable-ish random data: labels from a fixed random linear map of the inputs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    w = rng.normal(size=(FEATURES, CLASSES)).astype(np.float32)
    y = np.argmax(x @ w + 0.5 * rng.normal(size=(n, CLASSES)), axis=1).astype(np.int32)
    return x, y


def setup(case: str):
    """(model, loss, optimizer, gradients) of a case."""
    from jaxnets import losses, optim
    from jaxnets.core import serial
    from jaxnets.layers import BatchNorm, Dense, Dropout, FanInSum, FanOut, Relu, Tanh, branches, residual
    from jaxnets.models import mlp

    kind, batch_norm, dropout, gradients, opt, _ = CASES[case]
    if kind == "mlp":
        model = mlp([FEATURES, HIDDEN, CLASSES], activation="relu", batch_norm=batch_norm, dropout=dropout)
    else:   # skip connections, fan-out into branches (BatchNorm, Dropout inside), fan-in
        model = serial(Dense(HIDDEN), Relu,
                       residual(Dense(HIDDEN, use_bias=False), BatchNorm(), Relu),
                       FanOut(2), branches(serial(Dense(HIDDEN), Dropout(dropout or 0.0)), Tanh), FanInSum,
                       residual(Dense(CLASSES), shortcut=Dense(CLASSES, use_bias=False)))
    optimizer = optim.sgd(0.1, momentum=0.9) if opt == "sgd" else optim.adam(1e-2)
    return model, losses.softmax_cross_entropy, optimizer, gradients


def case_data(case: str):
    return make_data(CASES[case][5])


def train(case: str, mesh=None, data=None, seed: int = 0, batch_size: int = BATCH, info=None, **kwargs):
    """`fit` on the case for EPOCHS epochs; returns (host params, host state, final train loss). A dict
    `info` receives "devices": the number of devices holding the trained params."""
    import jax

    import jaxnets
    from jaxnets import parallel

    model, loss, optimizer, gradients = setup(case)
    data = case_data(case) if data is None else data
    res = jaxnets.fit(model, loss, optimizer, data, epochs=EPOCHS, batch_size=batch_size, key=jax.random.key(seed),
                      gradients=gradients, mesh=mesh, progress=False, **kwargs)
    if info is not None:
        info["devices"] = len(jax.tree_util.tree_leaves(res.params)[0].sharding.device_set)
    params, state = parallel.to_host((res.params, res.state))
    return params, state, float(res.history["train_loss"][-1])


def difference(a, b, floor: float = 1e-3) -> tuple[float, float]:
    """(max |a − b| over all entries, max over leaves of max |a − b| / max |b|) of two pytrees of arrays.

    The relative figure skips leaves with max |b| < `floor`: the biases of a Dense layer feeding BatchNorm have
    a zero gradient in exact arithmetic (BatchNorm removes the mean), so they hold rounding noise near 0 whose
    relative difference means nothing; the absolute figure covers them."""
    import jax

    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb) and la, "the two trees differ in structure"
    abs_d = [float(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64)))) for u, v in zip(la, lb)]
    scale = [float(np.max(np.abs(v))) for v in lb]
    rel_d = [d / s for d, s in zip(abs_d, scale) if s >= floor]
    return max(abs_d), max(rel_d, default=0.0)
