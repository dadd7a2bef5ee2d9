"""Unit tests for jaxnets.optim: protocol, apply_updates, schedules, masks, clipping, dtypes, bad input.

Reference values come from optax 0.2.8 (installed) or from closed forms computed here with NumPy.
"""
import collections
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxnets import optim

PARAMS = {"w": jnp.array([[1.0, -2.0], [3.0, 0.5]]), "b": (jnp.array([0.1, -0.2]), {"s": jnp.array(2.0)})}
GRADS = {"w": jnp.array([[500.0, 5.0], [-3.0, 0.25]]), "b": (jnp.array([300.0, -3.0]), {"s": jnp.array(-1.5)})}
ALIASES = {
    "sgd": lambda o: o.sgd(0.1, momentum=0.9),
    "adagrad": lambda o: o.adagrad(0.1),
    "rmsprop": lambda o: o.rmsprop(0.01, centered=True, momentum=0.9),
    "adam": lambda o: o.adam(0.01),
    "adamw": lambda o: o.adamw(0.01, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
}


def assert_states_close(ours, theirs, rtol=1e-6):
    """Same layout (NamedTuple names and fields) and leaf values; the NamedTuple classes themselves differ."""
    assert str(jax.tree.structure(ours)) == str(jax.tree.structure(theirs))
    chex.assert_trees_all_close(jax.tree.leaves(ours), jax.tree.leaves(theirs), rtol=rtol)


# ------------------------------------------------------------------------------------------------ protocol
def test_apply_updates_casts_back_to_param_dtype_and_keeps_none():
    params = {"a": jnp.array([1.0, 2.0], jnp.bfloat16), "b": jnp.array([1.0]), "c": None}
    updates = {"a": jnp.array([0.001, 0.5], jnp.float32), "b": jnp.array([0.25]), "c": None}
    ours, theirs = optim.apply_updates(params, updates), optax.apply_updates(params, updates)
    assert ours["a"].dtype == jnp.bfloat16 and ours["c"] is None
    chex.assert_trees_all_equal(ours, theirs)


@pytest.mark.parametrize("name", list(ALIASES))
def test_alias_state_is_inspectable_like_optax_and_accepts_extra_args(name):
    ours, theirs = ALIASES[name](optim), ALIASES[name](optax)
    s_ours, s_theirs = ours.init(PARAMS), theirs.init(PARAMS)
    assert str(jax.tree.structure(s_ours)) == str(jax.tree.structure(s_theirs))
    field = {"sgd": "trace", "adagrad": "sum_of_squares", "rmsprop": "mu", "adam": "mu", "adamw": "nu"}[name]
    chex.assert_trees_all_equal(optax.tree.get(s_ours, field), optax.tree.get(s_theirs, field))
    u_ours, s_ours = jax.jit(lambda *a: ours.update(*a, unused_extra_argument=1.0))(GRADS, s_ours, PARAMS)  # ignored
    u_theirs, s_theirs = jax.jit(lambda *a: theirs.update(*a, unused_extra_argument=1.0))(GRADS, s_theirs, PARAMS)
    chex.assert_trees_all_close(u_ours, u_theirs, rtol=1e-6)
    assert_states_close(s_ours, s_theirs)


def test_chain_passes_extra_args_only_to_transforms_that_take_them():
    seen = {}

    def init(params):
        return optim.EmptyState()

    def update(updates, state, params=None, *, value):  # needs a keyword-only extra argument, like polyak_sgd
        seen["value"] = value
        return updates, state

    tx = optim.chain(optax.scale(2.0), optim.GradientTransformation(init, update), optim.clip(1.0))
    updates, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS, value=3.0)
    assert seen["value"] == 3.0  # optax.scale's update takes no **kwargs and was called without them
    chex.assert_trees_all_equal(updates, jax.tree.map(lambda g: jnp.clip(2.0 * g, -1.0, 1.0), GRADS))


def test_optax_inject_hyperparams_wraps_jaxnets_aliases():
    """inject_hyperparams rebuilds the optimizer every step with array hyper-parameters; jaxnets accepts them."""
    make = {m: optax.inject_hyperparams(m.adamw)(learning_rate=m.exponential_decay(1e-2, 2, 0.5), b1=0.8)
            for m in (optim, optax)}
    step = {m: jax.jit(make[m].update) for m in make}
    s_ours, s_theirs = make[optim].init(PARAMS), make[optax].init(PARAMS)
    for _ in range(3):
        u_ours, s_ours = step[optim](GRADS, s_ours, PARAMS)
        u_theirs, s_theirs = step[optax](GRADS, s_theirs, PARAMS)
        chex.assert_trees_all_close(u_ours, u_theirs, rtol=1e-6)
        assert_states_close(s_ours, s_theirs)
    np.testing.assert_allclose(s_ours.hyperparams["learning_rate"], 0.5e-2, rtol=1e-6)  # the 3rd update used lr(2)


