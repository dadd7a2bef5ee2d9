"""The training ladder stays short: from `fit` to a layer's `backward`, the jaxnets frames and files on the stack
(issue 20 asked for at most 6 frames; this records where the ladder stands, so that it cannot grow unnoticed)."""
import traceback

import jax
import numpy as np
import pytest

import jaxnets as jn
from jaxnets.core import Layer

LIMITS = {"scan": 6, "step": 6}   # issue 20's goal; measured 10 and 9 in 0.2.0, 8 and 7 after the drivers module


def _stack_in_backward(loop: str) -> list:
    dense, seen = jn.Dense(3), []

    def backward(params, cache, dy):
        stack = traceback.extract_stack()
        if any(f.name == "run" and f.filename.endswith("engine.py") for f in stack):   # training, not a check
            seen.append([f for f in stack if "/jaxnets/" in f.filename.replace("\\", "/")])
        return dense.backward(params, cache, dy)

    probe = Layer(dense.init, dense.forward, backward, "probe")
    x = np.random.default_rng(0).normal(size=(24, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    jn.fit(jn.serial(probe, jn.Relu(), jn.Dense(2)), "softmax_cross_entropy", jn.optim.sgd(0.0137), (x, y),
           epochs=1, batch_size=8, key=jax.random.key(3), loop=loop, progress=False)
    assert seen, "the probe's backward never ran inside the engine"
    stack = seen[0]
    start = max(i for i, f in enumerate(stack) if f.name == "fit")
    return stack[start:]


@pytest.mark.parametrize("loop", ["scan", "step"])
def test_fit_reaches_a_layers_backward_in_few_frames(loop):
    path = _stack_in_backward(loop)
    shown = "\n".join(f"{f.filename.rsplit('jaxnets/', 1)[-1]}:{f.lineno} {f.name}" for f in path)
    assert len(path) <= LIMITS[loop], shown
    files = {f.filename for f in path}
    assert len(files) <= 5, shown   # fit, engine, drivers, gradients and core (serial's backward)
