"""The gradient-check report: one row per (layer, leaf), three columns, one error rule, and the blame.

Error rule. For a row comparing gradients a and b (manual, autodiff or finite differences) of one leaf:

    relative error = max|a − b| / (max(max|a|, max|b|) + FLOOR · S)

where S is the largest |entry| of the reference (autodiff) gradient over every leaf of the same check, input
gradient included, and FLOOR = 1e-2 (float64, float32; `floor(dtype)` gives 5e-2 for float16 and 1e-1 for
bfloat16, whose round-off is 2⁻¹¹ and 2⁻⁸). The floor is an absolute tolerance tied to the size of the whole
gradient (as torch.autograd.gradcheck's atol + rtol·|b|): a leaf whose true gradient is exactly 0 (the bias before a
BatchNorm, Step, a dead ReLU region) compares its round-off with 1 % of the largest gradient, not with 0, so
it cannot raise a false alarm, while a wrong gradient anywhere near the size of the others still fails.
Directional rows (finite differences along random unit directions v) compare vᵀa with the difference
quotient, relative to ‖b‖₂ + FLOOR · S₂ with S₂ the largest leaf norm. A row passes when its error is
≤ rtol (manual~autodiff) or ≤ fd_rtol (either against finite differences), or its max abs error ≤ atol.

Default tolerances (`DEFAULT_RTOL`) follow the dtype the manual and autodiff gradients were computed in:
float64 1e-10, float32 1e-4, float16 5e-2, bfloat16 1e-1. The low-precision ones are measured, not guessed:
under mixed precision (`compute_dtype=`; float32 master params, inputs N(0, 1), batch 32) the worst
manual~autodiff errors were, in bfloat16, 9.4e-3 (ReLU MLP), 1.8e-2 (sigmoid + BatchNorm MLP), 2.3e-2 (CNN,
max pooling) and 7.5e-2 (CNN, average pooling: the conv bias gradient sums 1,152 bfloat16 terms, and jax.grad's
sum lands 9.4e-2 from the float32 gradient, the hand-written one 3.5e-2); in float16 7.9e-4 to 7.4e-3, and
2.3e-2 for the max-pooling CNN (ties, see below). Most
leaves agree to a few 1e-3; the bound is set by long reductions, so a bfloat16 check catches a wrong layer or
a broken mixed-precision policy, not a subtle bug — float64 is the precise witness;
finite-difference columns are float64: 1e-6 (`DEFAULT_FD_RTOL`; where a function computes in a lower precision
whatever its inputs, the differences are taken in that dtype with a dtype-scaled step and `FD_RTOL` by dtype).
In bfloat16, equal values are common (8 significant
bits), so a max-pooling layer meets ties often: the input gradients of jaxnets' rule (the first maximum takes
the gradient) and jax.grad's (ties share it) then differ, both valid; check pooling in float32 or float64.

Kinks (see `kinks`). A finite-difference entry is compared with the central difference c, or, where the two
one-sided differences disagree (a kink or a tie), accepted anywhere inside their bracket [min(l, r), max(l, r)]:
its error is min(|g − c|, distance from g to the bracket), so a value outside the bracket always fails by its
distance to it. Rows record how many entries sat on a kink (`Row.kinks`); the report's header names them.

Structure. A backward (or a custom_vjp rule) that returns the wrong tree, shapes, dtypes or count gives no rows
but `Report.problems` (one message each; see `structure`): the report fails, and `assert_close` raises with the
first problem as its first line. `Report.notes` are header lines (kinks, precision, batched/reentrant checks).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

FLOOR = 1e-2
_FLOORS = {"float16": 5e-2, "bfloat16": 1e-1}
DEFAULT_RTOL = {"float64": 1e-10, "float32": 1e-4, "float16": 5e-2, "bfloat16": 1e-1}
DEFAULT_FD_RTOL = 1e-6
# finite differences taken in a lower precision (a function that computes in it whatever its inputs): the
# step is eps^(1/3) of that dtype, the truncation and round-off errors each about eps^(2/3), times a margin
FD_RTOL = {"float64": DEFAULT_FD_RTOL, "float32": 1e-2, "float16": 1e-1, "bfloat16": 2e-1}
COLUMNS = ("manual_vs_autodiff", "manual_vs_fd", "autodiff_vs_fd")
_SHORT = {"manual_vs_autodiff": "man~auto", "manual_vs_fd": "man~fd", "autodiff_vs_fd": "auto~fd"}
# what each kind of row compares, for the table and the error messages
CHECKS = {
    "model": "the whole model's gradient of the cost",
    "in place": "one layer inside the model, at the activations and output cotangent the model gives it",
    "layer": "one layer alone, on a random input and output cotangent",
    "loss": "the loss's output gradient ∂C/∂outputs",
    "penalty": "the penalty's gradient",
    "vjp": "a custom_vjp (or custom_jvp) rule's cotangents against autodiff of the undecorated function",
    "grad": "a function's jax.vjp against finite differences",
}
# the names of the two gradient witnesses in each kind of check (None: not computed)
WITNESSES = {"vjp": ("rule", "autodiff"), "grad": ("jax.vjp", None)}
_DEFAULT_WITNESSES = ("manual", "autodiff")


class Entry(NamedTuple):
    """Where a column's worst entry is, and the values there.

    index: the entry's index in the leaf (a tuple of ints; () for a scalar), or (k,) the number of a random
    direction when `direction` is True (a directional check whose failure no single coordinate explains), or
    ("translation",) for the direction that moves every entry alike (see `rows`);
    manual, autodiff: the two gradients there (autodiff None in `check_grad`), projected on the direction when
    `direction`; fd: the central finite difference (None when not computed); bracket: (low, high) of the
    one-sided differences where they disagree (a kink), else None."""

    index: tuple
    manual: float
    autodiff: Optional[float]
    fd: Optional[float] = None
    bracket: Optional[tuple] = None
    direction: bool = False


class Row(NamedTuple):
    """check: a key of CHECKS; layer: the layer's (or loss's, or function's) name; where: its position in the
    model as child indices ("1/0"; "" for the model itself or a layer checked alone); leaf: a parameter path
    within the layer ("w", "0/b"), "input" (∂C/∂x), "outputs" (the loss), or an argument (`check_vjp`); shape of
    the leaf; each column (max abs error, relative error) or None when not computed; note: "nearby input" when
    an in-place check without finite differences was made at a perturbed copy of the layer's input (see
    `check_model`); entries: the worst `Entry` of each column (None where not computed); kinks: how many
    entries (or directions) sat on a kink, where the bracket rule of the module docstring applied; off_kinks:
    each column's (max abs, relative error) over the entries not on a kink (see `check_model`: coupled kinks)."""

    check: str
    layer: str
    where: str
    leaf: str
    shape: tuple
    manual_vs_autodiff: Optional[tuple]
    manual_vs_fd: Optional[tuple]
    autodiff_vs_fd: Optional[tuple]
    note: str = ""
    entries: tuple = (None, None, None)
    kinks: int = 0
    off_kinks: tuple = (None, None, None)

    @property
    def path(self) -> str:
        """The leaf's path from the model's root, e.g. "2/b" (the leaf alone for a layer checked by itself)."""
        return f"{self.where}/{self.leaf}" if self.where else self.leaf

    def entry(self, column: str) -> Optional[Entry]:
        """The worst `Entry` of a column, or None."""
        return self.entries[COLUMNS.index(column)]


