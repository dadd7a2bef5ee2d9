"""Every optimizer minimises a quadratic bowl and the Rosenbrock function (the targets of optax's alias tests).

Both targets are optimised at once: the params are {"bowl": x (3,), "rosenbrock": (x, y)} and the objective is the
sum of the two functions, whose gradients do not interact, so each optimizer (all elementwise here) solves both
problems independently. 10,000 jitted steps in one `lax.scan`; the final params must match the minimisers to
rtol = atol = 3e-2, as in optax's `test_optimization`.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import optim

BOWL_START, BOWL_MIN = np.array([-1.0, 10.0, 1.0]), np.array([1.0, -1.0, 1.0])
ROSEN_A, ROSEN_B = 1.0, 100.0


def objective(params):
    bowl = jnp.sum((params["bowl"] - BOWL_MIN) ** 2)
    x, y = params["rosenbrock"]
    return bowl + (ROSEN_A - x) ** 2 + ROSEN_B * (y - x**2) ** 2


OPTIMIZERS = {  # learning rates as in optax's _OPTIMIZERS_UNDER_TEST where it has the same configuration
    "sgd": lambda: optim.sgd(1e-3, momentum=0.9),
    "sgd-nesterov": lambda: optim.sgd(1e-3, momentum=0.9, nesterov=True),
    "sgd-plain": lambda: optim.sgd(1.5e-3),
    "adagrad": lambda: optim.adagrad(1.0),
    "rmsprop": lambda: optim.rmsprop(5e-3),
    "rmsprop-momentum": lambda: optim.rmsprop(5e-3, momentum=0.9),
    "rmsprop-centered": lambda: optim.rmsprop(1e-3, centered=True, bias_correction=True),
    "adam": lambda: optim.adam(1e-1),
    "adam-nesterov": lambda: optim.adam(1e-2, nesterov=True),
    "adamw": lambda: optim.adamw(1e-1),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_minimises_bowl_and_rosenbrock(name):
    tx = OPTIMIZERS[name]()
    start = {"bowl": jnp.asarray(BOWL_START, jnp.float32), "rosenbrock": (jnp.float32(0.0), jnp.float32(0.0))}

    @jax.jit
    def solve(params):
        def step(carry, _):
            p, s = carry
            u, s = tx.update(jax.grad(objective)(p), s, p)
            return (optim.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=10_000)
        return p

    final = solve(start)
    np.testing.assert_allclose(final["bowl"], BOWL_MIN, rtol=3e-2, atol=3e-2)
    np.testing.assert_allclose(np.array(final["rosenbrock"]), [ROSEN_A, ROSEN_A**2], rtol=3e-2, atol=3e-2)
    assert float(objective(final)) < float(objective(start)) * 1e-3
