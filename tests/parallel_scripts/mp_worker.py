"""One process of a multi-process data-parallel run on CPU (started by tests/test_parallel.py).

    python mp_worker.py PROCESS_ID NUM_PROCESSES PORT OUT_DIR [CASE]

Each process forces 2 local CPU devices, joins the run through `jaxnets.parallel.initialize` (loopback
coordinator on PORT, gloo CPU collectives), loads only its `local_slice` of the data, rebuilds the global
data set with `assemble`, and trains with `fit(mesh=make_mesh())` over all processes' devices. Process 0
writes OUT_DIR/result.npz (params and layer state); every process passes a checkpoint directory of its own,
OUT_DIR/ckpt-<id>, so the test can see which processes wrote checkpoints.
"""
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from jaxnets import parallel  # noqa: E402  (imports JAX but touches no device)


def main():
    pid, nproc, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    case = sys.argv[5] if len(sys.argv) > 5 else "batchnorm-manual"
    parallel.initialize(f"127.0.0.1:{port}", nproc, pid, initialization_timeout=60)

    import jax
    import numpy as np

    import problem

    mesh = parallel.make_mesh()
    print(parallel.device_summary(mesh), flush=True)
    if jax.device_count() != 2 * nproc or jax.local_device_count() != 2:
        raise SystemExit(f"expected {2 * nproc} devices, 2 local; got {jax.device_count()}, "
                         f"{jax.local_device_count()}")
    local = parallel.local_slice(problem.case_data(case))
    data = parallel.assemble(local, mesh)
    params, state, last_loss = problem.train(case, mesh, data, checkpoint_dir=os.path.join(out, f"ckpt-{pid}"))
    if parallel.is_main_process():
        leaves = jax.tree_util.tree_leaves((params, state))
        np.savez(os.path.join(out, "result.npz"), loss=np.float32(last_loss),
                 **{f"leaf{i}": a for i, a in enumerate(leaves)})
    parallel.barrier("mp_worker done")
    parallel.shutdown()
    print(f"process {pid} done, loss {last_loss:.6f}", flush=True)


if __name__ == "__main__":
    main()
