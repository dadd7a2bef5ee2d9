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
from jaxnets.training import CheckpointDirError, CheckpointWriteError, EarlyStopping, fit
from test_training_common import blobs, leaves_equal, tiny_model, tiny_params, tiny_state

MODEL = tiny_model()
LOSS = losses.softmax_cross_entropy
TX = optax.sgd(0.3, momentum=0.9)
TRAIN, VAL = blobs(40), blobs(20, seed=1)
KEY = jax.random.key(3)


def run(**kw):
    args = dict(batch_size=8, key=KEY, params=tiny_params(), state=tiny_state(), val_data=VAL, progress=False)
    args.update(kw)
    return fit(MODEL, LOSS, args.pop("optimizer", TX), args.pop("train_data", TRAIN), **args)


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


def test_resume_refuses_a_different_key_optimizer_or_learning_rate(tmp_path):
    run(epochs=1, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointDirError, match=r"different run \(different key"):
        run(epochs=2, checkpoint_dir=tmp_path, resume=True, key=jax.random.key(99))
    with pytest.raises(CheckpointDirError, match=r"optimizer \(its state\)"):
        run(epochs=2, checkpoint_dir=tmp_path, resume=True, optimizer=optax.adam(0.1))
    # the same optimizer with another learning rate: the state layout is the same, the probe updates are not
    with pytest.raises(CheckpointDirError, match=r"different optimizer hyper-parameters \(learning rate"):
        run(epochs=2, checkpoint_dir=tmp_path, resume=True, optimizer=optax.sgd(0.03, momentum=0.9))
    with pytest.raises(CheckpointDirError, match="different training data"):
        run(epochs=2, checkpoint_dir=tmp_path, resume=True, train_data=(TRAIN[0] + 1, TRAIN[1]))
    with pytest.raises(CheckpointDirError, match="batch settings"):
        run(epochs=2, checkpoint_dir=tmp_path, resume=True, batch_size=4)
    assert [e for e, _ in checkpoint.list_checkpoints(tmp_path)] == [1]  # nothing was touched


def test_a_reused_directory_is_refused_unless_resumed_or_overwritten(tmp_path):
    # run A trains 5 epochs into D; run B (another learning rate, no resume) must not mix with it
    a = run(epochs=5, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointDirError, match=r"already holds checkpoints of a run \(epochs \[4, 5\]\); pass "
                                                 r"resume=True.*overwrite=True"):
        run(epochs=3, checkpoint_dir=tmp_path, optimizer=optax.sgd(0.1))
    assert [e for e, _ in checkpoint.list_checkpoints(tmp_path)] == [4, 5]
    b = run(epochs=3, checkpoint_dir=tmp_path, optimizer=optax.sgd(0.1), overwrite=True)
    assert [e for e, _ in checkpoint.list_checkpoints(tmp_path)] == [2, 3]   # B's own newest two
    again = run(epochs=3, checkpoint_dir=tmp_path, optimizer=optax.sgd(0.1), resume=True)
    assert again.resumed_from == 3 and leaves_equal(again.params, b.params)
    assert not leaves_equal(again.params, a.params)
    with pytest.raises(ValueError, match="contradict"):
        run(epochs=3, checkpoint_dir=tmp_path, resume=True, overwrite=True)
    with pytest.raises(ValueError, match="overwrite=True needs checkpoint_dir"):
        run(epochs=1, overwrite=True)


def test_two_fits_on_one_directory_do_not_interleave(tmp_path):
    from jaxnets.training.resume import CheckpointDir

    holder = CheckpointDir(tmp_path, resume=False, overwrite=False)   # another run holds the directory
    try:
        with pytest.raises(CheckpointDirError, match="in use by another training run"):
            run(epochs=1, checkpoint_dir=tmp_path)
    finally:
        holder.close()
    run(epochs=1, checkpoint_dir=tmp_path)   # free again


