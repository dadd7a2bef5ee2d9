"""grid_search / random_search: one compiled program over traced hyper-parameters, per-lane early stopping.

The problem: full-batch gradient descent on a noise-free linear regression y = X·w* + b* with the quadratic
cost. Its Hessian H = AᵀA/N (A = [X, 1]) is known, so GD's error contracts by ρ(η) = maxᵢ |1 − η λᵢ(H)| per
step and diverges for η > 2/λ_max: the best learning rate of a grid is derivable (numpy below), and the
loss curve of every η can be simulated exactly in float64 as an oracle independent of jaxnets.
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets import losses, optim
from jaxnets.core import Ctx, serial
from jaxnets.sweeps import grid_search, loguniform, random_search
from jaxnets.layers import Dense, Dropout
from jaxnets.training import EarlyStopping

N, EPOCHS, PATIENCE = 64, 15, 2
LRS = [0.1, 0.2, 0.4, 0.6, 0.8, 0.95, 1.2, 1e10]
F32_MAX = float(np.finfo(np.float32).max)
KEY = jax.random.key(0)
MODEL = serial(Dense(1))


def _problem():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(N, 2))
    a -= a.mean(axis=0)
    q, _ = np.linalg.qr(a)  # orthonormal, zero-mean columns: Hessian eigenvalues 0.5, 2 (and 1 for the bias)
    x = (q * np.sqrt(N) * np.sqrt([0.5, 2.0])).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0]]) + 0.7).astype(np.float32)
    return x, y


X, Y = _problem()


def _sgd(hp):
    return optim.sgd(hp["lr"], momentum=hp.get("momentum"))


def _simulate(lr, momentum=None, epochs=EPOCHS, patience=PATIENCE):
    """Exact (float64) full-batch GD — heavy ball m = g + μm, θ -= η m when momentum is given — from the
    model's initial params; returns (best loss, best epoch, epochs run) under the early-stopping rule (stop
    after `patience` epochs without improvement) and float32 overflow (a validation loss beyond float32 is inf
    and never improves; a step whose cost overflows is not applied and ends the run)."""
    _, p, _ = jn.init(MODEL, KEY, (2,))
    theta = np.concatenate([np.asarray(p[0]["w"], np.float64)[:, 0], np.asarray(p[0]["b"], np.float64)])
    a = np.c_[X.astype(np.float64), np.ones(N)]
    target = Y[:, 0].astype(np.float64)
    m = np.zeros_like(theta)
    best, best_epoch, wait = np.inf, 0, 0
    for epoch in range(1, epochs + 1):
        r = a @ theta - target
        if 0.5 * np.mean(r ** 2) > F32_MAX:
            return best, best_epoch, epoch - 1
        g = a.T @ r / N
        m = g if momentum is None else g + momentum * m
        theta = theta - lr * m
        loss = 0.5 * np.mean((a @ theta - target) ** 2)
        if loss < best and loss < F32_MAX:
            best, best_epoch, wait = loss, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return best, best_epoch, epoch
    return best, best_epoch, epochs


@pytest.fixture(scope="module")
def grid():
    """16 configurations: momentum None / 0.5 is structural (two programs), lr numeric; chunk_size=3 runs each
    group's 8 lanes as chunks of 3, 3 and 2 (padded to 3)."""
    return grid_search(MODEL, losses.quadratic, _sgd, (X, Y), grid={"momentum": [None, 0.5], "lr": LRS},
                       epochs=EPOCHS, batch_size=N, key=KEY, val_data=(X, Y), chunk_size=3,
                       early_stopping=EarlyStopping(patience=PATIENCE), progress=False)


def test_grid_finds_the_derivable_best_learning_rate(grid):
    a = np.c_[X.astype(np.float64), np.ones(N)]
    lam = np.linalg.eigvalsh(a.T @ a / N)
    rho = [max(abs(1 - lr * lam)) for lr in LRS]  # GD's contraction factor per step; > 1 diverges
    # heavy ball with momentum μ contracts no faster than √μ per step (the product of its two roots is μ)
    assert np.sqrt(0.5) > min(rho)
    assert grid.best_config == {"momentum": None, "lr": LRS[int(np.argmin(rho))]} == {"momentum": None, "lr": 0.8}
    assert grid.programs == 2 and len(grid) == 2 * len(LRS)


def test_every_lane_matches_the_exact_simulation(grid):
    for row in grid.rows:
        best, best_epoch, run = _simulate(row["lr"], row["momentum"])
        where = (row["momentum"], row["lr"])
        assert row["epochs_run"] == run, where
        assert row["best_epoch"] == best_epoch, where
        np.testing.assert_allclose(row["val_loss"], best, rtol=2e-3, atol=1e-7, err_msg=str(where))


def test_lanes_stop_on_their_own(grid):
    rows = {r["lr"]: r for r in grid.rows if r["momentum"] is None}
    assert rows[1.2]["stopped_early"] and rows[1.2]["epochs_run"] == 1 + PATIENCE  # oscillates and grows
    assert rows[1e10]["diverged"] and not rows[1e10]["stopped_early"] and rows[1e10]["best_epoch"] == 1
    assert not rows[0.8]["stopped_early"] and rows[0.8]["epochs_run"] == EPOCHS
    assert [len(h) for h in grid.histories] == [r["epochs_run"] for r in grid.rows]


