"""Data parallelism (jaxnets.parallel + fit(mesh=...)): equality with one device, collectives, multi-process.

The device-count tests run scripts from tests/parallel_scripts/ in subprocesses, because the number of CPU
devices is fixed when JAX starts: `devices_equal.py` under XLA_FLAGS=--xla_force_host_platform_device_count=8
(trains each case on 1 and on 8 devices and prints the differences as JSON), and two `mp_worker.py`
processes (2 local devices each, one 4-device mesh over both, jax.distributed on a loopback coordinator).
Every subprocess has a timeout and is killed if it outlives it or the test fails.
"""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jaxnets import parallel

SCRIPTS = Path(__file__).parent / "parallel_scripts"
sys.path.insert(0, str(SCRIPTS))
import problem  # noqa: E402

TOL = 1e-5  # float32: the sharded program sums the same terms in another order (differences seen ~1e-7)


def _env(devices: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return env


def _run_all(commands, env, timeout):
    """Start every command, wait for all (one shared deadline); kill every survivor on timeout or error.
    Returns [(returncode, output)]."""
    procs = []
    try:
        for cmd in commands:
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        deadline, results = time.monotonic() + timeout, []
        for p in procs:
            try:
                out, _ = p.communicate(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{' '.join(map(str, p.args))} did not finish within {timeout} s")
            results.append((p.returncode, out))
            if p.returncode != 0:  # the others would wait for the failed peer until their own timeouts
                break
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()


@pytest.fixture(scope="module")
def eight_process():
    """devices_equal.py started on 8 forced host devices (in the background, so that the two-process test,
    which asks for this fixture first, overlaps with it); killed at the end of the module if still running."""
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "devices_equal.py")], env=_env(8),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def eight(eight_process):
    """The JSON report of devices_equal.py."""
    try:
        out, _ = eight_process.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        eight_process.kill()
        pytest.fail("devices_equal.py did not finish within 400 s")
    assert eight_process.returncode == 0, out[-4000:]
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    report = json.loads(line[len("RESULT "):])
    print("\n1 vs 8 devices:", json.dumps(report, indent=1))
    return report


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process(tmp_path, eight_process):  # starts the 8-device run too
    case = "batchnorm-manual"
    port = _free_port()
    cmds = [[sys.executable, str(SCRIPTS / "mp_worker.py"), str(i), "2", str(port), str(tmp_path), case]
            for i in range(2)]
    results = _run_all(cmds, _env(2), timeout=240)
    for rc, out in results:
        assert rc == 0, out[-4000:]
    assert all("4 devices (2 local" in out for _, out in results)
    saved = np.load(tmp_path / "result.npz")
    params, state, loss = problem.train(case)                  # this process: one device, no mesh
    ref = jax.tree_util.tree_leaves((params, state))
    got = [saved[f"leaf{i}"] for i in range(len(ref))]
    max_abs, max_rel = problem.difference(got, ref)
    print(f"\n2 processes x 2 devices vs 1 process x 1 device: max abs {max_abs:.3g}, max rel {max_rel:.3g}")
    assert max_abs < TOL and max_rel < TOL
    assert abs(float(saved["loss"]) - loss) < TOL
    assert sorted(os.listdir(tmp_path / "ckpt-0")) == ["ckpt-1.npz", "ckpt-2.npz"]
    assert not (tmp_path / "ckpt-1").exists() or not os.listdir(tmp_path / "ckpt-1")  # process 1 writes none


@pytest.mark.parametrize("case", list(problem.CASES))
def test_eight_devices_train_like_one(eight, case):
    assert eight["devices"] == 8
    r = eight["cases"][case]
    assert r["param_devices"] == 8, r                        # fit really trained on the 8-device mesh
    assert r["params_max_abs"] < TOL and r["params_max_rel"] < TOL, r
    assert abs(r["loss_8"] - r["loss_1"]) < TOL, r
    if case.startswith("batchnorm"):  # running statistics of the global batch, not of each device's 4 rows
        assert r["state_max_abs"] < TOL and r["state_max_rel"] < TOL, r