def test_masked_transforms_only_masked_in_leaves():
    mask = {"w": True, "b": False}  # a prefix of the params tree
    tx = optim.masked(optim.trace(0.5), mask)
    state = tx.init(PARAMS)
    assert isinstance(state.inner_state.trace["b"], optim.MaskedNode)
    updates, state = tx.update(GRADS, state, PARAMS)
    updates, state = tx.update(GRADS, state, PARAMS)
    chex.assert_trees_all_equal(updates["b"], GRADS["b"])  # passed through untouched
    np.testing.assert_array_equal(updates["w"], 1.5 * np.asarray(GRADS["w"]))  # g + 0.5 g


def test_mask_must_be_static_bools():
    with pytest.raises(TypeError, match="static Python bools"):
        optim.adamw(1e-3, mask={"w": "yes", "b": False}).init(PARAMS)


def test_global_norm_clipping_matches_closed_form():
    norm = np.sqrt(sum(np.sum(np.asarray(g, np.float64) ** 2) for g in jax.tree.leaves(GRADS)))
    global_norm = jax.jit(optim.global_norm)
    np.testing.assert_allclose(global_norm(GRADS), norm, rtol=1e-6)
    clip = jax.jit(lambda max_norm, g: optim.clip_by_global_norm(max_norm).update(g, optim.EmptyState())[0])
    np.testing.assert_allclose(global_norm(clip(10.0, GRADS)), 10.0, rtol=1e-6)
    untouched = clip(2 * norm, GRADS)
    chex.assert_trees_all_equal(untouched, GRADS)


def test_dtypes_follow_optax_with_mixed_float32_float64_leaves(x64):
    params = {"a": jnp.ones(3, jnp.float32), "b": jnp.ones(2, jnp.float64), "c": jnp.ones(2, jnp.bfloat16)}
    for name, make in ALIASES.items():
        ours, theirs = make(optim), make(optax)
        out_ours = jax.eval_shape(lambda p: ours.update(p, ours.init(p), p), params)
        out_theirs = jax.eval_shape(lambda p: theirs.update(p, theirs.init(p), p), params)
        assert jax.tree.leaves(out_ours) == jax.tree.leaves(out_theirs), name  # shapes and dtypes, leaf by leaf


