"""check_vjp and check_grad: any JAX function's custom rule against autodiff of the undecorated function and
float64 finite differences, one row per argument leaf; wrong rules of each kind fail with a first line naming the
argument, leaf and index; integer arguments are skipped with a note; batched and reentrant options."""
import itertools

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

from jaxnets import gradcheck, testing

X = jax.random.normal(jax.random.key(0), (4, 3))
W = jax.random.normal(jax.random.key(1), (3, 5))


def layer_fn(bwd):
    """y = tanh(x @ w) with the given bwd rule (residuals x, w, y)."""
    @jax.custom_vjp
    def layer(x, w):
        return jnp.tanh(x @ w)

    def fwd(x, w):
        y = jnp.tanh(x @ w)
        return y, (x, w, y)

    layer.defvjp(fwd, bwd)
    return layer


def good_bwd(res, g):
    x, w, y = res
    d = g * (1 - y * y)
    return d @ w.T, x.T @ d


def test_a_correct_rule_passes_with_every_option():
    report = gradcheck.check_vjp(layer_fn(good_bwd), X, W, batched=True, reentrant=True)
    assert [(r.check, r.layer, r.leaf, r.shape) for r in report.rows] == [("vjp", "layer", "x", (4, 3)),
                                                                          ("vjp", "layer", "w", (3, 5))]
    assert report.fd == "coordinates" and report.fd_dtype == "float64" and report.manual_dtype == "float32"
    assert any(n.startswith("batched: ") and "equals" in n for n in report.notes)
    assert any(n.startswith("reentrant: ") and "identical" in n for n in report.notes)
    report.assert_close()


def test_a_wrong_value_names_argument_leaf_index_and_three_values():
    def bwd(res, g):
        dx, dw = good_bwd(res, g)
        return dx, dw.at[2, 4].multiply(1.2)

    with pytest.raises(AssertionError) as err:
        gradcheck.check_vjp(layer_fn(bwd), X, W).assert_close()
    first = err.value.args[0].splitlines()[0]
    assert first.startswith("gradient mismatch in the custom rule of layer: argument w: rule~autodiff relative error")
    assert "; worst at w[2, 4]: rule " in first and ", autodiff " in first and ", finite differences " in first


@pytest.mark.parametrize("bwd, problem", [
    (lambda res, g: good_bwd(res, g) + (g,), "bwd returns 3 cotangents for 2 arguments (x, w)"),
    (lambda res, g: good_bwd(res, g)[:1], "bwd returns 1 cotangents for 2 arguments (x, w)"),
    (lambda res, g: good_bwd(res, g)[0], "bwd returns an array of shape (4, 3), not a tuple of 2 cotangents"),
    (lambda res, g: (good_bwd(res, g)[0], good_bwd(res, g)[1].T), "the cotangent of w has shape (5, 3) but w has "
                                                                   "shape (3, 5)"),
    (lambda res, g: (good_bwd(res, g)[0].astype(jnp.int32), good_bwd(res, g)[1]),
     "the cotangent of x has integer dtype int32"),
], ids=["three", "one", "bare array", "shape", "integer"])
def test_a_misshapen_rule_fails_before_any_value(bwd, problem):
    report = gradcheck.check_vjp(layer_fn(bwd), X, W)
    assert report.rows == () and not report.passed
    with pytest.raises(AssertionError) as err:
        report.assert_close()
    first = err.value.args[0].splitlines()[0]
    assert first.startswith("wrong cotangent structure from the custom_vjp rule of layer: " + problem), first


def test_none_is_a_zero_cotangent_and_a_raising_rule_is_reported():
    @jax.custom_vjp
    def double(x, w):          # w has an exactly-zero gradient
        return 2 * x + 0 * w

    double.defvjp(lambda x, w: (double(x, w), None), lambda res, g: (2 * g, None))
    report = gradcheck.check_vjp(double, X, X)
    report.assert_close()
    assert report.rows[1].manual_vs_autodiff == (0.0, 0.0)
    broken = layer_fn(lambda res, g: (res[0] @ g, None))
    assert gradcheck.check_vjp(broken, X, W).problems[0].startswith("the custom_vjp rule of layer raised TypeError")


def test_pytree_and_integer_arguments():
    @jax.custom_vjp
    def affine(params, x, n):
        return jnp.tanh(x @ params["w"] + params["b"]) * n

    def fwd(params, x, n):
        y = jnp.tanh(x @ params["w"] + params["b"])
        return y * n, (params, x, y, n)

    def bwd(res, g):
        params, x, y, n = res
        d = g * n * (1 - y * y)
        return {"w": x.T @ d, "b": 2 * d.sum(0)}, d @ params["w"].T, None   # "b": twice too large

    affine.defvjp(fwd, bwd)
    params = {"w": W, "b": jnp.ones(5)}
    report = gradcheck.check_vjp(affine, params, X, jnp.int32(3))
    assert [r.leaf for r in report.rows] == ["params['b']", "params['w']", "x"]
    assert report.notes == ("not differentiated: n (int32)",)
    with pytest.raises(AssertionError, match=r"^gradient mismatch in the custom rule of affine: "
                                             r"argument params\['b'\]: .*worst at params\['b'\]\[\d\]: rule "):
        report.assert_close()


