"""On-device, key-driven image augmentation: pixel shifts with zero fill, small rotations, expanded data sets.

    x5, y5 = expand(x, y, image_shape=(28, 28))      # the textbook's expanded set: original + 4 one-pixel shifts
    aug = chain(random_shift(1, image_shape=(28, 28)), random_rotation(10, image_shape=(28, 28)))
    jaxnets.fit(..., augment=aug)                     # aug(key, xb) -> xb, per mini-batch, inside the compiled epoch

Images are NHWC arrays (N, H, W, C), (N, H, W), or flat rows (N, H·W·C) with `image_shape=(H, W)` or
(H, W, C) (rows in row-major H, W, C order, as `reshape` gives); every function returns the input's shape.
Conventions: row 0 is the top of the image; `shift(x, dy, dx)` moves the content dy rows *down* and dx columns
*right* (negative: up / left), out[r, c] = in[r − dy, c − dx], with zeros where that falls outside;
`rotate(x, degrees)` turns the content counter-clockwise (as displayed) about the image centre by bilinear
interpolation (`jax.scipy.ndimage.map_coordinates`, order 1, zeros outside). Sampling points within 1e-3 of a
pixel centre are snapped onto it, so 0° is the identity and 90° an exact permutation (np.rot90) on square images.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.ndimage import map_coordinates

SNAP = 1e-3


def _as_images(x, image_shape):
    """(images (N, H, W, C), function putting an (N, H, W, C) array back into x's layout)."""
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) == 2:
            shape = shape + (1,)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"image_shape must be (H, W) or (H, W, C), got {image_shape!r}")
        if x.ndim < 2 or math.prod(x.shape[1:]) != math.prod(shape):
            raise ValueError(f"inputs of shape {tuple(x.shape)} do not hold images of shape {shape}: each example "
                             f"needs {math.prod(shape)} values; check image_shape")
        return x.reshape((x.shape[0],) + shape), (lambda img: img.reshape(x.shape))
    if x.ndim == 4:
        return x, (lambda img: img)
    if x.ndim == 3:
        return x[..., None], (lambda img: img[..., 0])
    raise ValueError(f"inputs of shape {tuple(x.shape)} are not images: pass NHWC arrays (N, H, W, C) or flat rows "
                     "with image_shape=(H, W), e.g. image_shape=(28, 28) for MNIST")


def _per_example(v, n, dtype):
    v = jnp.asarray(v, dtype)
    if v.ndim == 0:
        return jnp.broadcast_to(v, (n,))
    if v.shape != (n,):
        raise ValueError(f"a per-example argument must be a scalar or have shape ({n},), got {tuple(v.shape)}")
    return v


def _shift_axis(img, d, axis):
    size = img.shape[axis]
    src = jnp.arange(size)[None, :] - d[:, None]  # (N, size): out index i reads in index i - d
    valid = (src >= 0) & (src < size)
    shape = [img.shape[0], 1, 1, 1]
    shape[axis] = size
    idx = jnp.clip(src, 0, size - 1).reshape(shape)
    moved = jnp.take_along_axis(img, idx, axis=axis)
    return jnp.where(valid.reshape(shape), moved, jnp.zeros((), img.dtype))


def shift(x, dy, dx, *, image_shape=None):
    """Move each image dy rows down and dx columns right (ints, or int arrays of shape (N,) per example),
    filling uncovered pixels with 0. Exact (a gather, no interpolation)."""
    return _shift(jnp.asarray(x), jnp.asarray(dy, jnp.int32), jnp.asarray(dx, jnp.int32), _static(image_shape))


def _static(image_shape):
    return None if image_shape is None else tuple(int(s) for s in image_shape)


@functools.partial(jax.jit, static_argnums=3)
def _shift(x, dy, dx, image_shape):
    img, back = _as_images(x, image_shape)
    n = img.shape[0]
    img = _shift_axis(img, _per_example(dy, n, jnp.int32), 1)
    img = _shift_axis(img, _per_example(dx, n, jnp.int32), 2)
    return back(img)


def _rotate_one(img, degrees):
    h, w = img.shape[0], img.shape[1]
    theta = jnp.deg2rad(degrees.astype(jnp.float32))
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    r, c = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    u, v = r - cy, c - cx
    # out(r, c) samples in(R(-θ)·(r, c)) with the y axis pointing up: counter-clockwise as displayed.
    coords = [cy + cos * u + sin * v, cx + cos * v - sin * u]
    coords = [jnp.where(jnp.abs(p - jnp.round(p)) < SNAP, jnp.round(p), p) for p in coords]
    channels = jnp.moveaxis(img, -1, 0)
    out = jax.vmap(lambda ch: map_coordinates(ch, coords, order=1, mode="constant", cval=0.0))(channels)
    return jnp.moveaxis(out, 0, -1).astype(img.dtype)