def test_compiled_epoch_splits_batch_and_all_reduces(eight):
    hlo = eight["hlo"]
    assert hlo["ops"]["all-reduce"] >= 1, hlo                # the gradient sum XLA inserted (GSPMD)
    assert hlo["local_batch_dot"], hlo                       # each device's Dense sees 32 / 8 = 4 rows


def test_ensemble_vmap_composes_with_data_sharding(eight):
    assert eight["ensemble_max_abs"] < TOL and eight["ensemble_max_rel"] < TOL


def test_hand_written_loop_with_make_step_and_shard_batch(eight):
    assert eight["step_max_abs"] < TOL and eight["step_max_rel"] < TOL


def test_batch_size_not_dividing_device_count_is_a_clear_error(eight):
    msg = eight["errors"]["batch"]
    assert msg is not None, "fit(batch_size=12) on 8 devices did not raise"
    assert "batch_size 12" in msg and "8 devices" in msg and "[8, 16, 24]" in msg


def test_remainder_batch_must_divide_or_be_dropped(eight):
    msg = eight["errors"]["remainder"]
    assert msg is not None, "fit on 196 examples, batch 32, 8 devices did not raise"
    assert "196 mod 32 = 4" in msg and "drop_last=True" in msg and "192 examples" in msg
    assert np.isfinite(eight["drop_last_loss"])


# ---------------------------------------------------------------------------------- in-process, no compile
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), b=st.integers(1, 128), d=st.sampled_from([1, 2, 3, 4, 8]), drop=st.booleans())
def test_batch_problem_exactly_when_a_batch_does_not_split(n, b, d, drop):
    rem = 0 if drop else n % b
    msg = parallel.batch_problem(n, b, drop, d)
    assert (msg is None) == (b % d == 0 and rem % d == 0)
    if msg is not None and n % d == 0 and "batch_size in [" in msg:    # the suggested sizes really work
        sizes = json.loads(msg.split("batch_size in ")[1].split("]")[0] + "]")
        assert sizes and all(parallel.batch_problem(n, s, drop, d) is None for s in sizes)


def test_process_shard_partitions_rows():
    blocks = [parallel.process_shard(12, i, 3) for i in range(3)]
    assert [(s.start, s.stop) for s in blocks] == [(0, 4), (4, 8), (8, 12)]
    x, y = np.arange(24).reshape(12, 2), np.arange(12)
    lx, ly = parallel.local_slice((x, y), 1, 3)
    np.testing.assert_array_equal(ly, [4, 5, 6, 7])
    np.testing.assert_array_equal(lx, x[4:8])
    assert parallel.process_shard(7) == slice(0, 7)              # one process: everything
    with pytest.raises(ValueError, match="trim the data to 10"):
        parallel.process_shard(11, 0, 2)
    with pytest.raises(ValueError, match="different leading lengths"):
        parallel.local_slice((x, y[:6]), 0, 2)


def test_mesh_helpers_and_bad_arguments():
    mesh = parallel.make_mesh()
    assert parallel.data_axis(mesh) == "data" and parallel.data_size(mesh) == jax.device_count()
    assert parallel.batch_sharding(mesh).spec == jax.sharding.PartitionSpec("data")
    assert parallel.is_main_process() and parallel.process_count() == 1
    np.testing.assert_array_equal(parallel.to_host(parallel.replicate({"a": np.arange(3.0)}, mesh))["a"],
                                  [0.0, 1.0, 2.0])
    x = np.arange(8.0).reshape(4, 2)
    assert parallel.shard_batch(x, mesh).sharding == parallel.batch_sharding(mesh)
    whole = parallel.assemble((x, np.arange(4)), mesh)            # one process: its block is everything
    assert whole[0].sharding.is_fully_replicated
    np.testing.assert_array_equal(parallel.to_host(whole)[0], x)
    with pytest.raises(ValueError, match="no devices"):
        parallel.make_mesh([])
    with pytest.raises(TypeError, match="jax.sharding.Mesh"):
        parallel.data_axis("data")
    with pytest.raises(ValueError, match="cpu_collectives"):
        parallel.initialize("127.0.0.1:1", 2, 0, cpu_collectives="nccl")
    with pytest.raises(ValueError, match="process_id"):
        parallel.initialize("127.0.0.1:1", 2, 5)