def test_unusable_directories_are_refused_before_training(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(CheckpointDirError, match="exists and is not a directory"):
        run(epochs=1, checkpoint_dir=a_file)
    with pytest.raises(CheckpointDirError, match="cannot be created"):
        run(epochs=1, checkpoint_dir=a_file / "sub")
    if os.path.isdir("/proc/self"):  # read-only for everyone, root included
        with pytest.raises(CheckpointDirError, match="not writable"):
            run(epochs=1, checkpoint_dir="/proc/self")


def test_a_failed_write_during_training_names_the_path_and_keeps_the_result(tmp_path, monkeypatch):
    import errno

    from jaxnets.training import resume

    real_save, calls = checkpoint.save, []

    def full_disk(path, tree, metadata=None):
        calls.append(path)
        if len(calls) == 3:  # epoch 3's write finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(path, tree, metadata)

    monkeypatch.setattr(resume.checkpoint, "save", full_disk)
    with pytest.raises(CheckpointWriteError) as info:
        run(epochs=5, checkpoint_dir=tmp_path)
    err = info.value
    assert err.path.endswith("ckpt-3.npz") and err.path in str(err) and "ENOSPC" in str(err)
    assert err.result.epochs_run == 3 and int(err.result.train_state.step) == 3 * 5
    monkeypatch.setattr(resume.checkpoint, "save", real_save)
    straight = run(epochs=3)
    assert leaves_equal(err.result.params, straight.params)   # the trained state of epoch 3 came back


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


# ------------------------------------------------------------------------------------ how many are kept
@pytest.mark.parametrize("keep", [0, -1, 2.5, True, "2", None])
def test_keep_must_be_a_positive_int(tmp_path, keep):
    from jaxnets.training.resume import CheckpointDir

    with pytest.raises(ValueError, match=r"keep.*must be a positive int.*got"):
        CheckpointDir(tmp_path / "run", resume=False, overwrite=False, keep=keep)
    assert not (tmp_path / "run").exists()          # refused before the directory is touched


@pytest.mark.parametrize("keep", [1, 2, 3])
def test_keep_newest_checkpoints_are_kept(tmp_path, keep):
    from jaxnets.training.resume import KEEP, CheckpointDir

    assert KEEP == 2
    directory = CheckpointDir(tmp_path, resume=False, overwrite=False, keep=keep)
    try:
        for epoch in range(1, 6):
            directory.save(epoch, {"w": np.full(2, epoch, np.float32)}, {"epoch": epoch}, None)
    finally:
        directory.close()
    assert [e for e, _ in checkpoint.list_checkpoints(tmp_path)] == list(range(6 - keep, 6))
    assert float(checkpoint.load(checkpoint.latest(tmp_path))["w"][0]) == 5.0


def test_the_default_keeps_two(tmp_path):
    result = run(epochs=4, checkpoint_dir=tmp_path)
    assert [e for e, _ in checkpoint.list_checkpoints(tmp_path)] == [3, 4] and result.epochs_run == 4


def test_the_run_identity_records_the_recipe_and_old_checkpoints_still_resume(tmp_path):
    from jaxnets import models
    from jaxnets.training.resume import differences, model_recipe

    digest = {"x": [[40, 4], "float32"], "y": [[40], "int32"], "rows": "0"}
    assert model_recipe(MODEL, digest) is None                       # hand-built: no recipe
    record = model_recipe(models.mlp([4, 3]), digest)
    assert record["recipe"]["factory"] == "mlp" and record["input_shape"] == [4]
    assert model_recipe(models.mlp([4, 3]), {"stream": digest})["input_shape"] == [4]
    current = {"model": ["a"], "recipe": record}
    assert differences({"model": ["a"]}, current) == []               # written before recipes were recorded
    other = model_recipe(models.mlp([4, 3], activation="relu"), digest)
    assert differences({"model": ["a"], "recipe": other}, current) == ["model (its jaxnets.models recipe)"]
