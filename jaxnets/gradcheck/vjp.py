"""`check_vjp` and `check_grad`: any JAX function's derivative rules against its values.

    report = check_vjp(f, x, w)          # f a jax.custom_vjp (or custom_jvp) function: rule vs autodiff vs FD
    report = check_vjp(f, x, w, reference=plain_f)     # any f whose undecorated twin is plain_f
    report = check_grad(f, x, w)         # any function: jax.vjp vs finite differences
    report.assert_close()                # names the argument, the leaf and the index

check_vjp draws a random cotangent ct like f's output (normal, from `key`) and compares, for every floating leaf of
every argument: the rule's cotangent (`jax.vjp(f, *args)[1](ct)`, which runs the custom rule), autodiff of the
undecorated function (`f.fun` of a custom_vjp/custom_jvp object, or `reference`), and central finite differences
of ⟨ct, f(args)⟩ in float64 — per coordinate up to `COORDINATE_LIMIT` entries in all, else along `directions` random
directions per leaf, with the one-sided bracket at kinks (see `kinks`) and a per-coordinate re-check of a failing
large leaf (see `rows`). One row per argument leaf: leaf "x", "params['w']"; columns man~auto (rule~autodiff),
man~fd (rule~fd), auto~fd. check_grad is the same without the second witness (man~fd only: f's jax.vjp, whatever
rules are inside it, against the finite differences): a drop-in upgrade of `jax.test_util.check_grads(f, args,
order=1, modes=["rev"])` that names what failed, with tolerances that do not grow with the size of the array.

Structure first: the rule's bwd output is traced (`jax.eval_shape`) and must be a tuple with one cotangent per
argument, each shaped like it (None means zero); a mismatch, or an error raised by the rule or by `jax.vjp`, gives
a failing report with the problem as its first line.

Arguments: pytrees of arrays. Integer (and bool) leaves are not differentiated (a header note says so), nor are
the `nondiff_argnums` of a custom_vjp. Precision: the finite differences are float64 (x64 is enabled locally); if
f computes in a lower precision whatever its inputs (a hard-coded float32 cast), they are taken in that dtype
with a step of eps^(1/3) and the tolerance `FD_RTOL` of that dtype, and the header says so.
Options: `batched=True` (jax.vmap of the vjp over 3 cotangents equals the loop), `reentrant=True` (two eager vjp
calls are identical).
"""
from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.gradcheck import arguments, consistency, differences, structure
from jaxnets.gradcheck.estimates import finite_differences_of
from jaxnets.gradcheck.report import Report
from jaxnets.gradcheck.rows import build_rows

COORDINATE_LIMIT = 4096
_RULES = (jax.custom_vjp, jax.custom_jvp)


def _name(f, reference) -> str:
    for candidate in (f, getattr(f, "fun", None), reference):
        name = getattr(candidate, "__name__", None)
        if isinstance(name, str):
            return name
    return "f"


def _arg_names(fn, n: int) -> list:
    """The names of fn's first n positional parameters ("args[i]" where unknown)."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i].name if i < len(params) else f"args[{i}]" for i in range(n)]


def _is_float(leaf) -> bool:
    return jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)


class _Split:
    """The arguments split into the differentiated leaves and the rest, with labels and a way back."""

    def __init__(self, args, names, nondiff):
        self.args, self.treedefs, self.where, self.leaves, self.labels, self.skipped = args, [], [], [], [], []
        for i, (arg, name) in enumerate(zip(args, names)):
            flat, treedef = jax.tree_util.tree_flatten_with_path(arg)
            self.treedefs.append(treedef)
            for j, (path, leaf) in enumerate(flat):
                label = name + jax.tree_util.keystr(path)
                if i in nondiff:
                    self.skipped.append(f"{label} (nondiff_argnums)")
                elif not _is_float(leaf):
                    self.skipped.append(f"{label} ({jnp.asarray(leaf).dtype})")
                else:
                    self.where.append((i, j))
                    self.leaves.append(jnp.asarray(leaf))
                    self.labels.append(label)
        self.flat = [[leaf for _, leaf in jax.tree_util.tree_flatten_with_path(a)[0]] for a in args]

    def rebuild(self, leaves) -> list:
        """The arguments with the differentiated leaves replaced by `leaves`."""
        flat = [list(f) for f in self.flat]
        for (i, j), leaf in zip(self.where, leaves):
            flat[i][j] = leaf
        return [jax.tree_util.tree_unflatten(t, f) for t, f in zip(self.treedefs, flat)]


def _cotangent(key, out, batch: int | None = None):
    """A random cotangent like `out` (shapes): normal floating leaves, float0 zeros for integer ones."""
    leaves, treedef = jax.tree_util.tree_flatten(out)
    keys = jax.random.split(key, max(len(leaves), 1))
    lead = () if batch is None else (batch,)
    cts = [jax.random.normal(k, lead + tuple(leaf.shape), leaf.dtype) if jnp.issubdtype(leaf.dtype, jnp.inexact)
           else np.zeros(lead + tuple(leaf.shape), jax.dtypes.float0) for k, leaf in zip(keys, leaves)]
    return jax.tree_util.tree_unflatten(treedef, cts)


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


def _rule_problems(f, name, args, names, ct) -> list:
    """Structure problems of a custom_vjp rule's bwd output at (args, ct), traced."""
    nondiff = tuple(getattr(f, "nondiff_argnums", ()))
    diff = [i for i in range(len(args)) if i not in nondiff]

    def bwd_output(*a):
        _, residuals = f.fwd(*a)
        return f.bwd(*[a[i] for i in nondiff], residuals, ct)

    try:
        got = jax.eval_shape(bwd_output, *args)
    except Exception as err:   # noqa: BLE001 - the user's rule: reported, not raised
        return [f"the custom_vjp rule of {name} raised {_first_line(err)}"]
    return structure.cotangent_problems(name, [names[i] for i in diff], [args[i] for i in diff], got)


