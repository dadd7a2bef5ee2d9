"""The four backprop equations, computed by hand in numpy on a 2-layer sigmoid network, against jaxnets.

    BP1  δᴸ = ∇ₐC ⊙ σ′(zᴸ)            BP2  δˡ = ((Wˡ⁺¹)ᵀ δˡ⁺¹) ⊙ σ′(zˡ)
    BP3  ∂C/∂bˡ = δˡ                  BP4  ∂C/∂Wˡ = δˡ (aˡ⁻¹)ᵀ        (averaged over the mini-batch)
"""
import jax.numpy as jnp
import numpy as np

import jaxnets as jn
from jaxnets import gradients, losses


def sigma(z):
    return 1 / (1 + np.exp(-z))


def test_four_equations_by_hand(x64):
    rng = np.random.default_rng(42)
    m, n0, n1, n2 = 4, 3, 5, 2
    # textbook layout: W has shape (n_out, n_in), columns are examples
    W1, b1 = rng.normal(size=(n1, n0)), rng.normal(size=(n1, 1))
    W2, b2 = rng.normal(size=(n2, n1)), rng.normal(size=(n2, 1))
    X, Y = rng.normal(size=(n0, m)), rng.uniform(size=(n2, m))

    z1 = W1 @ X + b1
    a1 = sigma(z1)
    z2 = W2 @ a1 + b2
    a2 = sigma(z2)
    cost = np.sum(0.5 * (a2 - Y) ** 2) / m
    delta2 = (a2 - Y) * sigma(z2) * (1 - sigma(z2))                # BP1, ∇ₐC = (a − y) per example
    delta1 = (W2.T @ delta2) * sigma(z1) * (1 - sigma(z1))          # BP2
    dW2, db2 = delta2 @ a1.T / m, delta2.sum(axis=1) / m            # BP4, BP3 averaged over the batch
    dW1, db1 = delta1 @ X.T / m, delta1.sum(axis=1) / m

    model = jn.serial(jn.Dense(n1), jn.Sigmoid, jn.Dense(n2), jn.Sigmoid)
    params = ({"w": jnp.asarray(W1.T), "b": jnp.asarray(b1[:, 0])}, (),
              {"w": jnp.asarray(W2.T), "b": jnp.asarray(b2[:, 0])}, ())
    state = ((), (), (), ())
    (value, _), g = gradients.manual(model, losses.quadratic)(params, state, jnp.asarray(X.T), jnp.asarray(Y.T),
                                                              jn.Ctx(train=True))
    np.testing.assert_allclose(value, cost, rtol=1e-13)
    np.testing.assert_allclose(g[2]["w"], dW2.T, rtol=1e-12)
    np.testing.assert_allclose(g[2]["b"], db2, rtol=1e-12)
    np.testing.assert_allclose(g[0]["w"], dW1.T, rtol=1e-12)
    np.testing.assert_allclose(g[0]["b"], db1, rtol=1e-12)

    # BP1 itself: the output Sigmoid's backward turns ∇ₐC into δᴸ (the cache of a Sigmoid is its output a)
    _, _, cache = model.forward(params, state, jnp.asarray(X.T), jn.Ctx())
    np.testing.assert_allclose(cache[3], a2.T, rtol=1e-13)
    _, delta_out = model.children[3].backward((), cache[3], losses.quadratic.grad(cache[3], jnp.asarray(Y.T)))
    np.testing.assert_allclose(delta_out * m, delta2.T, rtol=1e-12)
    # BP2: the second Dense and the first Sigmoid turn δ² into δ¹
    _, d_a1 = model.children[2].backward(params[2], cache[2], delta_out)
    _, delta_hidden = model.children[1].backward((), cache[1], d_a1)
    np.testing.assert_allclose(delta_hidden * m, delta1.T, rtol=1e-12)
