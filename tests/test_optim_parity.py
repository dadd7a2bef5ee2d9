"""Step-by-step parity of jaxnets.optim with optax 0.2.8 (200 jitted steps per configuration).

Each configuration is a function `make(o)` called once with `o = jaxnets.optim` and once with `o = optax`: the
same names, arguments and defaults build both optimizers. The parameters are one pytree holding a tiny MLP
(gradients of its cross-entropy loss, written with plain jnp below) and a nested dict/tuple of leaves of several
shapes fed badly scaled random gradients (drawn once with NumPy, plus a term in the params so that the two
trajectories feed their own state back). Tolerances are those of the issue: max relative difference
<= 1e-6 (float32) and <= 1e-12 (float64) at every step, for params, updates and optimizer state.

Compilation dominates the cost, so configurations of one family run side by side in a single compiled `parity`
program; if that fails, each configuration is re-run alone to name the culprit.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnets import optim

STEPS = 200
RTOL = {jnp.float32: 1e-6, jnp.float64: 1e-12}

# ------------------------------------------------------------------------------------------------ problem
_rng = np.random.default_rng(1234)
_X = _rng.normal(size=(4, 16, 5))  # 4 mini-batches of 16 examples with 5 features
_Y = np.eye(3)[_rng.integers(0, 3, size=(4, 16))]  # one-hot labels, 3 classes
_MLP = [
    {"w": _rng.normal(size=(5, 8)) * 0.5, "b": _rng.normal(size=(8,)) * 0.1},
    {"w": _rng.normal(size=(8, 3)) * 0.5, "b": np.zeros(3)},
]
_MISC = {"a": _rng.normal(size=(3, 4)), "b": (np.array(0.7), {"c": _rng.normal(size=(2, 2, 3))})}
_MISC_SCALE = {"a": 500.0, "b": (5.0, {"c": 0.01})}  # badly scaled on purpose (cf. optax's fixtures)
_MISC_GRADS = jax.tree.map(lambda p: _rng.normal(size=(STEPS,) + p.shape), _MISC)


def mlp_loss(p, x, y):
    """Mean softmax cross-entropy of a 5-8-3 tanh MLP."""
    h = jnp.tanh(x @ p[0]["w"] + p[0]["b"])
    logits = h @ p[1]["w"] + p[1]["b"]
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - jnp.sum(y * logits, axis=-1))


def problem(dtype):
    """(params, grads_fn, loss_fn) in `dtype`; call after x64 is switched on for float64."""
    cast = lambda t: jax.tree.map(lambda v: jnp.asarray(v, dtype), t)  # noqa: E731
    params = {"mlp": cast(_MLP), "misc": cast(_MISC)}
    xs, ys, table = cast(_X), cast(_Y), cast(_MISC_GRADS)

    def grads_fn(p, t):
        g_mlp = jax.grad(mlp_loss)(p["mlp"], xs[t % 4], ys[t % 4])
        g_misc = jax.tree.map(lambda tab, v, s: s * tab[t] + 0.1 * v, table, p["misc"], _MISC_SCALE)
        return {"mlp": g_mlp, "misc": g_misc}

    def loss_fn(p):
        return mlp_loss(p["mlp"], xs[0], ys[0])

    return params, grads_fn, loss_fn


def weights_only(params):
    return jax.tree.map(lambda v: v.ndim > 1, params)


PREFIX_MASK = {"mlp": [{"w": True, "b": False}, {"w": True, "b": False}], "misc": True}

# ------------------------------------------------------------------------------------------------ configurations
CONFIGS = {
    "sgd": lambda o: o.sgd(0.05),
    "sgd-momentum": lambda o: o.sgd(0.01, momentum=0.9),
    "sgd-nesterov": lambda o: o.sgd(0.01, momentum=0.9, nesterov=True),
    "sgd-momentum0-array-lr": lambda o: o.sgd(jnp.asarray(0.02), momentum=0.0),
    "sgd-piecewise": lambda o: o.sgd(o.piecewise_constant_schedule(0.05, {50: 0.5, 150: 0.1}), momentum=0.5),
    "adagrad": lambda o: o.adagrad(0.1),
    "adagrad-textbook": lambda o: o.adagrad(0.5, initial_accumulator_value=0.0, eps=1e-10),
    "adagrad-expdecay": lambda o: o.adagrad(o.exponential_decay(0.3, 20, 0.9, staircase=True, end_value=0.05)),
    "rmsprop": lambda o: o.rmsprop(1e-3),
    "rmsprop-eps-outside": lambda o: o.rmsprop(1e-3, decay=0.99, eps=1e-6, eps_in_sqrt=False),
    "rmsprop-centered": lambda o: o.rmsprop(1e-3, centered=True),
    "rmsprop-centered-bc-cosine": lambda o: o.rmsprop(
        o.cosine_decay_schedule(1e-2, 150, alpha=0.1), centered=True, bias_correction=True, eps_in_sqrt=False
    ),
    "rmsprop-init1-bc": lambda o: o.rmsprop(1e-3, initial_scale=1.0, bias_correction=True),
    "rmsprop-nesterov": lambda o: o.rmsprop(1e-3, momentum=0.9, nesterov=True),
    "adam": lambda o: o.adam(1e-3),
    "adam-betas-eps-root": lambda o: o.adam(1e-2, b1=0.5, b2=0.99, eps=1e-6, eps_root=1e-8),
    "adam-nesterov-warmup": lambda o: o.adam(o.warmup_cosine_decay_schedule(0.0, 1e-2, 20, 200), nesterov=True),
    "adamw": lambda o: o.adamw(1e-3),
    "adamw-prefix-mask-wd-schedule": lambda o: o.adamw(1e-3, weight_decay=o.linear_schedule(0.1, 0.0, 100),
                                                       mask=PREFIX_MASK),
    "adamw-callable-mask-nesterov": lambda o: o.adamw(
        o.exponential_decay(1e-2, 50, 0.5), weight_decay=0.05, mask=weights_only, nesterov=True
    ),
    "clip-global-norm-adam": lambda o: o.chain(o.clip_by_global_norm(1.0), o.adam(1e-2)),
    "clip-l2-sgd-momentum": lambda o: o.chain(o.clip(0.5), o.add_decayed_weights(1e-3), o.sgd(0.05, momentum=0.9)),
}
FLOAT64_TOO = [  # every alias, with its most intricate options, also runs in float64 (test-time budget)
    "sgd-nesterov", "adagrad-textbook", "rmsprop-centered-bc-cosine", "rmsprop-nesterov", "adam-nesterov-warmup",
    "adamw-callable-mask-nesterov",
]
GROUPS = {
    "sgd-adagrad-f32": [n for n in CONFIGS if n.startswith(("sgd", "adagrad", "clip-l2"))],
    "rmsprop-f32": [n for n in CONFIGS if n.startswith("rmsprop")],
    "adam-adamw-f32": [n for n in CONFIGS if n.startswith(("adam", "clip-global"))],
    "all-f64": FLOAT64_TOO,
}


@pytest.fixture
def dtype(request):
    """float32, or float64 with x64 switched on through conftest's `x64` fixture."""
    if request.param == jnp.float64:
        request.getfixturevalue("x64")
    return request.param