def _dtype(leaves) -> str:
    floats = [str(jnp.asarray(v).dtype) for v in leaves]
    return floats[0] if floats else "float32"


def _output_dtype(out) -> str:
    """The lowest floating precision among the output's leaves ("float64" when all are)."""
    floats = [jnp.dtype(o.dtype) for o in jax.tree_util.tree_leaves(out) if jnp.issubdtype(o.dtype, jnp.inexact)]
    return str(min(floats, key=lambda d: jnp.finfo(d).bits)) if floats else "float64"


def _inner(ct, y) -> jax.Array:
    return sum(jnp.sum(c * o) for c, o in zip(jax.tree_util.tree_leaves(ct), jax.tree_util.tree_leaves(y))
               if jnp.issubdtype(o.dtype, jnp.inexact))


def _check(check, f, args, *, key, reference, finite_diff, directions, step, batched, reentrant, name, where):
    """The shared body of check_vjp (check="vjp") and check_grad (check="grad")."""
    if not callable(f):
        raise TypeError(f"{where}(f): a function, got {type(f).__name__}")
    mode_choice = arguments.finite_diff(finite_diff, where)
    directions = arguments.directions(directions, where)
    step = None if step is None else arguments.step(step, where)
    key = arguments.key(key, where)
    key = jax.random.key(0) if key is None else key
    name = name if isinstance(name, str) else _name(f, reference)
    names = _arg_names(reference if reference is not None else getattr(f, "fun", f), len(args))
    nondiff = set(getattr(f, "nondiff_argnums", ()) or ())
    split = _Split(args, names, nondiff)
    notes = [f"not differentiated: {', '.join(split.skipped)}"] if split.skipped else []
    if not split.leaves:
        raise ValueError(f"{where}({name}): no floating argument to differentiate (got {', '.join(split.skipped)})")

    def g(leaves):
        return f(*split.rebuild(leaves))

    k_ct, k_dir, k_batch = jax.random.split(key, 3)
    try:
        out = jax.eval_shape(g, split.leaves)
    except Exception as err:   # noqa: BLE001
        raise ValueError(f"{where}({name}): calling {name} on the arguments failed: {_first_line(err)}") from err
    if not any(jnp.issubdtype(o.dtype, jnp.inexact) for o in jax.tree_util.tree_leaves(out)):
        raise ValueError(f"{where}({name}): {name} has no floating output to differentiate")
    ct = _cotangent(k_ct, out)
    dtype = _dtype(split.leaves)
    problems = _rule_problems(f, name, list(args), names, ct) if isinstance(f, jax.custom_vjp) else []
    if problems:
        return Report((), dtype, None, problems=tuple(problems), notes=tuple(notes))

    def rule(leaves, ct_):
        return jax.vjp(g, leaves)[1](ct_)[0]

    try:
        g_rule = jax.jit(rule)(split.leaves, ct)
    except Exception as err:   # noqa: BLE001 - JAX's own check of the rule, reported
        what = f"the custom rule of {name}" if check == "vjp" else f"jax.vjp of {name}"
        return Report((), dtype, None, problems=(f"{what} failed: {_first_line(err)}",), notes=tuple(notes))
    autodiff = None
    if check == "vjp":
        def autodiff(leaves, ct_):
            return jax.vjp(lambda ls: reference(*split.rebuild(ls)), leaves)[1](ct_)[0]

        g_auto = jax.jit(autodiff)(split.leaves, ct)
    labels = [(name, "", label) for label in split.labels]
    size = sum(int(np.size(v)) for v in split.leaves)
    mode = None if mode_choice is None else (
        mode_choice if mode_choice != "auto" else ("coordinates" if size <= COORDINATE_LIMIT else "directions"))
    fd_label, fd_dtype = None, "float64"
    host = [np.asarray(v, np.float64) for v in g_rule]
    host_auto = None if autodiff is None else [np.asarray(v, np.float64) for v in g_auto]
    if mode is None:
        rows = build_rows(check, labels, host, host_auto, dtype)
    else:
        with jax.enable_x64(True):
            leaves64 = differences.as_float64(split.leaves)
            fd_dtype = _output_dtype(jax.eval_shape(g, leaves64))
            ct64 = jax.tree_util.tree_map(
                lambda c: c.astype(fd_dtype) if jnp.issubdtype(c.dtype, jnp.inexact) else c, ct)
            fd_step = step if step is not None else (1e-5 if fd_dtype == "float64"
                                                     else float(jnp.finfo(fd_dtype).eps) ** (1 / 3))
            m64 = jax.jit(rule)(leaves64, ct64)
            a64 = None if autodiff is None else jax.jit(autodiff)(leaves64, ct64)
            fd = finite_differences_of(lambda ls, c: _inner(c, g(ls)), leaves64, (ct64,), m64, a64, mode,
                                       directions=directions, step=fd_step, key=k_dir, dtype=fd_dtype, memo=False)
            rows = build_rows(check, labels, host, host_auto, dtype, fd)
        fd_label = "coordinates" if mode == "coordinates" else f"{directions} directions"
        if fd_dtype != "float64":
            notes.append(f"finite differences in {fd_dtype}: {name} computes in {fd_dtype} even on float64 inputs; "
                         f"step {fd_step:.2g} (eps^(1/3)), tolerance scaled to the dtype")
    label = f"the vjp of {name}"
    if batched:
        if any(c.dtype == jax.dtypes.float0 for c in jax.tree_util.tree_leaves(ct)):
            notes.append("batched: skipped (an integer output)")
        else:
            _, vjp_fn = jax.vjp(g, split.leaves)
            found = consistency.batched_problems(label, lambda c: vjp_fn(c)[0],
                                                 _cotangent(k_batch, out, consistency.BATCH), dtype)
            problems += found
            notes.append(f"batched: the vjp under jax.vmap over {consistency.BATCH} cotangents "
                         f"{'differs from' if found else 'equals'} the loop over them")
    if reentrant:
        found = consistency.reentrant_problems(label, lambda: jax.vjp(g, split.leaves)[1](ct)[0])
        problems += found
        notes.append(f"reentrant: two eager vjp calls {'differ' if found else 'are identical'}")
    return Report(tuple(rows), dtype, fd_label, tuple(problems), tuple(notes), fd_dtype)