def floor(dtype: str) -> float:
    """The scale floor of a check computed in `dtype` (see the module docstring)."""
    return _FLOORS.get(str(dtype), FLOOR)


def default_rtol(dtype: str) -> float:
    """The manual~autodiff tolerance for gradients computed in `dtype` (see the module docstring)."""
    if dtype not in DEFAULT_RTOL:
        raise ValueError(f"no default gradient-check tolerance for dtype {dtype!r}; pass rtol= explicitly "
                         f"(known: {sorted(DEFAULT_RTOL)})")
    return DEFAULT_RTOL[dtype]


def default_fd_rtol(dtype: str) -> float:
    """The tolerance against finite differences taken in `dtype` (float64 unless a function cannot compute in it)."""
    return FD_RTOL.get(str(dtype), DEFAULT_FD_RTOL)


def check_tolerance(name: str, value) -> None:
    """None or a finite number >= 0, else ValueError naming the argument."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not (value >= 0 and math.isfinite(value))):
        raise ValueError(f"assert_close({name}): a tolerance must be a number >= 0 and finite, got {value!r}")


class Report(NamedTuple):
    """The outcome of `compare`, `check_layer`, `check_model`, `check_vjp` or `check_grad`.

    rows: `Row`s, the model's or layer's own first, then (check_model) the loss, penalty and every child in place
    (pre-order); manual_dtype: the dtype of the manual~autodiff column; fd: how the finite-difference columns
    were computed ("coordinates", "4 directions", or None when skipped); problems: structural failures (each a
    full message; the report fails); notes: header lines; fd_dtype: the dtype of the finite differences
    ("float64" unless the function cannot compute in it).
    """

    rows: tuple
    manual_dtype: str
    fd: Optional[str]
    problems: tuple = ()
    notes: tuple = ()
    fd_dtype: str = "float64"

    def worst(self, column: str = "manual_vs_autodiff") -> float:
        """The largest relative error in a column ("manual_vs_autodiff", "manual_vs_fd", "autodiff_vs_fd")."""
        if column not in COLUMNS:
            raise ValueError(f"worst(column): one of {COLUMNS}, got {column!r}")
        return max((getattr(r, column)[1] for r in self.rows if getattr(r, column) is not None), default=0.0)

    def per_layer(self) -> dict:
        """{layer name: {column: worst relative error}} over every row of that layer."""
        out: dict = {}
        for r in self.rows:
            entry = out.setdefault(r.layer, {})
            for col in COLUMNS:
                if getattr(r, col) is not None:
                    entry[col] = max(entry.get(col, 0.0), getattr(r, col)[1])
        return out

    def kink_rows(self) -> list:
        """The rows where the bracket rule applied (some entry sat on a kink), in order."""
        return [r for r in self.rows if r.kinks]

    def failures(self, rtol: float | None = None, fd_rtol: float | None = None, atol: float = 0.0) -> list:
        """[(row, column, tolerance)] of every comparison outside its tolerance (defaults as `assert_close`).
        Structural problems are not rows: see `problems` (and `passed`)."""
        for name, value in (("rtol", rtol), ("fd_rtol", fd_rtol), ("atol", atol)):
            check_tolerance(name, value)
        rtol = default_rtol(self.manual_dtype) if rtol is None else rtol
        fd_rtol = default_fd_rtol(self.fd_dtype) if fd_rtol is None else fd_rtol
        found = []
        for r in self.rows:
            for col, tol in zip(COLUMNS, (rtol, fd_rtol, fd_rtol)):
                value = getattr(r, col)
                if value is not None and not (value[1] <= tol or value[0] <= atol):
                    found.append((r, col, tol))
        return found

    @property
    def passed(self) -> bool:
        """True when there is no structural problem and every row passes at the default tolerances."""
        return not self.problems and not self.failures()

    def assert_close(self, rtol: float | None = None, fd_rtol: float | None = None, *, atol: float = 0.0) -> None:
        """Raise AssertionError unless the structure is right and every row passes (see the module docstring).

        rtol: manual~autodiff tolerance (default by dtype, `DEFAULT_RTOL`); fd_rtol: against finite differences
        (default 1e-6 in float64, `FD_RTOL`); atol: a max abs error that always passes. The message's first line
        is the first structural problem if there is one (it names the layer or argument and what is wrong), else
        it names the layer to look at: the innermost failing layer checked in place (its own backward is wrong,
        since every layer inside it passed), else the loss or penalty, else the model (its layers pass alone, so
        the way they are combined is at fault); and the index of the worst entry with the values there. The
        other failures follow.
        """
        failing = self.failures(rtol, fd_rtol, atol)
        if self.problems:
            raise AssertionError("\n".join([self.problems[0]] + [f"  also: {p}" for p in self.problems[1:]]))
        if not failing:
            return
        row, col, tol = _blame(failing)
        lines = [headline(row, col, tol)]
        lines += [f"  also: {r.check} {r.layer}" + (f" at {r.where}" if r.where else "") + f", {r.leaf}: "
                  f"{short(c, r.check)} {getattr(r, c)[1]:.2e} > {t:.1e}" + _at(r, c)
                  for r, c, t in failing if (r, c) != (row, col)][:12]
        raise AssertionError("\n".join(lines))

    def header(self) -> list:
        """The lines above the table: what was compared in which precision, then the notes and kinks."""
        fd = f"finite differences in {self.fd_dtype} ({self.fd})" if self.fd else "finite differences not computed"
        lines = [f"gradient check (relative errors): manual~autodiff in {self.manual_dtype}; {fd}"]
        lines += list(self.notes)
        kinks = self.kink_rows()
        if kinks:
            where = "; ".join(f"{r.check} {r.layer}" + (f" at {r.where}" if r.where else "") + f", {r.leaf} "
                              f"({r.kinks} {'directions' if self.fd and 'direction' in self.fd else 'entries'})"
                              for r in kinks[:8])
            lines.append(f"kink rule applied (one-sided differences disagree; a value inside their bracket is "
                         f"correct): {where}" + (f"; and {len(kinks) - 8} more rows" if len(kinks) > 8 else ""))
        return lines

    def __str__(self) -> str:
        def cell(v):
            return "        -" if v is None else f"{v[1]:9.2e}"

        header = (f"{'check':<9}{'layer':<24}{'where':<7}{'leaf':<10}{'shape':<14}{'man~auto':>10}{'man~fd':>10}"
                  f"{'auto~fd':>10}")
        lines = self.header() + [f"STRUCTURE: {p}" for p in self.problems] + [header, "-" * len(header)]
        for r in self.rows:
            notes = [r.note] if r.note else []
            notes += [f"kink rule: {r.kinks}"] if r.kinks else []
            lines.append(f"{r.check:<9}{r.layer[:23]:<24}{r.where or '-':<7}{r.leaf[:9]:<10}{str(r.shape)[:13]:<14}"
                         f"{cell(r.manual_vs_autodiff):>10}{cell(r.manual_vs_fd):>10}{cell(r.autodiff_vs_fd):>10}"
                         + (f"  ({'; '.join(notes)})" if notes else ""))
        summary = f"worst: manual~autodiff {self.worst('manual_vs_autodiff'):.2e}"
        if self.fd:
            summary += f", manual~fd {self.worst('manual_vs_fd'):.2e}, autodiff~fd {self.worst('autodiff_vs_fd'):.2e}"
        lines.append(summary + f"; {'passed' if self.passed else 'FAILED'} at the default tolerances")
        return "\n".join(lines)


def _inside(path: str, ancestor: str) -> bool:
    return path != ancestor and (ancestor == "" or path.startswith(ancestor + "/"))


def _blame(failing):
    """The failing comparison to name first: the innermost layer checked in place or alone whose descendants all
    pass, then the loss/penalty, then the model."""
    layers = [f for f in failing if f[0].check in ("in place", "layer")]
    if layers:
        paths = {f[0].where for f in layers}
        return next(f for f in layers if not any(_inside(p, f[0].where) for p in paths))
    for check in ("loss", "penalty", "model"):
        for f in failing:
            if f[0].check == check:
                return f
    return failing[0]


def short(column: str, check: str = "") -> str:
    """The column's short name in the words of the check: "man~fd", or "rule~fd" for a custom rule."""
    first, second = WITNESSES.get(check, _DEFAULT_WITNESSES)
    if check not in WITNESSES:
        return _SHORT[column]
    names = {"manual_vs_autodiff": (first, second), "manual_vs_fd": (first, "fd"), "autodiff_vs_fd": (second, "fd")}
    a, b = names[column]
    return f"{a}~{b}"


