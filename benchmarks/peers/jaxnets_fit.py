"""jaxnets: `jaxnets.fit` itself, one epoch per `runner()` call, so its epochs interleave with the peers'.

`fit` runs in a worker thread with `epochs` set high and a callback that hands control back after each epoch
and waits for the next `runner()` call; the time of a call is therefore everything `fit` does per epoch (the
compiled epoch, the host fetch of its metrics, history and bookkeeping) plus a thread hand-off (~0.1 ms).
`runner.close()` makes the callback return True, which ends `fit` normally.
"""
from __future__ import annotations

import queue
import threading

import jax

import jaxnets

SIGMOID_INIT = "nielsen_normal"


def model_and_loss(cfg):
    """The config's network as a jaxnets model (sigmoid nets use Nielsen's N(0, 1/n_in) weights) and cost."""
    act = jaxnets.Sigmoid if cfg.activation == "sigmoid" else jaxnets.Relu
    layers = []
    for i, n in enumerate(cfg.sizes[1:]):
        last = i == len(cfg.sizes) - 2
        if cfg.activation == "sigmoid":
            layers += [jaxnets.Dense(n, w_init=getattr(jaxnets.initializers, SIGMOID_INIT)), act]
        else:
            layers += [jaxnets.Dense(n)] + ([] if last else [act])
    loss = jaxnets.losses.quadratic if cfg.loss == "quadratic" else jaxnets.losses.softmax_cross_entropy
    return jaxnets.serial(*layers), loss


def build(cfg, x, y, seed, *, gradients="manual", optimizer=None, fit_kwargs=None):
    from peers import optax_optimizer

    model, loss = model_and_loss(cfg)
    return runner(model, loss, optimizer or optax_optimizer(cfg), x, y, cfg.batch, seed, gradients=gradients,
                  fit_kwargs=fit_kwargs)


def host_batches(x, y, batch, seed):
    """A batch factory for `fit`'s streaming path: each call yields the (xb, yb) numpy mini-batches of one
    epoch, in the order of a fresh host-side permutation (the last, partial batch included)."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def epoch():
        perm = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = perm[start:start + batch]
            yield x[idx], y[idx]

    return epoch


def runner(model, loss, optimizer, x, y, batch, seed, *, gradients="manual", fit_kwargs=None, stream=False):
    """The epoch runner of `jaxnets.fit(model, loss, optimizer, (x, y), batch_size=batch, ...)` for any model
    (`build` makes the config's MLP; benchmarks/device.py passes CNNs and `fit` options such as `loop`);
    stream=True feeds fit the batches of `host_batches` instead of the (x, y) arrays."""
    train = host_batches(x, y, batch, seed) if stream else (x, y)
    resume, finished = threading.Semaphore(0), queue.Queue()
    stop = [False]
    errors = []

    def callback(epoch, row, ts):
        finished.put(row)
        resume.acquire()
        return stop[0]

    def work():
        try:
            jaxnets.fit(model, loss, optimizer, train, epochs=10**9, batch_size=None if stream else batch,
                        key=jax.random.PRNGKey(seed), gradients=gradients, progress=False, callbacks=[callback],
                        **(fit_kwargs or {}))
        except BaseException as err:  # reported to the caller of runner()
            errors.append(err)
            finished.put(None)

    thread = threading.Thread(target=work, daemon=True)

    def run():
        if thread.ident is None:
            thread.start()
        else:
            resume.release()
        row = finished.get()
        if row is None:
            raise RuntimeError("jaxnets.fit failed") from errors[0]
        return row

    def close():
        if thread.ident is not None and thread.is_alive():
            stop[0] = True
            resume.release()
            thread.join()

    run.close = close
    return run