def check_vjp(f, *args, key=None, reference=None, finite_diff="auto", directions: int = 4, step: float | None = None,
              batched: bool = False, reentrant: bool = False, name: str | None = None) -> Report:
    """A function's custom derivative rule against autodiff of the function it decorates and finite differences.

    f: a `jax.custom_vjp` or `jax.custom_jvp` function (its undecorated function `f.fun` is the reference), or any
    function with `reference=` its undecorated twin; args: its positional arguments (pytrees of arrays); key: the
    random cotangent and directions (default jax.random.key(0)); finite_diff: "auto", "coordinates", "directions"
    or False; step: the relative finite-difference step (default 1e-5 in float64); batched, reentrant: the extra
    checks of the module docstring; name: for messages (default f.__name__). Returns a `Report` with one "vjp" row
    per differentiated argument leaf, or, when the rule's output is misshapen or raises, no rows and the problem.
    """
    if reference is None:
        if not isinstance(f, _RULES):
            raise TypeError(f"check_vjp(f): {type(f).__name__} {_name(f, None)!r} has no custom_vjp/custom_jvp rule "
                            "to check (a jax.jit around one hides it); pass reference= the undecorated function, or "
                            "use check_grad(f, ...) to check any function's gradient against finite differences")
        reference = f.fun
    if not callable(reference):
        raise TypeError(f"check_vjp(reference): a function, got {type(reference).__name__}")
    return _check("vjp", f, args, key=key, reference=reference, finite_diff=finite_diff, directions=directions,
                  step=step, batched=batched, reentrant=reentrant, name=name, where="check_vjp")


def check_grad(f, *args, key=None, finite_diff="auto", directions: int = 4, step: float | None = None,
               batched: bool = False, reentrant: bool = False, name: str | None = None) -> Report:
    """Any JAX function's vjp (whatever custom rules it contains) against finite differences, per argument leaf.

    Arguments as `check_vjp` (no reference: the only witness is finite differences). Returns a `Report` with one
    "grad" row per differentiated argument leaf (column man~fd), whose `assert_close()` names the argument, the
    leaf and the index of the worst entry.
    """
    return _check("grad", f, args, key=key, reference=None, finite_diff=finite_diff, directions=directions,
                  step=step, batched=batched, reentrant=reentrant, name=name, where="check_grad")
