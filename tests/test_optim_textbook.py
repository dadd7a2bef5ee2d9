"""The textbook formulas of docs/optimizers.md, written out with plain jnp, against the arguments the doc names.

All in float64 (x64 fixture), a few steps on a small vector with a coordinate whose gradient is always zero.
"rtol 1e-12" means: the same formula up to rounding (e.g. rsqrt vs 1/sqrt); "equal" means bit for bit.
"""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import optim

STEPS = 6


def grads_at(t, w):
    """A gradient that depends on the weights (so trajectories feed back), with last coordinate always 0."""
    base = jnp.array([3.0, -0.5, 0.02, 0.0]) * (1.0 + 0.3 * t)
    return base + 0.5 * w * jnp.array([1.0, 1.0, 1.0, 0.0])


def run(tx, w0):
    w, state, out = w0, tx.init(w0), []
    for t in range(STEPS):
        u, state = tx.update(grads_at(t, w), state, w)
        w = optim.apply_updates(w, u)
        out.append(w)
    return jnp.stack(out)


def run_formula(step, w0, carry0):
    w, carry, out = w0, carry0, []
    for t in range(STEPS):
        w, carry = step(t, w, grads_at(t, w), carry)
        out.append(w)
    return jnp.stack(out)


@pytest.fixture
def w0(x64):
    return jnp.array([1.0, -2.0, 0.5, 0.25])


def test_lecture_notes_adagrad_is_adagrad_with_zero_initial_accumulator(w0):
    """γ ← γ + g²;  w ← w − η g / √(γ + ε),  γ_0 = 0."""
    lr, eps = 0.1, 1e-8

    def step(t, w, g, gamma):
        gamma = gamma + g * g
        return w - lr * g / jnp.sqrt(gamma + eps), gamma

    expected = run_formula(step, w0, jnp.zeros(4))
    np.testing.assert_allclose(run(optim.adagrad(lr, initial_accumulator_value=0.0, eps=eps), w0), expected, rtol=1e-12)
    assert float(jnp.max(jnp.abs(run(optim.adagrad(lr), w0) - expected))) > 1e-6  # optax's defaults differ


def test_momentum_recursion_is_trace_and_nielsen_form_is_lr_then_trace(w0):
    """∇̄ ← ∇ + β∇̄ (then w ← w − η∇̄) and Nielsen's v → μv − η∇C, w → w + v."""
    mu, schedule = 0.9, optim.exponential_decay(0.05, 2, 0.5)  # a decaying learning rate

    def heavy_ball(t, w, g, m):
        m = g + mu * m
        return w - 0.05 * m, m

    def nielsen(t, w, g, v):  # the optimizer evaluates schedules on an int32 count (float32 rates, as in optax)
        v = mu * v - schedule(jnp.int32(t)) * g
        return w + v, v

    np.testing.assert_allclose(run(optim.sgd(0.05, momentum=mu), w0), run_formula(heavy_ball, w0, jnp.zeros(4)),
                               rtol=1e-12)
    expected = run_formula(nielsen, w0, jnp.zeros(4))
    exact = run(optim.chain(optim.scale_by_learning_rate(schedule), optim.trace(decay=mu)), w0)
    np.testing.assert_array_equal(exact, expected)  # v is the trace of -η_t ∇C
    with_sgd = run(optim.sgd(schedule, momentum=mu), w0)  # lr outside the buffer: equal only for constant lr
    assert float(jnp.max(jnp.abs(with_sgd - expected))) > 1e-6


def test_textbook_rmsprop(w0):
    """γ ← βγ + (1 − β) g²;  w ← w − η g / √(γ + ε)."""
    lr, beta, eps = 0.01, 0.95, 1e-6

    def step(t, w, g, gamma):
        gamma = beta * gamma + (1 - beta) * g * g
        return w - lr * g / jnp.sqrt(gamma + eps), gamma

    np.testing.assert_allclose(run(optim.rmsprop(lr, decay=beta, eps=eps), w0), run_formula(step, w0, jnp.zeros(4)),
                               rtol=1e-12)


def test_kingma_ba_adam_algorithm_1(w0):
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8

    def step(t, w, g, carry):
        m, v = carry
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** (t + 1)), v / (1 - b2 ** (t + 1))
        return w - lr * m_hat / (jnp.sqrt(v_hat) + eps), (m, v)

    np.testing.assert_allclose(run(optim.adam(lr, b1, b2, eps), w0), run_formula(step, w0, (jnp.zeros(4),) * 2),
                               rtol=1e-12)


def test_l2_regularisation_and_nielsens_weight_decay(w0):
    """C = C0 + (λ/2n)‖w‖²: w → (1 − ηλ/n) w − η ∇C0 is add_decayed_weights(λ/n) before sgd."""
    lr, lmbda, n = 0.1, 5.0, 50

    def step(t, w, g, _):
        return (1 - lr * lmbda / n) * w - lr * g, None

    l2_sgd = optim.chain(optim.add_decayed_weights(lmbda / n), optim.sgd(lr))
    np.testing.assert_allclose(run(l2_sgd, w0), run_formula(step, w0, None), rtol=1e-12)


def test_adamw_is_decoupled_not_l2(w0):
    """adamw adds λw after Adam's scaling (scaled by lr only); L2 adds it to the gradient, before the scaling."""
    lr, lmbda = 0.01, 0.1
    decoupled = run(optim.adamw(lr, weight_decay=lmbda), w0)
    manual = run(optim.chain(optim.scale_by_adam(), optim.add_decayed_weights(lmbda), optim.scale_by_learning_rate(lr)),
                 w0)
    coupled = run(optim.chain(optim.add_decayed_weights(lmbda), optim.adam(lr)), w0)
    np.testing.assert_array_equal(decoupled, manual)
    assert float(jnp.max(jnp.abs(decoupled - coupled))) > 1e-4
    # with a zero gradient, decoupled decay shrinks w by exactly lr·λ·w per step, independent of Adam's scaling
    np.testing.assert_allclose(decoupled[:, 3], w0[3] * (1 - lr * lmbda) ** np.arange(1, STEPS + 1), rtol=1e-12)