def side_by_side(transforms):
    """One transformation running `transforms[k]` on the k-th entry of a tuple of param trees."""

    def init(params):
        return tuple(tx.init(p) for tx, p in zip(transforms, params))

    def update(updates, state, params=None):
        out = [tx.update(u, s, p) for tx, u, s, p in zip(transforms, updates, state, params)]
        return tuple(u for u, _ in out), tuple(s for _, s in out)

    return optim.GradientTransformation(init, update)


def assert_parity(pairs, params, grads_fn, rtol, steps=STEPS):
    """pairs: {name: (tx, reference_tx)}. One compiled parity run for all pairs; on failure, name the culprit."""
    ours, theirs = zip(*pairs.values())
    copies = tuple(params for _ in pairs)
    report = optim.parity(side_by_side(ours), side_by_side(theirs), copies,
                          lambda ps, t: tuple(grads_fn(p, t) for p in ps), steps)
    assert report.params.shape == report.updates.shape == report.state.shape == (steps,)
    if not report.max <= rtol:
        for name, (a, b) in pairs.items():
            try:
                optim.parity(a, b, params, grads_fn, steps).assert_close(rtol)
            except AssertionError as err:
                raise AssertionError(f"{name}: {err}") from None
    report.assert_close(rtol)
    return report


@pytest.mark.parametrize(
    "group, dtype", [pytest.param(g, jnp.float64 if g.endswith("f64") else jnp.float32, id=g) for g in GROUPS],
    indirect=["dtype"],
)
def test_aliases_match_optax_every_step(group, dtype):
    params, grads_fn, _ = problem(dtype)
    pairs = {name: (CONFIGS[name](optim), CONFIGS[name](optax)) for name in GROUPS[group]}
    for name, (a, b) in pairs.items():  # optax's state layout and dtypes, leaf by leaf
        s_ours, s_theirs = jax.eval_shape(a.init, params), jax.eval_shape(b.init, params)
        assert str(jax.tree.structure(s_ours)) == str(jax.tree.structure(s_theirs)), name
        assert jax.tree.leaves(s_ours) == jax.tree.leaves(s_theirs), name  # ShapeDtypeStructs: shapes and dtypes
    assert_parity(pairs, params, grads_fn, RTOL[dtype])


def test_parity_reports_a_real_difference():
    params = {"w": jnp.array([1.0, -2.0, 3.0]), "b": (jnp.array(0.5),)}
    grads_fn = lambda p, t: jax.tree.map(lambda v: v + jnp.sin(t + v), p)  # noqa: E731
    report = optim.parity(optim.sgd(0.01, momentum=0.9), optax.sgd(0.01, momentum=0.8), params, grads_fn, 20)
    assert 1e-6 < report.max < np.inf and report.state[0] == 0.0 < report.state[1]  # momenta differ from step 2 on
    with pytest.raises(AssertionError, match="params differ by .* at step 1"):
        report.assert_close(1e-6)
    with pytest.raises(ValueError, match="different layouts"):
        optim.parity(optim.sgd(0.1), optax.sgd(0.1, momentum=0.9), params, grads_fn, 5)


