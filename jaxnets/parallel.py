"""Data parallelism on JAX's own sharding: a 1-D device mesh with a "data" axis, one or many processes.

    mesh = jaxnets.parallel.make_mesh()                        # every device of every process
    result = jaxnets.fit(model, loss, opt, (x, y), epochs=5, batch_size=128, key=key, mesh=mesh)

How it works (GSPMD, no hand-written collective): `fit(mesh=...)` places the data, params, layer state and
optimizer state `replicated(mesh)`; inside the compiled epoch every mini-batch is constrained to
`batch_sharding(mesh)` (its leading axis split over "data"), so each device runs the forward and backward
pass on B/d examples, and XLA's partitioner inserts the all-reduce that sums the per-device gradient
partials before the (replicated) optimizer update. Any reduction over the batch axis inside `jit` is a
global one — the loss mean, and BatchNorm's μ and σ², which are therefore statistics of the whole global
batch with the plain `BatchNorm()` (its `axis_name` option is for `shard_map`/`pmap` code, not for `fit`).
Because the program is the same computation, only partitioned, d devices reproduce the 1-device result up
to float32 reordering of sums.

Several processes (hosts): call `initialize(...)` first thing in every process (before any JAX work), then
build the mesh and call `fit` exactly as above in every process, with the same data, key and arguments. Each
process may load the whole data set, or only `local_slice(data)` and rebuild the whole of it with
`assemble(local, mesh)`. Checkpoints are written by the main process only. See docs/parallel.md.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
CPU_COLLECTIVES = ("gloo", "mpi")


# ------------------------------------------------------------------------------------------------ meshes
def make_mesh(devices=None, axis: str = DATA_AXIS) -> Mesh:
    """A 1-D mesh named `axis` over `devices` (default: `jax.devices()`, every device of every process,
    ordered by process), e.g. `make_mesh(jax.devices()[:4])` for the first four. `devices` is a list of JAX
    devices, not a count: a number, or anything that is not a device, is a TypeError saying so."""
    if not isinstance(axis, str) or not axis:
        raise TypeError(f"make_mesh(axis): the mesh axis name, a non-empty str such as {DATA_AXIS!r}, got {axis!r}")
    devices = jax.devices() if devices is None else _device_list(devices)
    if not devices:
        raise ValueError("make_mesh: no devices given; pass a non-empty list such as jax.devices()")
    return Mesh(np.asarray(devices), (axis,))


def _device_list(devices) -> list:
    """`devices` as a list of distinct JAX devices, or a TypeError/ValueError naming what was given and the fix."""
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        raise TypeError(f"make_mesh(devices): a list of JAX devices, not a count; for the first {devices} devices "
                        f"pass make_mesh(jax.devices()[:{devices}]) (there are {jax.device_count()} here), or "
                        "make_mesh() for all of them")
    try:
        devices = list(devices)
    except TypeError:
        raise TypeError(f"make_mesh(devices): a list of JAX devices such as jax.devices(), got "
                        f"{type(devices).__name__} {devices!r}") from None
    for i, device in enumerate(devices):
        if not isinstance(device, jax.Device):
            raise TypeError(f"make_mesh(devices): entry {i} is {type(device).__name__} {device!r}, not a JAX device; "
                            "pass devices from jax.devices() (e.g. jax.devices()[:4]), not their ids or a mesh shape")
    if len(set(devices)) != len(devices):
        raise ValueError(f"make_mesh(devices): {devices} lists a device more than once; each device may appear once")
    return devices


def data_axis(mesh: Mesh) -> str:
    """The axis the batch is split over: "data" when the mesh has one, else its first axis."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh (e.g. jaxnets.parallel.make_mesh()), got "
                        f"{type(mesh).__name__}")
    return DATA_AXIS if DATA_AXIS in mesh.axis_names else mesh.axis_names[0]


def data_size(mesh: Mesh) -> int:
    """The number of batch shards: the size of the mesh's data axis (its device count for a 1-D mesh)."""
    return int(mesh.shape[data_axis(mesh)])


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Arrays whose leading (batch) axis is split across the mesh's data axis (replicated over any other)."""
    return NamedSharding(mesh, P(data_axis(mesh)))


def replicated(mesh: Mesh) -> NamedSharding:
    """Arrays held whole on every device (params, optimizer state, layer state)."""
    return NamedSharding(mesh, P())


def replicate(tree, mesh: Mesh):
    """`tree` (arrays, identical in every process) placed whole on every device of `mesh`."""
    return jax.device_put(tree, replicated(mesh))