# ------------------------------------------------------------------------------------------------ schedules
SCHEDULES = {
    "constant": lambda o: o.constant_schedule(0.3),
    "exponential": lambda o: o.exponential_decay(0.1, 7, 0.8, transition_begin=5),
    "exponential-staircase-end": lambda o: o.exponential_decay(0.1, 7, 0.8, staircase=True, end_value=0.02),
    "exponential-growth-end": lambda o: o.exponential_decay(0.1, 10, 1.5, end_value=1.0),
    "cosine": lambda o: o.cosine_decay_schedule(0.2, 50, alpha=0.1, exponent=2.0),
    "warmup-cosine": lambda o: o.warmup_cosine_decay_schedule(0.0, 1.0, 10, 60, end_value=0.05),
    "piecewise": lambda o: o.piecewise_constant_schedule(1.0, {10: 0.5, 30: 0.1, 20: 2.0}),
    "linear": lambda o: o.linear_schedule(1.0, 0.1, 40, transition_begin=3),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_optax(name):
    ours, theirs = SCHEDULES[name](optim), SCHEDULES[name](optax)
    counts = jnp.arange(100, dtype=jnp.int32)
    vector = {f: jax.jit(lambda c, f=f: jnp.broadcast_to(f(c), c.shape))(counts) for f in (ours, theirs)}
    chex.assert_trees_all_close(vector[ours], vector[theirs], rtol=1e-6)
    for count in (0, 10, 29, 30, 99):  # Python ints too
        np.testing.assert_allclose(ours(count), theirs(count), rtol=1e-6)


def test_schedules_closed_forms():
    cos = optim.cosine_decay_schedule(2.0, 10, alpha=0.5)
    np.testing.assert_allclose([cos(0), cos(5), cos(10), cos(20)], [2.0, 1.5, 1.0, 1.0], rtol=1e-6)
    warm = optim.warmup_cosine_decay_schedule(0.0, 1.0, 4, 14)
    np.testing.assert_allclose([warm(0), warm(2), warm(4), warm(9), warm(14)], [0.0, 0.5, 1.0, 0.5, 0.0], atol=1e-6)
    pw = optim.piecewise_constant_schedule(1.0, {3: 0.5, 6: 0.1})
    np.testing.assert_allclose([pw(t) for t in (0, 2, 3, 5, 6, 9)], [1, 1, 0.5, 0.5, 0.05, 0.05], rtol=1e-6)


def test_schedule_hyperparameters_can_be_traced():
    peaks = jnp.array([0.5, 1.0, 2.0])
    at_7 = lambda peak: optim.warmup_cosine_decay_schedule(0.0, peak, 4, 14, end_value=0.1)(7)  # noqa: E731
    values = jax.jit(jax.vmap(at_7))(peaks)
    expected = [optax.warmup_cosine_decay_schedule(0.0, float(p), 4, 14, end_value=0.1)(7) for p in peaks]
    np.testing.assert_allclose(values, expected, rtol=1e-6)


def test_first_update_uses_schedule_at_zero():
    tx = optim.sgd(lambda count: 1.0 + count)
    state = tx.init(PARAMS)
    for lr in (1.0, 2.0, 3.0):
        updates, state = tx.update(GRADS, state)
        chex.assert_trees_all_close(updates, jax.tree.map(lambda g: -lr * g, GRADS), rtol=1e-6)


# ------------------------------------------------------------------------------------------------ property test
@settings(max_examples=15, deadline=None)
@given(
    lr=st.floats(1e-4, 1.0), b1=st.floats(0.0, 0.99), b2=st.floats(0.5, 0.9999), eps=st.floats(1e-10, 1e-2),
    decay=st.floats(0.0, 0.999), nesterov=st.booleans(), centered=st.booleans(), eps_in_sqrt=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_python_float_hyperparameters_match_optax(lr, b1, b2, eps, decay, nesterov, centered, eps_in_sqrt, seed):
    """Three eager steps with hypothesis-drawn hyper-parameters (Python floats, where optax's rounding matters)."""
    make = [
        lambda o: o.adam(lr, b1=b1, b2=b2, eps=eps, nesterov=nesterov),
        lambda o: o.rmsprop(lr, decay=decay, eps=eps, centered=centered, eps_in_sqrt=eps_in_sqrt, bias_correction=True,
                            momentum=b1, nesterov=nesterov),
        lambda o: o.sgd(lr, momentum=decay, nesterov=nesterov),
    ]
    rng = np.random.default_rng(seed)
    grads = [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape) * 10.0, p.dtype), PARAMS) for _ in range(3)]
    for m in make:
        ours, theirs = m(optim), m(optax)
        s_ours, s_theirs = ours.init(PARAMS), theirs.init(PARAMS)
        for g in grads:
            u_ours, s_ours = ours.update(g, s_ours, PARAMS)
            u_theirs, s_theirs = theirs.update(g, s_theirs, PARAMS)
        chex.assert_trees_all_close(u_ours, u_theirs, rtol=1e-6)
        assert_states_close(s_ours, s_theirs)