def _number(v) -> str:
    return f"{v:.6g}"


def indexed(leaf: str, index: tuple) -> str:
    """`leaf[i, j]`: a leaf label with an entry's index (the label alone for a scalar)."""
    return f"{leaf}[{', '.join(str(i) for i in index)}]" if index else leaf


def describe(row: Row, column: str) -> str:
    """Where the column's worst entry is and the values there, e.g. "w[3, 1]: manual 0.412, autodiff 0.398,
    finite differences 0.398"; "" when the row has no entry for the column."""
    entry = row.entry(column)
    if entry is None:
        return ""
    first, second = WITNESSES.get(row.check, _DEFAULT_WITNESSES)
    if entry.direction and entry.index == ("translation",):
        where, suffix = f"along the translation of {row.leaf} (every entry moved alike)", "·v"
    elif entry.direction:
        where, suffix = f"along random direction {entry.index[0]} of {row.leaf}", "·v"
    else:
        where, suffix = indexed(row.leaf, entry.index), ""
    values = [f"{first}{suffix} {_number(entry.manual)}"]
    if second is not None and entry.autodiff is not None:
        values.append(f"{second}{suffix} {_number(entry.autodiff)}")
    if entry.bracket is not None:
        values.append(f"finite differences in [{_number(entry.bracket[0])}, {_number(entry.bracket[1])}] "
                      "(one-sided: a kink)")
    elif entry.fd is not None:
        values.append(f"finite differences {_number(entry.fd)}")
    return f"{where}: {', '.join(values)}"


