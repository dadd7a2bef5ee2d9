"""From gradient arrays to report rows: the error of each column, the index of its worst entry, the kinks.

    rows = build_rows("layer", labels, manual, autodiff, "float32", fd)     # one Row per leaf

manual, autodiff: lists of host arrays, one per leaf (autodiff None in `check_grad`); labels: (layer, where,
leaf) per leaf; fd: a `FiniteDifferences` (float64 gradients and the finite-difference estimates), or None.
Every column is (max abs error, relative error) by the rule of `report` (scale floor S = the largest |entry| of
the reference gradient over all leaves), judged at kinks by the bracket rule of `kinks`.

Directional rows (large leaves) compare projections vᵀg along n random directions. When one fails at the
default tolerance (or manual~autodiff fails on such a leaf), the leaf is re-checked coordinate by coordinate on
at most `limit` entries (all of them when the leaf is that small; otherwise the entries where manual and autodiff
differ most, or a fixed random sample when they agree), which names the failing entry, and which brackets the
entries where manual and autodiff differ on a kink (a tie split two valid ways) so that they are not called a
mismatch. The cost of the re-check is 4 evaluations per re-checked entry, paid only by a failing leaf.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import numpy as np

from jaxnets.gradcheck import kinks
from jaxnets.gradcheck.report import DEFAULT_RTOL, Entry, Row, default_fd_rtol, default_rtol, floor

RECHECK_LIMIT = 4096


class FiniteDifferences(NamedTuple):
    """The third witness for every leaf. mode: "coordinates" or "directions"; manual, autodiff: the gradients
    recomputed in float64 (autodiff None in `check_grad`); estimates: one `kinks.Estimate` per leaf, shaped like
    the leaf (coordinates) or (n,) (directions); projections: (manual, autodiff) lists of (n,) vᵀg per leaf
    (directions only); recheck: `recheck(leaf_index, coords) -> Estimate` of shape (k,) for the given flat
    coordinates of one leaf (directions only; None disables re-checks); dtype: the dtype they were taken in;
    translation: `translation() -> (estimates, projections)` along each leaf's translation direction, ones/√size
    (coordinates mode: the rows with kinks are also judged along it, see `build_rows`)."""

    mode: str
    manual: list
    autodiff: Optional[list]
    estimates: list
    projections: Optional[tuple] = None
    recheck: Optional[Callable] = None
    dtype: str = "float64"
    translation: Optional[Callable] = None


def _max_abs(a) -> float:
    return float(np.max(np.abs(a))) if np.size(a) else 0.0


def _column(errors, denominator) -> tuple:
    worst = _max_abs(errors)
    return worst, (worst / denominator if denominator > 0 else 0.0)


def _argmax(errors, shape) -> tuple:
    if not np.size(errors):
        return ()
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(errors)), shape)) if shape else ()


def _value(array, index) -> Optional[float]:
    if array is None:
        return None
    value = float(np.asarray(array, np.float64)[index]) if np.ndim(array) else float(array)
    return None if np.isnan(value) else value


def _entry(index, manual, autodiff, est, kink) -> Entry:
    fd = None if est is None else _value(est.central, index)
    bracket = None
    if est is not None and kink is not None and bool(np.asarray(kink)[index]):
        bracket = (_value(est.low, index), _value(est.high, index))
    return Entry(index, _value(manual, index), _value(autodiff, index), fd, bracket)


def _choose(size: int, limit: int, order_by, seed: int) -> np.ndarray:
    """Flat coordinates to re-check: all when size <= limit, else the `limit` largest of `order_by` (when it is
    not all zero), else a fixed random sample."""
    if size <= limit:
        return np.arange(size)
    if order_by is not None and np.any(order_by > 0):
        return np.sort(np.argsort(-order_by.reshape(-1), kind="stable")[:limit])
    return np.sort(np.random.default_rng(seed).choice(size, limit, replace=False))


def _full(size, coords, values) -> np.ndarray:
    out = np.full(size, np.nan)
    out[coords] = values
    return out


class _Scales(NamedTuple):
    low: float      # the scale floor's factor for the dtype
    grad: float     # S: largest |entry| of the reference gradient (manual dtype)
    fd: float       # S in float64
    norm: float     # largest leaf norm of the float64 reference (directional rows)


def _scales(manual, autodiff, fd, dtype) -> _Scales:
    ref = autodiff if autodiff is not None else manual
    s = max((_max_abs(v) for v in ref), default=0.0)
    if fd is None:
        return _Scales(floor(dtype), s, 0.0, 0.0)
    ref64 = fd.autodiff if fd.autodiff is not None else fd.manual
    return _Scales(floor(dtype), s, max((_max_abs(v) for v in ref64), default=0.0),
                   max((float(np.linalg.norm(v)) for v in ref64), default=0.0))


def build_rows(check: str, labels, manual, autodiff, dtype: str, fd: FiniteDifferences | None = None, *,
               limit: int = RECHECK_LIMIT) -> list:
    """One Row per leaf (see the module docstring); `dtype`: the dtype of `manual` and `autodiff`."""
    manual = [np.asarray(v, np.float64) for v in manual]
    autodiff = None if autodiff is None else [np.asarray(v, np.float64) for v in autodiff]
    scales = _scales(manual, autodiff, fd, dtype)
    rtol = default_rtol(dtype) if dtype in DEFAULT_RTOL else 0.0
    fd_rtol = default_fd_rtol("float64" if fd is None else fd.dtype)
    rows = []
    for i, (layer, where, leaf) in enumerate(labels):
        m, a = manual[i], None if autodiff is None else autodiff[i]
        if fd is None:
            rows.append(_plain_row(check, (layer, where, leaf), m, a, scales))
        elif fd.mode == "coordinates":
            rows.append(_coordinate_row(check, (layer, where, leaf), i, m, a, fd, scales, fd_rtol))
        else:
            rows.append(_directional_row(check, (layer, where, leaf), i, m, a, fd, scales, rtol, fd_rtol, limit))
    if fd is not None and fd.mode == "coordinates" and fd.translation is not None and any(r.kinks for r in rows):
        estimates, projections = fd.translation()
        along = fd._replace(mode="directions", estimates=estimates, projections=projections, recheck=None)
        rows = [_with_translation(r, _directional_row(check, (r.layer, r.where, r.leaf), i, manual[i],
                                                      None if autodiff is None else autodiff[i], along, scales,
                                                      rtol, fd_rtol, limit)) if r.kinks else r
                for i, r in enumerate(rows)]
    return rows


def _with_translation(row: Row, along: Row) -> Row:
    """A coordinate row with kinks, also judged along the translation direction (every entry of the leaf moved
    by the same amount) when that direction is not itself a kink: each finite-difference column keeps the worse.
    A max-pooling window is smooth under translation, so the one wrong tie rule that is inside every entry's
    bracket — every tied maximum gets the whole gradient — fails there."""
    columns, entries = [row.manual_vs_autodiff], [row.entries[0]]
    for k, col in ((1, "manual_vs_fd"), (2, "autodiff_vs_fd")):
        mine, theirs = getattr(row, col), along.off_kinks[k]
        worse = theirs is not None and mine is not None and theirs[1] > mine[1]
        columns.append(theirs if worse else mine)
        entries.append(along.entries[k]._replace(index=("translation",)) if worse else row.entries[k])
    return row._replace(manual_vs_fd=columns[1], autodiff_vs_fd=columns[2], entries=tuple(entries))


def _pair_denominator(m, a, scales) -> float:
    return max(_max_abs(m), _max_abs(a) if a is not None else 0.0) + scales.low * scales.grad


def _plain_row(check, label, m, a, scales) -> Row:
    if a is None:
        return Row(check, *label, tuple(m.shape), None, None, None)
    d = np.abs(m - a)
    entry = _entry(_argmax(d, m.shape), m, a, None, None)
    return Row(check, *label, tuple(m.shape), _column(d, _pair_denominator(m, a, scales)), None, None,
               entries=(entry, None, None))


def _coordinate_row(check, label, i, m, a, fd, scales, fd_rtol) -> Row:
    est = fd.estimates[i].reshape(m.shape)
    m64, a64 = fd.manual[i], None if fd.autodiff is None else fd.autodiff[i]
    ref64 = a64 if a64 is not None else m64
    base = scales.low * scales.fd
    threshold = fd_rtol * (max(_max_abs(ref64), _max_abs(est.central)) + base)
    kink = kinks.on_kink(est, threshold)
    columns, entries, off = [None, None, None], [None, None, None], [None, None, None]
    if a is not None:
        d = kinks.pair_difference(m, a, est, kink, threshold)
        denominator = _pair_denominator(m, a, scales)
        columns[0], off[0] = _column(d, denominator), _column(d[~kink], denominator)
        entries[0] = _entry(_argmax(d, m.shape), m, a, est, kink)
    for col, g in ((1, m64), (2, a64)):
        if g is None:
            continue
        e = kinks.fd_error(g, est)
        denominator = max(_max_abs(g), _max_abs(est.central)) + base
        columns[col], off[col] = _column(e, denominator), _column(e[~kink], denominator)
        entries[col] = _entry(_argmax(e, m.shape), m64, a64, est, kink)
    return Row(check, *label, tuple(m.shape), *columns, entries=tuple(entries), kinks=int(np.sum(kink)),
               off_kinks=tuple(off))


def _worse(a, b):
    """The column value (abs, rel) with the larger relative error (None-safe)."""
    if a is None or b is None:
        return a if b is None else b
    return b if b[1] > a[1] else a


def _directional_row(check, label, i, m, a, fd, scales, rtol, fd_rtol, limit) -> Row:
    """A leaf judged along random directions. A direction on a kink is inconclusive when its value is outside the
    direction's bracket (kinks of opposite orientation along one direction narrow the bracket of their sum below
    the sum of their brackets), so the directional verdict counts the other directions, and a failing leaf is
    re-checked per coordinate, where each bracket is exact."""
    est = fd.estimates[i]
    pm, pa = fd.projections[0][i], None if fd.projections[1] is None else fd.projections[1][i]
    m64, a64 = fd.manual[i], None if fd.autodiff is None else fd.autodiff[i]
    ref64 = a64 if a64 is not None else m64
    denominator = float(np.linalg.norm(ref64)) + scales.low * scales.norm
    kink = kinks.on_kink(est, fd_rtol * denominator)
    columns, entries, off = [None, None, None], [None, None, None], [None, None, None]
    for col, p in ((1, pm), (2, pa)):
        if p is not None:
            e = kinks.fd_error(p, est)
            columns[col], off[col] = _column(e, denominator), _column(e[~kink], denominator)
            k = int(np.argmax(e)) if e.size else 0
            entries[col] = Entry((k,), _value(pm, k), _value(pa, k), _value(est.central, k),
                                 (_value(est.low, k), _value(est.high, k)) if e.size and kink[k] else None, True)
    d = None if a is None else np.abs(m - a)
    failing = (d is not None and _column(d, _pair_denominator(m, a, scales))[1] > rtol) or any(
        c is not None and c[1] > fd_rtol for c in columns[1:])
    n_kinks, note = int(np.sum(kink)), ""
    est_for_pair, kink_for_pair = None, None
    if failing and fd.recheck is not None and m.size:
        coords = _choose(m.size, limit, d if d is not None and np.any(d > 0) else None, seed=i)
        est_c = fd.recheck(i, coords)
        base = scales.low * scales.fd
        threshold = fd_rtol * (max(_max_abs(ref64), _max_abs(est_c.central)) + base)
        kink_c = kinks.on_kink(est_c, threshold)
        n_kinks += int(np.sum(kink_c))
        note = f"re-checked {coords.size} of {m.size} entries"
        est_for_pair = kinks.Estimate(*(_full(m.size, coords, v).reshape(m.shape) for v in est_c))
        kink_for_pair = _full(m.size, coords, kink_c).reshape(m.shape) == 1
        if d is not None:
            flat = d.reshape(-1).copy()
            flat[coords] = kinks.pair_difference(m.reshape(-1)[coords], a.reshape(-1)[coords], est_c, kink_c,
                                                 threshold)
            d = flat.reshape(m.shape)
        for col, g in ((1, m64), (2, a64)):
            if g is None or columns[col] is None:
                continue
            e = kinks.fd_error(g.reshape(-1)[coords], est_c)
            coordinate_denominator = max(_max_abs(g), _max_abs(est_c.central)) + base
            per = _column(e, coordinate_denominator)
            verdict = _worse(off[col], per)         # kink directions are left to the coordinates
            if per[1] > off[col][1] and per[1] > 0:  # a coordinate is the worst: name it
                index = tuple(int(j) for j in np.unravel_index(int(coords[int(np.argmax(e))]), m.shape))
                entries[col] = _entry(index, m64, a64, est_for_pair, kink_for_pair)
            columns[col] = verdict
            off[col] = _worse(off[col], _column(e[~kink_c], coordinate_denominator))
    if d is not None:
        denominator = _pair_denominator(m, a, scales)
        columns[0] = _column(d, denominator)
        off[0] = columns[0] if kink_for_pair is None else _column(d[~kink_for_pair], denominator)
        entries[0] = _entry(_argmax(d, m.shape), m, a, est_for_pair, kink_for_pair)
    return Row(check, *label, tuple(m.shape), *columns, note=note, entries=tuple(entries), kinks=n_kinks,
               off_kinks=tuple(off))