def test_a_lane_equals_fit_alone(grid):
    """The early-stopped lane (η = 1.2) against `fit` of the same configuration: same epochs, same best params."""
    i = grid.configs.index({"momentum": None, "lr": 1.2})
    alone = jn.fit(MODEL, losses.quadratic, optim.sgd(1.2), (X, Y), epochs=EPOCHS, batch_size=N, key=KEY,
                   val_data=(X, Y), early_stopping=EarlyStopping(patience=PATIENCE), progress=False)
    assert alone.best_epoch == grid.rows[i]["best_epoch"] and alone.epochs_run == grid.rows[i]["epochs_run"]
    chex.assert_trees_all_close(grid.params(i)[0], alone.params, rtol=0, atol=1e-6)
    for a, b in zip(alone.history, grid.histories[i]):
        np.testing.assert_allclose([a["train_loss"], a["val_loss"]], [b["train_loss"], b["val_loss"]], rtol=1e-6)


def test_random_search_picks_the_best_sampled_rate(grid):
    res = random_search(MODEL, losses.quadratic, _sgd, (X, Y), space={"momentum": [None], "lr": loguniform(0.05, 1.5)},
                        n_trials=7, seed=3, epochs=EPOCHS, batch_size=N, key=KEY, val_data=(X, Y), chunk_size=3,
                        early_stopping=EarlyStopping(patience=PATIENCE), progress=False)
    sampled = [c["lr"] for c in res.configs]
    assert len(set(sampled)) == 7 and all(0.05 <= lr < 1.5 for lr in sampled)
    oracle = np.array([_simulate(lr)[0] for lr in sampled])
    first, second = np.sort(oracle)[:2]
    assert second > 2 * first, "seed gives two near-equal candidates; pick another seed"
    assert res.best_index == int(np.argmin(oracle))
    assert res.best_params is not None and res.best_params[0]["w"].shape == (2, 1)


def test_table_and_csv(grid, tmp_path):
    text = str(grid)
    assert "momentum" in text and "val_loss" in text and len(text.splitlines()) == 2 + 1 + len(grid)
    best_line = [line for line in text.splitlines() if line.startswith("*")]
    assert len(best_line) == 1 and " 0.8 " in best_line[0] and "None" in best_line[0]
    path = grid.to_csv(tmp_path / "sweep.csv")
    lines = open(path).read().splitlines()
    assert lines[0].split(",")[:3] == ["momentum", "lr", "best_epoch"] and len(lines) == 1 + len(grid)


def test_dropout_takes_a_traced_rate_and_matches_the_python_rate():
    x = jnp.asarray(np.random.default_rng(0).random((4, 6), dtype=np.float32))
    key, dy = jax.random.key(5), jnp.ones((4, 6))

    @jax.jit
    def both(rate):  # one compiled program: Dropout(0.3) and Dropout(traced rate)
        want, _, mask = Dropout(0.3).forward((), (), x, Ctx(True, key))
        got, _, cache = Dropout(rate).forward((), (), x, Ctx(True, key))
        per_rate = jax.vmap(lambda r: Dropout(r).forward((), (), x, Ctx(True, key))[0])(jnp.array([0.0, 0.5]))
        return (want, got, Dropout(0.3).backward((), mask, dy)[1], Dropout(rate).backward((), cache, dy)[1],
                per_rate)

    want, got, dwant, dgot, per_rate = both(jnp.float32(0.3))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(dgot), np.asarray(dwant), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(per_rate[0]), np.asarray(x))  # rate 0 keeps everything
    assert not np.array_equal(np.asarray(per_rate[1]), np.asarray(x))
    assert Dropout(jnp.float32(0.5)).forward((), (), x, Ctx(False, None))[0] is x  # evaluation: identity
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="scalar rate"):
        Dropout(jnp.array([0.1, 0.2]))


def test_numeric_axis_that_must_be_static_gets_a_clear_error():
    with pytest.raises(ValueError, match="static="):
        grid_search(lambda hp: serial(Dense(hp["width"])), losses.quadratic, optim.sgd(0.1), (X, Y),
                    grid={"width": [1, 2]}, epochs=1, batch_size=N, key=KEY, val_data=(X, Y), progress=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="grid"):
        grid_search(MODEL, losses.quadratic, _sgd, (X, Y), grid={}, epochs=1, batch_size=N, key=KEY)
    with pytest.raises(ValueError, match="val_data"):
        grid_search(MODEL, losses.quadratic, _sgd, (X, Y), grid={"lr": [0.1]}, epochs=1, batch_size=N, key=KEY,
                    early_stopping=EarlyStopping(patience=2))
    with pytest.raises(ValueError, match="loguniform"):
        loguniform(0.0, 1.0)
    with pytest.raises(ValueError, match="static"):
        grid_search(MODEL, losses.quadratic, _sgd, (X, Y), grid={"lr": [0.1]}, static=("nope",), epochs=1,
                    batch_size=N, key=KEY)