# ------------------------------------------------------------------------------------------------ bad input
BAD = [
    (lambda: optim.sgd(0.0), "learning_rate must be a finite number > 0"),
    (lambda: optim.adam(-1e-3), "learning_rate must be a finite number > 0"),
    (lambda: optim.adagrad(float("nan")), "learning_rate must be a finite number > 0"),
    (lambda: optim.sgd(float("inf")), "learning_rate must be a finite number > 0"),
    (lambda: optim.adam(float("inf")), "learning_rate must be a finite number > 0"),
    (lambda: optim.rmsprop(float("-inf")), "learning_rate must be a finite number > 0"),
    (lambda: optim.sgd(0.1, momentum=1.0), r"momentum must lie in \[0, 1\)"),
    (lambda: optim.sgd(0.1, nesterov=True), "nesterov=True needs a momentum"),
    (lambda: optim.adam(1e-3, b1=1.0), r"b1 must lie in \[0, 1\)"),
    (lambda: optim.adamw(1e-3, b2=-0.1), r"b2 must lie in \[0, 1\)"),
    (lambda: optim.rmsprop(1e-3, decay=1.5), r"decay must lie in \[0, 1\)"),
    (lambda: optim.rmsprop(1e-3, momentum=-0.5), r"momentum must lie in \[0, 1\)"),
    (lambda: optim.adam(1e-3, eps=-1e-8), "eps must be a finite number >= 0"),
    (lambda: optim.adam(1e-3, eps_root=-1.0), "eps_root must be a finite number >= 0"),
    (lambda: optim.adagrad(0.1, initial_accumulator_value=-0.1),
     "initial_accumulator_value must be a finite number >= 0"),
    (lambda: optim.rmsprop(1e-3, initial_scale=-1.0), "initial_scale must be a finite number >= 0"),
    (lambda: optim.adamw(1e-3, weight_decay=-1e-4), "weight_decay must be a finite number >= 0"),
    (lambda: optim.adamw(1e-3, weight_decay=float("inf")), "weight_decay must be a finite number >= 0"),
    (lambda: optim.adam(1e-3, eps=float("inf")), "eps must be a finite number >= 0"),
    (lambda: optim.clip_by_global_norm(0.0), "max_norm must be a finite number > 0"),
    (lambda: optim.cosine_decay_schedule(0.1, 0), "decay_steps must be an int >= 1"),
    (lambda: optim.piecewise_constant_schedule(0.1, {10: -0.5}), "scale at boundary 10 must be a finite number >= 0"),
    (lambda: optim.exponential_decay(0.1, 10, decay_rate=-1), "decay_rate must be a finite number >= 0"),
    (lambda: optim.exponential_decay(0.1, 10, decay_rate=float("nan")), "decay_rate must be a finite number >= 0"),
    (lambda: optim.cosine_decay_schedule(0.1, 10, alpha=-0.5), "alpha must be a finite number >= 0"),
    (lambda: optim.cosine_decay_schedule(0.1, 10, exponent=0.0), "exponent must be a finite number > 0"),
    (lambda: optim.warmup_cosine_decay_schedule(0.0, float("inf"), 2, 10), "peak_value must be a finite number"),
    (lambda: optim.linear_schedule(1.0, float("nan"), 10), "end_value must be a finite number"),
    (lambda: optim.constant_schedule(float("nan")), "value must be a finite number"),
    (lambda: optim.join_schedules([optim.constant_schedule(1.0)] * 3, [10]), "3 schedules need 2 boundaries"),
    (lambda: optim.scale(float("inf")), "step_size must be a finite number"),
    (lambda: optim.clip(-1.0), "max_delta must be a finite number >= 0"),
    # concrete JAX scalars are numbers too (only tracers, under jit/vmap, are taken as given)
    (lambda: optim.sgd(jnp.asarray(-1.0)), "learning_rate must be a finite number > 0"),
    (lambda: optim.sgd(0.1, momentum=jnp.asarray(2.0)), r"momentum must lie in \[0, 1\)"),
    (lambda: optim.adam(np.float32(1e-3), b2=np.asarray(1.0)), r"b2 must lie in \[0, 1\)"),
]


BAD_TYPES = [
    (lambda: optim.sgd("0.1"), r"learning_rate must be a number > 0.*got str '0.1'; pass the number itself, e\.g\. "
                               r"sgd\(0\.1\)"),
    (lambda: optim.adam([1e-3]), "learning_rate must be a number > 0, an array or a schedule"),
    (lambda: optim.adam(True), "learning_rate must be a number > 0"),
    (lambda: optim.adam(1e-3, b1="0.9"), r"b1 must be a number.*got str '0.9'"),
    (lambda: optim.adam(1e-3, eps=None), "eps must be a number"),
    (lambda: optim.sgd(0.1, momentum=0.9, nesterov="yes"), "nesterov must be True or False"),
    (lambda: optim.rmsprop(1e-3, centered=1), "centered must be True or False"),
    (lambda: optim.adamw(1e-3, weight_decay="1e-4"), "weight_decay must be a number"),
    (lambda: optim.adamw(1e-3, mask="w"), "mask must be a pytree of bools"),
    (lambda: optim.masked(optim.adam, lambda p: p), "inner is function, not a gradient transformation"),
    (lambda: optim.exponential_decay(0.1, 10.0, 0.5), "transition_steps must be an int"),
    (lambda: optim.exponential_decay(0.1, 10, 0.5, staircase="no"), "staircase must be True or False"),
    (lambda: optim.warmup_cosine_decay_schedule(0.0, 1.0, 2.5, 10), "warmup_steps must be an int"),
    (lambda: optim.piecewise_constant_schedule(0.1, [(10, 0.5)]), "boundaries_and_scales must be a dict"),
    (lambda: optim.piecewise_constant_schedule(0.1, {10.5: 0.5}), "a boundary must be an int"),
    (lambda: optim.constant_schedule("0.1"), "value must be a number"),
    (lambda: optim.scale_by_schedule(0.1), "step_size_fn must be a schedule"),
]