def _at(row: Row, column: str) -> str:
    text = describe(row, column)
    return f" at {text}" if text else ""


def headline(row: Row, col: str, tol: float) -> str:
    """The first line of `assert_close`'s message for a failing (row, column)."""
    value = getattr(row, col)
    first, second = WITNESSES.get(row.check, _DEFAULT_WITNESSES)
    measured = f"{short(col, row.check)} relative error {value[1]:.2e} > {tol:.1e} (max abs {value[0]:.2e})"
    worst = describe(row, col)
    worst = f"; worst at {worst}" if worst else ""
    what = {"input": "its input gradient dx", "outputs": "its gradient ∂C/∂outputs"}.get(
        row.leaf, f"its input gradient dx[{row.leaf[6:]}]" if row.leaf.startswith("input/")
        else f"its parameter gradient {row.leaf!r}")
    if row.check in ("in place", "layer"):
        where = f"at {row.where} of the model, checked in place" if row.check == "in place" else "checked alone"
        return (f"gradient mismatch in layer {row.layer} ({where}): {what}: {measured}{worst}; check {row.layer}'s "
                f"backward against its forward")
    if row.check == "loss":
        return (f"gradient mismatch in loss {row.layer}: {what}: {measured}{worst}; check the loss's grad against "
                "its value")
    if row.check == "penalty":
        return (f"gradient mismatch in penalty {row.layer}: {measured}{worst}; check the penalty's grad against its "
                "value")
    if row.check == "vjp":
        return (f"gradient mismatch in the custom rule of {row.layer}: argument {row.leaf}: {measured}{worst}; check "
                "the rule against the function it differentiates")
    if row.check == "grad":
        return (f"gradient mismatch in {row.layer}: argument {row.leaf}: {measured}{worst}; a derivative rule inside "
                f"{row.layer} (a custom_vjp or custom_jvp) disagrees with its values")
    return (f"gradient mismatch at {row.path} (layer {row.layer}): {measured}{worst}; check that layer's backward "
            "against its forward (check_model checks every layer in place and names the one at fault)")
