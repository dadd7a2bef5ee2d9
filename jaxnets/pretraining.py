"""Autoencoders and greedy layer-wise pretraining (Hinton & Salakhutdinov 2006; Bengio et al. 2007).

    ae = Autoencoder(64, 32)                 # encoder Dense(32)+sigmoid, decoder Dense(64)+sigmoid
    res = pretrain_layerwise([64, 32, 16, 10], x, y=labels, epochs=10, key=jax.random.key(0))
    res.layers[0].recon_before, res.layers[0].recon_after          # reconstruction cost per layer
    res.fine_tune.history, res.model, res.params                   # the supervised mlp after fine-tuning

Greedy: hidden layer l is the encoder of an autoencoder trained to reconstruct its input hˡ⁻¹ with an
unsupervised cost (½‖hˡ⁻¹ − x̂‖², batch mean, by default). Earlier layers are frozen: their codes
hˡ⁻¹ = encoderˡ⁻¹(… encoder¹(x)) are computed once, in evaluation mode, and are the training data of the next
autoencoder. Then the encoders are stacked under a fresh output layer into `models.mlp(sizes)` and the whole
network is fine-tuned with labels by `jaxnets.fit`.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxnets import losses
from jaxnets.core import Layer, serial
from jaxnets.initializers import glorot_uniform
from jaxnets.layers import Dense
from jaxnets.models import ACTIVATIONS, OUTPUTS, mlp, unit
from jaxnets.training import validate
from jaxnets.training.evaluation import evaluate, predict
from jaxnets.training.fit import FitResult, fit


def Autoencoder(n_in: int, n_hidden: int, activation="sigmoid", output_activation="sigmoid",
                w_init=glorot_uniform) -> Layer:
    """x (m, n_in) → encoder Dense(n_hidden) + activation → decoder Dense(n_in) + output_activation → x̂.

    params = (encoder params, decoder params); `ae.children[0]` is the encoder (a Layer: serial(Dense,
    activation)). Train it with targets equal to its inputs, e.g. `fit(ae, losses.quadratic, opt, (x, x), ...)`.
    Use a sigmoid output for inputs in [0, 1] and "identity" for unbounded codes (ReLU layers).
    """
    for name, n in (("n_in", n_in), ("n_hidden", n_hidden)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"Autoencoder({name}): a positive int is needed, got {n!r}")
    encoder = serial(Dense(n_hidden, w_init=w_init), unit(activation, ACTIVATIONS, "Autoencoder(activation)"),
                     name=f"encoder({n_in}->{n_hidden})")
    decoder = serial(Dense(n_in, w_init=w_init),
                     unit(output_activation, OUTPUTS, "Autoencoder(output_activation)"),
                     name=f"decoder({n_hidden}->{n_in})")
    return serial(encoder, decoder, name=f"Autoencoder({n_in}, {n_hidden})")


def encoder(ae: Layer) -> Layer:
    """The encoder half of an `Autoencoder` (its params are `params[0]`)."""
    return ae.children[0]


class LayerReport(NamedTuple):
    """One pretrained layer: its position (1-based hidden layer), sizes, the reconstruction cost of its
    autoencoder on its training codes before (random init) and after training, and the training history."""

    layer: int
    n_in: int
    n_hidden: int
    recon_before: float
    recon_after: float
    history: Any


class PretrainResult(NamedTuple):
    """layers: a LayerReport per hidden layer; encoder_params: the pretrained (Dense params) per hidden
    layer; model / params / state: the mlp built from the encoders and an output layer (fine-tuned when labels
    were given, else as initialised); fine_tune: the FitResult of fine-tuning, or None."""

    layers: list
    encoder_params: list
    model: Layer
    params: Any
    state: Any
    fine_tune: Optional[FitResult]


def _default_optimizer():
    from jaxnets.optim import sgd

    return sgd(0.5, momentum=0.9)


def pretrain_layerwise(sizes, x, *, epochs: int, key, y=None, batch_size: int = 32, optimizer=None,
                       activation="sigmoid", decoder_activation=None, loss=losses.quadratic,
                       fine_tune_epochs: Optional[int] = None, fine_tune_loss=losses.softmax_cross_entropy,
                       fine_tune_optimizer=None, output=None, val_data=None, gradients: str = "manual",
                       w_init=glorot_uniform, progress: bool = False, verbose: bool = False) -> PretrainResult:
    """Greedy layer-wise pretraining of the hidden layers of `models.mlp(sizes, activation)`, then fine-tuning.

    sizes: [n_in, h1, ..., hL, n_out] (as for `mlp`). x: (N, n_in) inputs. Each hidden layer's autoencoder
    trains `epochs` epochs of mini-batches of `batch_size` with `optimizer` (default sgd(0.5, momentum=0.9))
    on the reconstruction `loss` (default quadratic). decoder_activation: the decoders' output unit (default
    "sigmoid" for a sigmoid network, whose inputs and codes lie in [0, 1], else "identity"). y: labels for
    fine-tuning (skipped when None): `fit` of the stacked network with `fine_tune_loss`,
    `fine_tune_optimizer` (default: the same as `optimizer`) for `fine_tune_epochs` (default `epochs`),
    optionally with val_data. key: the PRNG key (autoencoder l uses fold_in(key, l); the output layer and
    fine-tuning fold_in(key, 0)).
    """
    if (not isinstance(sizes, (list, tuple)) or len(sizes) < 3
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes)):
        raise ValueError(f"pretrain_layerwise(sizes): give [n_in, h1, ..., n_out] with at least one hidden layer, "
                         f"got {sizes!r}")
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] != sizes[0]:
        raise ValueError(f"pretrain_layerwise: x must have shape (N, {sizes[0]}) to match sizes[0], got "
                         f"{tuple(x.shape)}")
    epochs = validate.positive_int(epochs, "epochs")
    optimizer = optimizer if optimizer is not None else _default_optimizer()
    if decoder_activation is None:
        # codes in (0, 1) (the hidden unit declares probability-like outputs, as Sigmoid does) -> sigmoid decoder
        bounded = unit(activation, ACTIVATIONS, "pretrain_layerwise(activation)").meta.outputs == "probabilities"
        decoder_activation = "sigmoid" if bounded else "identity"
    codes, reports, enc_params = x, [], []
    for l, (n_in, n_hidden) in enumerate(zip(sizes[:-2], sizes[1:-1]), start=1):
        ae = Autoencoder(n_in, n_hidden, activation, decoder_activation, w_init=w_init)
        k = jax.random.fold_in(key, l)
        p0, s0 = jax.jit(lambda key, ae=ae, n=n_in: ae.init(key, (n,))[1:])(k)
        before = evaluate(ae, loss, p0, s0, (codes, codes))["loss"]
        r = fit(ae, loss, optimizer, (codes, codes), epochs=epochs, batch_size=min(batch_size, codes.shape[0]),
                key=k, params=p0, state=s0, gradients=gradients, progress=progress, verbose=verbose)
        after = evaluate(ae, loss, r.params, r.state, (codes, codes))["loss"]
        reports.append(LayerReport(l, n_in, n_hidden, before, after, r.history))
        enc_params.append(r.params[0][0])  # encoder = serial(Dense, activation): the Dense params
        codes = predict(encoder(ae), r.params[0], r.state[0], codes)  # frozen: computed once
    model = mlp(list(sizes), activation=activation, output=output, w_init=w_init)
    # mlp's layers are Dense, activation, ..., Dense, activation, Dense[, output unit]: the pretrained Dense
    # params go in the even slots and only the output Dense layer is initialised here (from fold_in(key, 0))
    n_enc, n_layers = len(enc_params), len(model.children)
    head = jax.jit(lambda k: model.children[2 * n_enc].init(k, (sizes[-2],))[1])(jax.random.fold_in(key, 0))
    params = tuple(p for e in enc_params for p in (e, ())) + (head,) + ((),) * (n_layers - 2 * n_enc - 1)
    state = tuple(() for _ in range(n_layers))
    tuned = None
    if y is not None:
        tuned = fit(model, fine_tune_loss, fine_tune_optimizer if fine_tune_optimizer is not None else optimizer,
                    (x, y), epochs=fine_tune_epochs or epochs, batch_size=batch_size, key=jax.random.fold_in(key, 0),
                    params=params, state=state, val_data=val_data, gradients=gradients, progress=progress,
                    verbose=verbose)
        params, state = tuned.params, tuned.state
    return PretrainResult(reports, enc_params, model, params, state, tuned)
