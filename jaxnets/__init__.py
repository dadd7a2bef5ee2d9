"""jaxnets: functional deep learning in JAX with hand-written backprop verified against autodiff.

Models are pure functions over parameter pytrees (see `jaxnets.core`); every layer, activation and loss
carries a hand-written backward pass, cross-checked by `jax.grad` and by finite differences
(`jaxnets.gradcheck`).
"""
from jaxnets import gradcheck, gradients, initializers, losses
from jaxnets.core import Ctx, Layer, apply, init, serial
from jaxnets.layers import Dense, Identity, Relu, Sigmoid, Softmax, Step, Tanh

__version__ = "0.1.0"
