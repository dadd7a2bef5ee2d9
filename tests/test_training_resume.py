"""Checkpoints written by fit and resumption, including a run killed with SIGKILL and resumed in a new process."""
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import optax
import pytest

from jaxnets import checkpoint, losses
from jaxnets.training import EarlyStopping, fit
from test_training_common import blobs, leaves_equal, tiny_model, tiny_params, tiny_state

MODEL = tiny_model()
LOSS = losses.softmax_cross_entropy
TX = optax.sgd(0.3, momentum=0.9)
TRAIN, VAL = blobs(40), blobs(20, seed=1)
KEY = jax.random.key(3)


def run(**kw):
    args = dict(batch_size=8, key=KEY, params=tiny_params(), state=tiny_state(), val_data=VAL, progress=False)
    args.update(kw)
    return fit(MODEL, LOSS, args.pop("optimizer", TX), TRAIN, **args)


def test_resume_continues_history_and_matches_uninterrupted_run(tmp_path):
    first = run(epochs=2, checkpoint_dir=tmp_path)
    assert [e for e, _ in checkpoint.list_checkpoints(tmp_path)] == [1, 2]
    resumed = run(epochs=4, checkpoint_dir=tmp_path, resume=True)
    assert resumed.history.rows[:2] == first.history.rows
    assert resumed.history["epoch"] == [1, 2, 3, 4] and resumed.epochs_run == 4
    assert [e for e, _ in checkpoint.list_checkpoints(tmp_path)] == [3, 4]  # the newest two are kept
    straight = run(epochs=4)
    assert leaves_equal(resumed.train_state, straight.train_state)
    assert [r["val_loss"] for r in resumed.history] == straight.history["val_loss"]
    again = run(epochs=4, checkpoint_dir=tmp_path, resume=True)  # nothing left to do
    assert leaves_equal(again.params, straight.params) and len(again.history) == 4


def test_checkpoint_every_and_early_stopping_state_survive_resume(tmp_path):
    val = (VAL[0], (VAL[1] + 1) % 3)  # validation loss rises: early stopping triggers at epoch best + 2
    straight = run(epochs=30, val_data=val, early_stopping=EarlyStopping(patience=2))
    stop = len(straight.history)
    part = run(epochs=stop - 1, val_data=val, early_stopping=EarlyStopping(patience=2), checkpoint_dir=tmp_path,
               checkpoint_every=2)
    saved = [e for e, _ in checkpoint.list_checkpoints(tmp_path)]
    assert saved[-1] == stop - 1 and all(e % 2 == 0 for e in saved[:-1])
    assert not part.stopped_early
    resumed = run(epochs=30, val_data=val, early_stopping=EarlyStopping(patience=2), checkpoint_dir=tmp_path,
                  resume=True)
    assert resumed.stopped_early and len(resumed.history) == stop and resumed.best_epoch == straight.best_epoch
    assert leaves_equal(resumed.params, straight.params)  # the restored best params came back from the file


def test_resume_refuses_a_different_key_or_optimizer(tmp_path):
    run(epochs=1, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="different key"):
        run(epochs=2, checkpoint_dir=tmp_path, resume=True, key=jax.random.key(99))
    with pytest.raises(checkpoint.CheckpointError, match="different model or optimizer"):
        run(epochs=2, checkpoint_dir=tmp_path, resume=True, optimizer=optax.adam(0.1))


SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import jax, numpy as np, optax
    sys.path.insert(0, {tests!r})
    from jaxnets import losses
    from jaxnets.training import fit
    from test_training_common import blobs, tiny_model, tiny_params, tiny_state

    mode, ckpt_dir, out = sys.argv[1:4]
    model, tx, data = tiny_model(), optax.adam(0.05), blobs(30)

    def train(**kw):
        return fit(model, losses.softmax_cross_entropy, tx, data, epochs=6, batch_size=7, key=jax.random.key(5),
                   params=tiny_params(), state=tiny_state(), progress=False, **kw)

    def die(epoch, row, ts):
        if epoch == 4:  # checkpoints of epochs 1-3 exist; the process dies without any clean-up
            os.kill(os.getpid(), signal.SIGKILL)

    if mode == "first":
        r = train()  # the uninterrupted reference run, then the run that gets killed
        np.savez(out, *[np.asarray(a) for a in jax.tree_util.tree_leaves(r.train_state)])
        train(checkpoint_dir=ckpt_dir, callbacks=[die])
    else:
        r = train(checkpoint_dir=ckpt_dir, resume=True)
        np.savez(out, *[np.asarray(a) for a in jax.tree_util.tree_leaves(r.train_state)])
""")


def test_sigkilled_run_resumes_bit_for_bit(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__))))
    ckpt_dir, ref, resumed = tmp_path / "ckpt", tmp_path / "ref.npz", tmp_path / "resumed.npz"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    killed = subprocess.run([sys.executable, str(script), "first", str(ckpt_dir), str(ref)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert checkpoint.latest(ckpt_dir).endswith("ckpt-3.npz")
    done = subprocess.run([sys.executable, str(script), "resume", str(ckpt_dir), str(resumed)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with np.load(ref) as a, np.load(resumed) as b:
        assert a.files == b.files and len(a.files) > 4
        for name in a.files:
            assert np.array_equal(a[name], b[name]), name
    assert checkpoint.latest(ckpt_dir).endswith("ckpt-6.npz")