@pytest.mark.parametrize("make, message", BAD_TYPES)
def test_hyperparameters_of_the_wrong_type_raise_type_error_at_construction(make, message):
    with pytest.raises(TypeError, match=message):
        make()


@pytest.mark.parametrize("make, why", [
    (lambda o: o.exponential_decay(0.1, 0, 0.5), "transition_steps=0 is not positive"),
    (lambda o: o.exponential_decay(0.1, 10, 0.0), "decay_rate=0"),
    (lambda o: o.linear_schedule(1.0, 0.1, -5), "transition_steps=-5 is not positive"),
    (lambda o: o.linear_schedule(1.0, 0.1, 10, transition_begin=-3), "transition_begin=-3 is negative"),
])
def test_schedules_that_optax_turns_constant_warn_and_still_match_optax(make, why):
    with pytest.warns(UserWarning, match=why):
        ours = make(optim)
    theirs = make(optax)
    for count in (0, 3, 20):
        np.testing.assert_allclose(ours(count), theirs(count), rtol=1e-6)


@pytest.mark.parametrize("make, message", BAD)
def test_bad_python_number_hyperparameters_raise_at_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_traced_hyperparameters_are_not_range_checked():
    # a tracer (a value swept under vmap/jit) has no value at construction: taken as given
    jax.jit(lambda lr, m: optim.sgd(lr, momentum=m).update(GRADS, optim.sgd(lr, momentum=m).init(PARAMS))[0])(
        jnp.asarray(-1.0), jnp.asarray(2.0))
    optim.sgd(jnp.asarray(0.1), momentum=jnp.asarray(0.9))   # a valid concrete array is fine
    lrs = jnp.array([1e-3, 1e-2])
    out = jax.jit(jax.vmap(lambda lr, b1: optim.adam(lr, b1=b1).update(GRADS, optim.adam(lr).init(PARAMS))[0]["w"]))(
        lrs, lrs)
    assert out.shape == (2, 2, 2)


def test_mismatched_state_raises_naming_the_field_and_leaf():
    tx = optim.adam(1e-3)
    state = tx.init({"w": PARAMS["w"]})
    with pytest.raises(ValueError, match=r"field 'mu' does not match the updates.*only in updates: \[\"\['b'\]"):
        tx.update(GRADS, state)
    with pytest.raises(ValueError, match=r"field 'trace'.*leaf \['w'\]: updates \(2, 2\) vs state \(3,\)"):
        wrong_shape = (optim.TraceState({"w": jnp.zeros(3)}), optim.EmptyState())
        optim.sgd(0.1, momentum=0.9).update({"w": PARAMS["w"]}, wrong_shape)
    with pytest.raises(TypeError, match="expected an optimizer state with a field 'nu'"):
        optim.rmsprop(1e-3).update(GRADS, optim.adagrad(0.1).init(PARAMS) + (optim.EmptyState(),))
    with pytest.raises(ValueError, match="chain of 2 transformations got a state with 3 entries"):
        optim.adam(1e-3).update(GRADS, optim.adamw(1e-3).init(PARAMS), PARAMS)
    with pytest.raises(ValueError, match="needs the current parameters"):
        optim.adamw(1e-3).update(GRADS, optim.adamw(1e-3).init(PARAMS))


def test_tree_check_happens_at_trace_time():
    tx = optim.rmsprop(1e-3)
    bad_state = tx.init({"w": PARAMS["w"]})
    with pytest.raises(ValueError, match="field 'nu'"):
        jax.jit(tx.update).lower(GRADS, bad_state)  # raised while tracing, before anything runs


@pytest.mark.parametrize("name", list(ALIASES))
def test_compiled_step_has_exactly_optax_operations(name):
    """No run-time cost for the checks or the jaxnets plumbing: XLA's optimised program has the same op histogram."""

    def histogram(tx):
        def step(params, state, grads):
            updates, state = tx.update(grads, state, params)
            return optim.apply_updates(params, updates), state

        hlo = jax.jit(step).lower(PARAMS, tx.init(PARAMS), GRADS).compile().as_text()
        return collections.Counter(re.findall(r"= \S+ ([a-z][\w-]*)\(", hlo))

    ours, theirs = histogram(ALIASES[name](optim)), histogram(ALIASES[name](optax))
    assert sum(ours.values()) > 10
    assert ours == theirs