# ------------------------------------------------------------------------------------------------ vmap sweeps
def _trajectory(module, alias, fixed, swept, params, grads_fn, loss_fn, steps=STEPS):
    """A training program whose hyper-parameters `swept` are (traced) arguments: per-step losses and final params."""

    def run(*values):
        tx = getattr(module, alias)(**fixed, **dict(zip(swept, values)))

        def step(carry, t):
            p, s = carry
            u, s = tx.update(grads_fn(p, t), s, p)
            p = module.apply_updates(p, u)
            return (p, s), loss_fn(p)

        (p, _), losses = jax.lax.scan(step, (params, tx.init(params)), jnp.arange(steps))
        return losses, p

    return run


SWEEPS = [  # (alias, fixed kwargs, swept names, swept values, dtype, lanes exact on the elementwise part)
    pytest.param("sgd", {}, ("learning_rate", "momentum"), [(1e-3, 3e-3, 1e-2, 3e-2), (0.0, 0.5, 0.9, 0.9)],
                 jnp.float32, True, id="sgd-lr-momentum-f32"),
    pytest.param("adam", {}, ("learning_rate", "b1"), [(1e-3, 3e-3, 1e-2, 3e-2), (0.9, 0.0, 0.5, 0.95)],
                 jnp.float32, False, id="adam-lr-b1-f32"),
]
# Drift between a vmapped lane and the unvmapped program that comes from XLA, not from the optimizer: the batched
# program sums the MLP's matmuls in another order and, with a traced b1, simplifies Adam's bias-corrected quotient
# differently (XLA may turn a division by a scalar into a multiplication by its reciprocal): 1 ulp per step, which
# 200 steps of training amplify. optax's vmapped lanes show exactly the same drift.
BATCHING_RTOL = 1e-4


@pytest.mark.parametrize("alias, fixed, swept, values, dtype, exact", SWEEPS, indirect=["dtype"])
def test_vmap_sweep_lanes_equal_single_runs_and_optax(alias, fixed, swept, values, dtype, exact):
    """One compiled training program, vmapped over traced hyper-parameters (learning rate and b1 / momentum).

    The vmapped jaxnets lanes equal the vmapped optax lanes (RTOL). Each lane equals the unvmapped jaxnets run,
    itself compiled once for all values: to RTOL on the elementwise `misc` part when the swept values enter only
    products (learning rate, momentum), and to BATCHING_RTOL overall.
    """
    params, grads_fn, loss_fn = problem(dtype)
    values = [jnp.asarray(v, dtype) for v in values]
    lanes = jax.jit(jax.vmap(_trajectory(optim, alias, fixed, swept, params, grads_fn, loss_fn)))(*values)
    optax_lanes = jax.jit(jax.vmap(_trajectory(optax, alias, fixed, swept, params, grads_fn, loss_fn)))(*values)
    assert float(optim.relative_difference(lanes, optax_lanes)) <= RTOL[dtype]
    single = jax.jit(_trajectory(optim, alias, fixed, swept, params, grads_fn, loss_fn))
    for i in range(len(values[0])):
        one, lane = single(*(v[i] for v in values)), jax.tree.map(lambda x: x[i], lanes)
        if exact:
            assert float(optim.relative_difference(lane[1]["misc"], one[1]["misc"])) <= RTOL[dtype]
        assert float(optim.relative_difference(lane, one)) <= BATCHING_RTOL
    assert single._cache_size() == 1  # one compiled program serves every hyper-parameter value
    assert bool(jnp.all(jnp.isfinite(lanes[0])))


# ------------------------------------------------------------------------------------------------ interop
def test_interop_with_optax_chain_both_ways():
    """jaxnets transformations inside optax.chain, and optax transformations inside jaxnets.optim.chain."""
    params, grads_fn, _ = problem(jnp.float32)
    pure_a = optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(b2=0.99), optax.add_decayed_weights(1e-2),
                         optax.scale_by_learning_rate(1e-2))
    mixed_a = optax.chain(optax.clip_by_global_norm(1.0), optim.scale_by_adam(b2=0.99), optim.add_decayed_weights(1e-2),
                          optax.scale_by_learning_rate(1e-2))
    pure_b = optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_rms(decay=0.95),
                         optax.add_decayed_weights(1e-3), optax.scale_by_learning_rate(1e-3), optax.trace(0.9))
    mixed_b = optim.chain(optim.clip_by_global_norm(1.0), optax.scale_by_rms(decay=0.95),
                          optax.add_decayed_weights(1e-3), optim.scale_by_learning_rate(1e-3), optax.trace(0.9))
    pairs = {"jaxnets-in-optax.chain": (mixed_a, pure_a), "optax-in-jaxnets.chain": (mixed_b, pure_b)}
    assert_parity(pairs, params, grads_fn, RTOL[jnp.float32], steps=STEPS)
