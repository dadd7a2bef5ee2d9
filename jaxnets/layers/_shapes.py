"""Argument checks shared by the image layers (convolution, pooling, reshapes)."""
from __future__ import annotations

import math


def pair(value, what: str, name: str) -> tuple[int, int]:
    """An int or a pair of ints as (height, width); raises naming `name` and `what` on anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{name}: {what} must be an int or a pair of ints (height, width), got {value!r}")
    if min(value) < 1:
        raise ValueError(f"{name}: {what} must be positive, got {tuple(value)}")
    return int(value[0]), int(value[1])


def describe(hw: tuple[int, int]) -> str:
    """(3, 3) -> '3', (3, 5) -> '(3, 5)': the short form used in layer names."""
    return str(hw[0]) if hw[0] == hw[1] else str(tuple(hw))


def check_image_shape(name: str, input_shape, hint: str) -> tuple[int, int, int]:
    """Per-example image shape (H, W, C), or a ValueError naming the layer and the fix."""
    if len(input_shape) != 3:
        raise ValueError(
            f"{name}: expects images of per-example shape (H, W, C) (NHWC with the batch axis), "
            f"got {tuple(input_shape)}; "
            f"{hint}"
        )
    return tuple(int(d) for d in input_shape)


def check_image_batch(name: str, x) -> None:
    """Forward-time check that `x` is a batch of NHWC images."""
    if x.ndim != 4:
        raise ValueError(
            f"{name}: input has shape {tuple(x.shape)} but this layer expects a batch of images (batch, H, W, C); "
            "reshape flat data with Reshape((H, W, C)) or load images with flatten=False"
        )


def size(shape) -> int:
    return int(math.prod(shape))
