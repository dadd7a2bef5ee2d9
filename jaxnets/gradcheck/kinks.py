"""Finite differences that see kinks: the central difference, the two one-sided ones, and the bracket rule.

From the stencil values fn(θ + s·h·e) for s in (1, −1, ½, −½) and fn(θ) (see `differences`), per coordinate or
direction e:

    c  = (f₊ − f₋) / 2h                                   the central difference (error O(h²) where fn is smooth)
    r  = 2·(f₊½ − f₀)/(h/2) − (f₊ − f₀)/h                  the right one-sided difference, Richardson-extrapolated
    l  = 2·(f₀ − f₋½)/(h/2) − (f₀ − f₋)/h                  the left one (both O(h²): curvature cancels)

Where fn is smooth, l ≈ c ≈ r. On a kink (ReLU or LeakyReLU at 0, |x| at 0, a clip at its bound, a max-pooling
window with tied maxima) l and r are the two one-sided derivatives and c is neither: any value in the bracket
[min(l, r), max(l, r)] is a valid (sub)gradient — the hand-written rule may pick either side or a split of a tie.
So a gradient entry g is judged by

    error(g) = min(|g − c|, distance(g, [min(l, r), max(l, r)]))

which is |g − c| up to round-off where fn is smooth (the bracket is then O(h²) wide), zero anywhere inside the
bracket of a kink, and the distance to the bracket outside it: a value outside the bracket never passes by more
than the tolerance. An entry is *on a kink* (and counted in the report) where max(l, r) − min(l, r) exceeds the
tolerance of the comparison; there two gradients that differ from each other (jaxnets gives a tie to the first
maximum, jax.grad shares it) are both accepted when each is inside the bracket.

Detection is generic (no layer names): it sees any kink within about h/3 of θ. A kink farther than that but
within h of θ (probability about h per unit density of kinks) is not bracketed and may raise an alarm.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Estimate(NamedTuple):
    """Finite-difference estimates of one leaf (or of its directions): arrays of the same shape, float64.
    central: c; low, high: the bracket [min(l, r), max(l, r)] of the one-sided differences."""

    central: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def width(self) -> np.ndarray:
        """max(l, r) − min(l, r): zero up to O(h²) where the function is smooth, the jump on a kink."""
        return self.high - self.low

    def take(self, index) -> "Estimate":
        """The estimate at `index` (numpy indexing) of each array."""
        return Estimate(self.central[index], self.low[index], self.high[index])

    def reshape(self, shape) -> "Estimate":
        return Estimate(*(np.reshape(a, shape) for a in self))


def estimate(f0, values, steps) -> Estimate:
    """The `Estimate` from a stencil: f0 = fn(θ); values[..., j] = fn(θ + SIGNS[j]·h·e) with SIGNS = (1, −1, ½, −½);
    steps: h, broadcastable to values[..., 0]."""
    v = np.asarray(values, np.float64)
    f0 = float(np.asarray(f0, np.float64))
    h = np.asarray(steps, np.float64)
    f_plus, f_minus, f_half, f_minus_half = v[..., 0], v[..., 1], v[..., 2], v[..., 3]
    central = (f_plus - f_minus) / (2 * h)
    right = 2 * (f_half - f0) / (h / 2) - (f_plus - f0) / h
    left = 2 * (f0 - f_minus_half) / (h / 2) - (f0 - f_minus) / h
    return Estimate(central, np.minimum(left, right), np.maximum(left, right))


def distance(g, est: Estimate) -> np.ndarray:
    """How far g lies outside the bracket [low, high] (0 inside), entry by entry."""
    g = np.asarray(g, np.float64)
    return np.maximum(est.low - g, 0) + np.maximum(g - est.high, 0)


def fd_error(g, est: Estimate) -> np.ndarray:
    """min(|g − c|, distance(g, bracket)), entry by entry: the error of a gradient against finite differences."""
    g = np.asarray(g, np.float64)
    return np.minimum(np.abs(g - est.central), distance(g, est))


def on_kink(est: Estimate, threshold: float) -> np.ndarray:
    """The entries whose one-sided differences disagree by more than `threshold` (absolute): bool array."""
    return est.width > threshold


def pair_difference(m, a, est: Estimate, kink, tolerance) -> np.ndarray:
    """|m − a| entry by entry, except on a kink (`kink` mask), where two different values are both right when each
    is inside the bracket (within `tolerance`, absolute): there it is 0."""
    m, a = np.asarray(m, np.float64), np.asarray(a, np.float64)
    inside = np.maximum(distance(m, est), distance(a, est)) <= tolerance
    return np.where(np.asarray(kink) & inside, 0.0, np.abs(m - a))