def shard_batch(tree, mesh: Mesh):
    """`tree`'s leading axes split over the data axis (every process passes the same, whole arrays)."""
    for a in jax.tree_util.tree_leaves(tree):
        check_divisible(mesh, np.shape(a)[0], "leading (batch) axis")
    return jax.device_put(tree, batch_sharding(mesh))


# ------------------------------------------------------------------------------------------------ checks
def check_divisible(mesh: Mesh, size: int, what: str = "batch size") -> None:
    """Raise ValueError unless `size` splits evenly over the mesh's data axis."""
    n = data_size(mesh)
    if size % n:
        lower, upper = (size // n) * n, (size // n + 1) * n
        raise ValueError(
            f"{what} {size} does not divide over {n} devices; use a multiple of {n} "
            f"(e.g. {lower or upper} or {upper}), or a mesh with a device count that divides {size}"
        )


def _good_batch_sizes(n: int, d: int, near: int, count: int = 3) -> list[int]:
    """Multiples of d closest to `near` whose epoch remainder n mod b also divides over d."""
    found = [b for b in range(d, n + 1, d) if (n % b) % d == 0]
    return sorted(sorted(found, key=lambda b: (abs(b - near), b))[:count])


def batch_problem(n: int, batch_size: int, drop_last: bool, devices: int) -> str | None:
    """Why an epoch of `n` examples in batches of `batch_size` cannot split over `devices` data shards
    (a message naming the sizes and the fixes), or None when every mini-batch splits evenly."""
    d, rem = devices, (0 if drop_last else n % batch_size)
    if batch_size % d == 0 and rem % d == 0:
        return None
    good = f"batch_size in {_good_batch_sizes(n, d, batch_size)}" if n % d == 0 else None
    trim = f"trim the data to {n - n % d} examples (a multiple of {d})"
    if batch_size % d:
        near = [m for m in ((batch_size // d) * d, (batch_size // d + 1) * d) if m > 0]
        fix = good or f"a multiple of {d} as batch_size (e.g. {' or '.join(map(str, near))}) and {trim} or " \
                      "pass drop_last=True"
        return (f"batch_size {batch_size} does not divide over the {d} devices of the mesh (every device takes "
                f"an equal share of each batch); use {fix}, or a mesh with a device count that divides "
                f"{batch_size}")
    return (f"the last mini-batch of each epoch holds {n} mod {batch_size} = {rem} examples, which does not "
            f"divide over the {d} devices of the mesh; pass drop_last=True (skips {rem} examples per epoch, a "
            f"different {rem} each epoch as the shuffle changes), or {f'use {good}' if good else trim}")


def check_batches(mesh: Mesh, n: int, batch_size: int, drop_last: bool = False) -> None:
    """Every mini-batch of an epoch over `n` examples must split evenly over the mesh's data axis: the
    `batch_size` ones and, unless `drop_last`, the last one of n mod batch_size examples. Raises ValueError
    naming the sizes and the fixes (batch sizes that work, drop_last=True, trimming the data)."""
    problem = batch_problem(n, batch_size, drop_last, data_size(mesh))
    if problem is not None:
        raise ValueError(problem)


# ------------------------------------------------------------------------------------------ processes
def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, local_device_ids=None, *, cpu_collectives: str | None = "gloo",
               **kwargs) -> None:
    """Join this process to a multi-process JAX run: `jax.distributed.initialize` with the same arguments.

    Call it first, before any other JAX call, in every process. coordinator_address: "host:port" of process
    0 (reachable from every process; any free port); num_processes: the number of processes; process_id: 0
    .. num_processes − 1, distinct; local_device_ids: the local accelerators this process uses (None: all).
    Under SLURM, Open MPI or on Cloud TPU all four may be None (JAX detects them). cpu_collectives: the
    cross-process collective library for CPU devices ("gloo" or "mpi"; sets
    `jax_cpu_collectives_implementation`; None leaves the setting alone); without one, CPU computations
    spanning processes cannot run. Further keyword arguments (initialization_timeout, ...) go to
    `jax.distributed.initialize`.
    """
    if cpu_collectives is not None:
        if cpu_collectives not in CPU_COLLECTIVES:
            raise ValueError(f"initialize(cpu_collectives): choose one of {CPU_COLLECTIVES} or None, got "
                             f"{cpu_collectives!r}")
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    if num_processes is not None and (isinstance(num_processes, bool) or not isinstance(num_processes, int)
                                      or num_processes < 1):
        raise ValueError(f"initialize(num_processes): a positive int, got {num_processes!r}")
    if process_id is not None and num_processes is not None and not (
            isinstance(process_id, int) and 0 <= process_id < num_processes):
        raise ValueError(f"initialize(process_id): an int in [0, {num_processes}), got {process_id!r}")
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id, local_device_ids, **kwargs)
    except RuntimeError as err:
        if "initialize" in str(err) and ("before" in str(err) or "once" in str(err)):
            raise RuntimeError(f"jaxnets.parallel.initialize must run once per process, before anything touches "
                               f"JAX devices (jax.devices(), an array, a computation): {err}") from err
        raise


def shutdown() -> None:
    """Leave the multi-process run (`jax.distributed.shutdown`); a no-op in a single-process run."""
    jax.distributed.shutdown()


def process_index() -> int:
    """This process's index, 0 .. process_count() − 1 (0 in a single-process run)."""
    return jax.process_index()


def process_count() -> int:
    """The number of processes in the run (1 without `initialize`)."""
    return jax.process_count()


def is_main_process() -> bool:
    """True in process 0: the one that writes checkpoints, logs and result files."""
    return jax.process_index() == 0


def barrier(name: str = "jaxnets") -> None:
    """Wait until every process reaches the barrier with the same `name` (no-op in one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


# ------------------------------------------------------------------------------------------------ data
def process_shard(n: int, process_id: int | None = None, num_processes: int | None = None) -> slice:
    """The rows [start, stop) of an n-row data set that process `process_id` (default: this one) loads:
    contiguous, equal blocks in process order, matching the device order of `make_mesh()`. n must divide by
    the number of processes."""
    p = jax.process_count() if num_processes is None else num_processes
    i = jax.process_index() if process_id is None else process_id
    if n % p:
        raise ValueError(f"process_shard: {n} examples do not split evenly over {p} processes; trim the data to "
                         f"{n - n % p} examples (or pad it) so every process loads {n // p}")
    if not 0 <= i < p:
        raise ValueError(f"process_shard: process_id {i} is outside [0, {p})")
    size = n // p
    return slice(i * size, (i + 1) * size)


def local_slice(tree, process_id: int | None = None, num_processes: int | None = None):
    """This process's `process_shard` of every leaf of `tree` (arrays with a common leading length)."""
    leaves = jax.tree_util.tree_leaves(tree)
    lengths = {np.shape(a)[0] for a in leaves}
    if len(lengths) != 1:
        raise ValueError(f"local_slice: the arrays have different leading lengths {sorted(lengths)}")
    rows = process_shard(lengths.pop(), process_id, num_processes)
    return jax.tree_util.tree_map(lambda a: a[rows], tree)


def assemble(local_tree, mesh: Mesh, replicate: bool = True):
    """Global arrays from each process's block of rows (its `local_slice`), in process order.

    replicate=True (what `fit` takes): every device gets the whole array (one all-gather). replicate=False:
    the arrays stay split over the data axis (`batch_sharding`), for hand-written loops around
    `make_step(..., mesh=mesh)`. Every process calls it with blocks of equal shape.
    """
    split = batch_sharding(mesh)
    global_tree = jax.tree_util.tree_map(lambda a: jax.make_array_from_process_local_data(split, np.asarray(a)),
                                         local_tree)
    if not replicate:
        return global_tree
    return jax.jit(lambda t: t, out_shardings=replicated(mesh))(global_tree)


def to_host(tree):
    """numpy copies of `tree`'s arrays, also of global arrays spanning several processes (a replicated
    array is read from a local copy; a sharded one is gathered from every process — call it in all)."""
    def fetch(a):
        if not isinstance(a, jax.Array):
            return np.asarray(a)
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        if a.is_fully_addressable:
            return np.asarray(a)
        if a.is_fully_replicated:
            return np.asarray(a.addressable_data(0))
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(a, tiled=True))

    return jax.tree_util.tree_map(fetch, tree)


def device_summary(mesh: Mesh | None = None) -> str:
    """One line: processes, devices (global/local) and the mesh shape, for logs."""
    text = (f"process {jax.process_index()}/{jax.process_count()}, {jax.device_count()} devices "
            f"({jax.local_device_count()} local, {jax.default_backend()})")
    if mesh is not None:
        text += f", mesh {dict(mesh.shape)}"
    return text


__all__ = ["DATA_AXIS", "make_mesh", "data_axis", "data_size", "batch_sharding", "replicated", "replicate",
           "shard_batch", "check_divisible", "batch_problem", "check_batches", "initialize", "shutdown",
           "process_index", "process_count", "is_main_process", "barrier", "process_shard", "local_slice",
           "assemble", "to_host", "device_summary"]