def rotate(x, degrees, *, image_shape=None):
    """Rotate each image counter-clockwise by `degrees` (a scalar or an (N,) array) about its centre, bilinear,
    zeros outside the source image."""
    return _rotate(jnp.asarray(x), jnp.asarray(degrees, jnp.float32), _static(image_shape))


@functools.partial(jax.jit, static_argnums=2)
def _rotate(x, degrees, image_shape):
    img, back = _as_images(x, image_shape)
    return back(jax.vmap(_rotate_one)(img, _per_example(degrees, img.shape[0], jnp.float32)))


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int (pixels), got {value!r}")
    return int(value)


def random_shift(max_shift: int = 1, *, image_shape=None, mode: str = "axis"):
    """An augmentation `fn(key, xb) -> xb` shifting each example independently.

    mode "axis" (the textbook's displacements): one of {no shift, up, down, left, right}, uniformly, by a
    distance uniform in 1..max_shift; mode "square": dy and dx independently uniform in [-max_shift, max_shift].
    """
    max_shift = _check_positive_int(max_shift, "random_shift(max_shift)")
    if mode not in ("axis", "square"):
        raise ValueError(f"random_shift(mode=...) must be 'axis' or 'square', got {mode!r}")

    def augment(key, xb):
        n = xb.shape[0]
        k1, k2 = jax.random.split(key)
        if mode == "square":
            d = jax.random.randint(k1, (2, n), -max_shift, max_shift + 1)
            return shift(xb, d[0], d[1], image_shape=image_shape)
        direction = jax.random.randint(k1, (n,), 0, 5)  # 0 none, 1 up, 2 down, 3 left, 4 right
        dist = jax.random.randint(k2, (n,), 1, max_shift + 1)
        dy = jnp.where(direction == 1, -dist, jnp.where(direction == 2, dist, 0))
        dx = jnp.where(direction == 3, -dist, jnp.where(direction == 4, dist, 0))
        return shift(xb, dy, dx, image_shape=image_shape)

    return augment


def random_rotation(max_degrees: float, *, image_shape=None):
    """An augmentation `fn(key, xb) -> xb` rotating each example by an angle uniform in [-max_degrees,
    max_degrees]."""
    if isinstance(max_degrees, bool) or not isinstance(max_degrees, (int, float)) or not 0 <= max_degrees <= 180:
        raise ValueError(f"random_rotation(max_degrees) must be a number in [0, 180], got {max_degrees!r}")

    def augment(key, xb):
        angles = jax.random.uniform(key, (xb.shape[0],), jnp.float32, -max_degrees, max_degrees)
        return rotate(xb, angles, image_shape=image_shape)

    return augment


def chain(*augments):
    """Apply augmentations in order, the i-th with key fold_in(key, i): `fn(key, xb) -> xb`."""
    for i, a in enumerate(augments):
        if not callable(a):
            raise TypeError(f"chain(): argument {i} is not an augmentation fn(key, xb) -> xb, got {type(a).__name__}")

    def augment(key, xb):
        for i, a in enumerate(augments):
            xb = a(jax.random.fold_in(key, i), xb)
        return xb

    return augment


def expand(x, y, *, image_shape=None, distance: int = 1):
    """The expanded training set: the originals, then copies shifted up, down, left and right by `distance`
    pixels (zero fill): returns (x5, y5) with 5·N examples, labels repeated block by block. numpy in, numpy
    out (jax arrays in, jax arrays out)."""
    distance = _check_positive_int(distance, "expand(distance)")
    as_numpy = not isinstance(x, jax.Array)
    xj = jnp.asarray(x)
    if np.shape(y)[:1] != xj.shape[:1]:
        raise ValueError(f"expand: x has {xj.shape[0]} examples but y has shape {np.shape(y)}")
    moves = [(0, 0), (-distance, 0), (distance, 0), (0, -distance), (0, distance)]
    parts = [xj if (dy, dx) == (0, 0) else shift(xj, dy, dx, image_shape=image_shape) for dy, dx in moves]
    if as_numpy:
        return np.concatenate([np.asarray(p) for p in parts]), np.concatenate([np.asarray(y)] * 5)
    return jnp.concatenate(parts), jnp.concatenate([jnp.asarray(y)] * 5)


__all__ = ["shift", "rotate", "random_shift", "random_rotation", "chain", "expand"]
