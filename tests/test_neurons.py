"""The perceptron (football example, Rosenblatt's rule) and the single sigmoid neuron's closed-form update."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np

import jaxnets as jn
from jaxnets import losses, neurons


def test_football_perceptron_goes_in_exactly_five_cases():
    # weights (3, 1, 5) on (friends, team-wins, cheap-ticket), threshold 3: go iff 3f + t + 5c > 3
    params = neurons.perceptron_params([3, 1, 5], threshold=3)
    cases = jnp.array(list(itertools.product([0, 1], repeat=3)), dtype=jnp.float32)
    go = np.asarray(neurons.perceptron_predict(params, cases))
    going = {tuple(int(v) for v in c) for c, g in zip(np.asarray(cases), go) if g}
    assert going == {(0, 0, 1), (0, 1, 1), (1, 0, 1), (1, 1, 0), (1, 1, 1)}
    # the same decisions from the layer model (Dense(1) -> Step)
    out, _ = jn.apply(neurons.perceptron(), params, ((), ()), cases)
    np.testing.assert_array_equal(out[:, 0], go)


def test_rosenblatt_rule_learns_separable_functions_but_not_xor():
    x = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=jnp.float32)
    _, p0, _ = neurons.perceptron().init(jax.random.key(0), (2,))
    for target in ([0, 0, 0, 1], [0, 1, 1, 1]):  # AND, OR
        p, mistakes = neurons.train_perceptron(p0, x, jnp.array(target), epochs=20)
        np.testing.assert_array_equal(neurons.perceptron_predict(p, x), target)
        assert int(mistakes[-1]) == 0
    _, mistakes = neurons.train_perceptron(p0, x, jnp.array([0, 1, 1, 0]), epochs=50)
    assert int(jnp.min(mistakes)) > 0  # XOR is not linearly separable: never an error-free sweep


def test_one_rosenblatt_step_by_hand():
    params = neurons.perceptron_params([0.5, -1.0], threshold=0.0)
    x, t = jnp.array([1.0, 1.0]), 1.0  # w·x + b = -0.5 -> y = 0, error = 1
    (new, _), wrong = neurons.rosenblatt_step(params, x, t, learning_rate=0.1)
    np.testing.assert_allclose(new["w"][:, 0], [0.6, -0.9], rtol=1e-6)
    np.testing.assert_allclose(new["b"], [0.1], rtol=1e-6)
    assert bool(wrong)


def test_sigmoid_neuron_per_example_sgd_is_the_closed_form_update(x64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3))
    t = rng.uniform(size=6)
    w0, b0 = rng.normal(size=3), rng.normal()
    eta = 0.7
    # closed form, one example at a time: w <- w - eta (y - t) y (1 - y) x,  b <- b - eta (y - t) y (1 - y)
    w, b = w0.copy(), b0
    for xi, ti in zip(x, t):
        y = 1 / (1 + np.exp(-(xi @ w + b)))
        w, b = w - eta * (y - ti) * y * (1 - y) * xi, b - eta * (y - ti) * y * (1 - y)
    model = neurons.sigmoid_neuron()
    params = ({"w": jnp.asarray(w0)[:, None], "b": jnp.array([b0])}, ())
    for source in ("manual", "autodiff"):
        p, _ = neurons.sgd_per_example(model, losses.quadratic, params, ((), ()), jnp.asarray(x),
                                       jnp.asarray(t)[:, None], learning_rate=eta, gradients=source)
        np.testing.assert_allclose(p[0]["w"][:, 0], w, rtol=1e-12)
        np.testing.assert_allclose(p[0]["b"][0], b, rtol=1e-12)