def test_nondiff_argnums_and_custom_jvp():
    @jax.custom_vjp
    def power(p, x):
        return x ** p

    power_nd = jax.custom_vjp(lambda p, x: x ** p, nondiff_argnums=(0,))
    power_nd.defvjp(lambda p, x: (x ** p, x), lambda p, x, g: (g * p * x ** (p - 1),))
    report = gradcheck.check_vjp(power_nd, 3, X)
    assert [r.leaf for r in report.rows] == ["x"] and "nondiff_argnums" in report.notes[0]
    report.assert_close()

    @jax.custom_jvp
    def log1pexp(x):
        return jnp.log1p(jnp.exp(x))

    log1pexp.defjvp(lambda primals, tangents: (log1pexp(primals[0]), tangents[0] * jax.nn.sigmoid(primals[0])))
    gradcheck.check_vjp(log1pexp, X).assert_close()

    @jax.custom_jvp
    def bad(x):
        return jnp.log1p(jnp.exp(x))

    bad.defjvp(lambda primals, tangents: (bad(primals[0]), tangents[0] * jax.nn.sigmoid(-primals[0])))
    with pytest.raises(AssertionError, match="^gradient mismatch in the custom rule of bad: argument x: "):
        gradcheck.check_vjp(bad, X).assert_close()


def test_check_grad_names_the_wrong_rule_inside_any_function():
    @jax.custom_jvp
    def softplus(x):
        return jnp.logaddexp(x, 0.0)

    softplus.defjvp(lambda p, t: (softplus(p[0]), t[0] * jax.nn.sigmoid(p[0]) * jnp.where(p[0] > 1.5, 1.1, 1.0)))

    def model(w, x):
        return jnp.sum(softplus(x @ w) ** 2)

    assert jax.jit(model)(W, X).shape == ()
    with pytest.raises(AssertionError) as err:
        gradcheck.check_grad(model, W, X).assert_close()
    first = err.value.args[0]
    assert first.startswith("gradient mismatch in model: argument w: jax.vjp~fd relative error"), first
    gradcheck.check_grad(lambda w, x: jnp.sum(jnp.tanh(x @ w) ** 2), W, X).assert_close()
    with pytest.raises(TypeError, match="has no custom_vjp/custom_jvp rule to check"):
        gradcheck.check_vjp(model, W, X)
    with pytest.raises(ValueError, match="no floating argument"):
        gradcheck.check_grad(lambda n: n * 2.0, jnp.arange(3))


def test_directional_differences_name_the_entry_of_a_large_argument():
    x = jax.random.normal(jax.random.key(2), (4000,))

    @jax.custom_vjp
    def cube(v):
        return v ** 3

    cube.defvjp(lambda v: (v ** 3, v), lambda v, g: (3 * v ** 2 * g * jnp.where(jnp.arange(4000) == 1234, 1.5, 1.0),))
    report = gradcheck.check_grad(cube, x, finite_diff="directions")
    assert report.fd == "4 directions" and report.rows[0].note == "re-checked 4000 of 4000 entries"
    with pytest.raises(AssertionError, match=r"worst at v\[1234\]: jax.vjp "):
        report.assert_close()


def test_a_function_that_computes_in_float32_gets_float32_differences(x64):
    def f32(x):
        return jnp.sin(x.astype(jnp.float32)) * 3

    report = gradcheck.check_grad(f32, jnp.linspace(-1, 1, 5))
    assert report.fd_dtype == "float32" and "finite differences in float32" in report.notes[0]
    assert "finite differences in float32 (coordinates)" in str(report).splitlines()[0]
    report.assert_close()


@jax.custom_batching.custom_vmap
def _passthrough(v):
    return v


@_passthrough.def_vmap
def _doubles_under_vmap(axis_size, in_batched, v):   # a wrong batching rule: right alone, wrong under vmap
    return 2 * v, in_batched[0]


def test_batched_and_reentrant_failures():
    batched = layer_fn(lambda res, g: (good_bwd(res, g)[0], _passthrough(good_bwd(res, g)[1])))
    gradcheck.check_vjp(batched, X, W).assert_close()                 # values alone: right
    report = gradcheck.check_vjp(batched, X, W, batched=True)
    assert report.problems[0].startswith("the vjp of layer: the backward under jax.vmap over 3 output cotangents "
                                         "differs from a loop over them at [1]"), report.problems
    calls = itertools.count()
    stateful = layer_fn(lambda res, g: (good_bwd(res, g)[0], good_bwd(res, g)[1] * (1 + next(calls))))
    report = gradcheck.check_vjp(stateful, X, W, reentrant=True, finite_diff=False)
    assert report.problems[0].startswith("the vjp of layer: two backward calls with the same arguments differ at "
                                         "[1][0, 0]: "), report.problems


def test_arguments_of_check_vjp_are_checked():
    f = layer_fn(good_bwd)
    with pytest.raises(ValueError, match="check_vjp: step must be a finite number > 0"):
        gradcheck.check_vjp(f, X, W, step=0)
    with pytest.raises(ValueError, match="check_grad: directions must be an int >= 1"):
        gradcheck.check_grad(f, X, W, directions=0)
    with pytest.raises(ValueError, match="check_vjp: finite_diff must be"):
        gradcheck.check_vjp(f, X, W, finite_diff="sometimes")
    with pytest.raises(TypeError, match="check_grad: key must be one JAX PRNG key"):
        gradcheck.check_grad(f, X, W, key=1)


def test_testing_check_grads_is_a_drop_in_that_names_the_argument():
    def bwd(res, g):
        dx, dw = good_bwd(res, g)
        return 1.05 * dx, dw

    f = layer_fn(bwd)
    jax.test_util.check_grads(layer_fn(good_bwd), (X, W), order=1, modes=["rev"])
    testing.check_grads(layer_fn(good_bwd), (X, W), order=1, modes=["rev"])
    with pytest.raises(AssertionError, match=r"^gradient mismatch in layer: argument x: .*worst at x\[\d, \d\]"):
        testing.check_grads(f, (X, W), order=1, modes=["rev"])
    with pytest.raises(NotImplementedError, match="order=2"):
        testing.check_grads(f, (X, W), order=2)
    assert np.isfinite(np.asarray(f(X, W))).all()
