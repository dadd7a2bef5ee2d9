"""jaxnets.data.augment: exact shifts, rotations (0° identity, 90° a permutation), expand, per-batch use in fit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxnets as jn
from jaxnets import losses, optim
from jaxnets.data import augment as aug

MOVES = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


def _one_hot_image(h, w, r, c, channels=None):
    img = np.zeros((h, w) if channels is None else (h, w, channels), np.float32)
    img[r, c] = 1.0
    return img


@pytest.mark.parametrize("name", list(MOVES))
def test_one_pixel_moves_by_one_flat_and_nhwc(name):
    dy, dx = MOVES[name]
    img = _one_hot_image(6, 5, 2, 3)
    flat = aug.shift(img.reshape(1, 30), dy, dx, image_shape=(6, 5))
    assert flat.shape == (1, 30)
    assert np.argwhere(np.asarray(flat).reshape(6, 5)).tolist() == [[2 + dy, 3 + dx]]
    nhwc = aug.shift(np.stack([_one_hot_image(6, 5, 2, 3, channels=2)]), dy, dx)
    assert nhwc.shape == (1, 6, 5, 2)
    assert np.argwhere(np.asarray(nhwc)[0, ..., 1]).tolist() == [[2 + dy, 3 + dx]]


def test_shift_fills_with_zeros_and_drops_what_leaves():
    img = np.arange(1, 13, dtype=np.float32).reshape(1, 3, 4)
    out = np.asarray(aug.shift(img, 0, 1))[0]  # right by one
    np.testing.assert_array_equal(out, np.c_[np.zeros(3), img[0, :, :3]])
    out = np.asarray(aug.shift(img, -1, 0))[0]  # up by one
    np.testing.assert_array_equal(out, np.r_[img[0, 1:], np.zeros((1, 4))])
    # per-example shifts
    two = np.concatenate([img, img])
    out = np.asarray(aug.shift(two, jnp.array([0, 1]), jnp.array([0, 0])))
    np.testing.assert_array_equal(out[0], img[0])
    np.testing.assert_array_equal(out[1], np.r_[np.zeros((1, 4)), img[0, :2]])


def test_rotation_by_zero_is_identity_and_by_90_permutes_exactly():
    rng = np.random.default_rng(0)
    x = rng.random((3, 7, 5, 2), dtype=np.float32)  # non-square for the identity
    np.testing.assert_array_equal(np.asarray(aug.rotate(x, 0.0)), x)
    sq = rng.random((2, 6, 6, 1), dtype=np.float32)
    r90 = np.asarray(aug.rotate(sq, 90.0))
    np.testing.assert_array_equal(r90, np.rot90(sq, k=1, axes=(1, 2)))  # counter-clockwise as displayed
    r180 = np.asarray(aug.rotate(sq.reshape(2, 36), jnp.array([180.0, -90.0]), image_shape=(6, 6)))
    np.testing.assert_array_equal(r180[0].reshape(6, 6), np.rot90(sq[0, ..., 0], 2))
    np.testing.assert_array_equal(r180[1].reshape(6, 6), np.rot90(sq[1, ..., 0], -1))


def test_small_rotation_is_bilinear_and_keeps_the_centre():
    img = np.zeros((1, 5, 5), np.float32)
    img[0, 2, 2] = 1.0  # the centre pixel is the rotation's fixed point
    out = np.asarray(aug.rotate(img, 10.0))[0]
    assert out[2, 2] == pytest.approx(1.0)
    ramp = np.tile(np.arange(5, dtype=np.float32), (5, 1))[None]  # in(r, c) = c: a linear function
    out = np.asarray(aug.rotate(ramp, 10.0))[0]
    # out(r, c) = in(r_src, c_src) with the source point rotated back by θ about the centre (2, 2); bilinear
    # interpolation reproduces a linear function exactly, so wherever the source point lies inside the image
    # the output is c_src itself
    t = np.deg2rad(10.0)
    r, c = np.meshgrid(np.arange(5.0), np.arange(5.0), indexing="ij")
    r_src = 2 + np.cos(t) * (r - 2) + np.sin(t) * (c - 2)
    c_src = 2 + np.cos(t) * (c - 2) - np.sin(t) * (r - 2)
    inside = (np.abs(r_src - 2) <= 2) & (np.abs(c_src - 2) <= 2)
    assert inside.sum() > 15
    np.testing.assert_allclose(out[inside], c_src[inside], atol=1e-5)


def test_expand_builds_the_textbook_set():
    rng = np.random.default_rng(1)
    x = rng.random((4, 20), dtype=np.float32)
    y = np.array([3, 1, 4, 1])
    x5, y5 = aug.expand(x, y, image_shape=(4, 5))
    assert isinstance(x5, np.ndarray) and x5.shape == (20, 20) and y5.tolist() == y.tolist() * 5
    np.testing.assert_array_equal(x5[:4], x)
    for block, (dy, dx) in enumerate(MOVES.values(), start=1):
        np.testing.assert_array_equal(x5[4 * block:4 * block + 4], np.asarray(aug.shift(x, dy, dx, image_shape=(4, 5))))


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["axis", "square"]))
def test_random_shift_moves_each_example_by_an_allowed_displacement(seed, mode):
    rng = np.random.default_rng(seed)
    x = np.zeros((6, 7, 7), np.float32)
    x[:, 1:6, 1:6] = rng.random((6, 5, 5))  # a zero border: one-pixel shifts lose nothing
    out = np.asarray(aug.random_shift(1, mode=mode)(jax.random.key(seed), jnp.asarray(x)))
    allowed = [(0, 0), *MOVES.values()] if mode == "axis" else [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)]
    for i in range(6):
        matches = [m for m in allowed if np.array_equal(out[i], np.asarray(aug.shift(x[i:i + 1], *m))[0])]
        assert len(matches) == 1
    np.testing.assert_allclose(out.sum(axis=(1, 2)), x.sum(axis=(1, 2)), rtol=1e-6)  # mass kept


def test_augmentation_inside_fit_keeps_labels_and_shapes():
    ds = jn.data.load("digits")
    x, y = ds.x_train[:256], ds.y_train[:256]
    seen = []

    def spy(key, xb):  # the per-batch transform sees (B, 64) flat images and must return the same shape
        out = aug.chain(aug.random_shift(1, image_shape=(8, 8)), aug.random_rotation(10, image_shape=(8, 8)))(key, xb)
        seen.append(out.shape)
        return out

    rng = np.random.default_rng(0)  # start params from numpy: no initialiser to compile
    params = ({"w": jnp.asarray(rng.normal(size=(64, 16)) / 8, jnp.float32), "b": jnp.zeros(16)}, (),
              {"w": jnp.asarray(rng.normal(size=(16, 10)) / 4, jnp.float32), "b": jnp.zeros(10)})
    res = jn.fit(jn.models.mlp([64, 16, 10]), losses.softmax_cross_entropy, optim.sgd(0.3, momentum=0.9), (x, y),
                 epochs=6, batch_size=32, key=jax.random.key(0), augment=spy, progress=False, params=params,
                 state=((), (), ()))
    assert seen and all(s == (32, 64) for s in seen)  # traced once per compiled epoch
    # labels still match their (shifted, slightly rotated) images: the network learns well above chance (0.1)
    assert res.history[-1]["train_accuracy"] > 0.3


def test_bad_image_arguments():
    with pytest.raises(ValueError, match="image_shape"):
        aug.shift(np.zeros((2, 10), np.float32), 1, 0)
    with pytest.raises(ValueError, match="image_shape"):
        aug.rotate(np.zeros((2, 10), np.float32), 5.0, image_shape=(3, 3))
    with pytest.raises(ValueError, match="max_shift"):
        aug.random_shift(0)
