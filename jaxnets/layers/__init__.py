"""Layers: each a `Layer(init, forward, backward)` with its hand-written backward next to its forward, except
`from_function` (a layer from plain JAX code whose backward is `jax.vjp`, marked `Meta(autodiff_backward=True)`)."""
from jaxnets.layers.activations import (Elu, Gelu, Identity, LeakyRelu, LogSoftmax, Relu, Sigmoid, Softmax, Softplus,
                                        Step, Tanh, elementwise)
from jaxnets.layers.dense import Dense

__all__ = ["Dense", "Sigmoid", "Tanh", "Relu", "Softmax", "Identity", "Step", "LeakyRelu", "Elu", "Gelu", "Softplus",
           "LogSoftmax", "elementwise"]
from jaxnets.layers.batchnorm import BatchNorm
from jaxnets.layers.conv import Conv2D
from jaxnets.layers.dropout import Dropout
from jaxnets.layers.pool import AvgPool, GlobalAvgPool, L2Pool, MaxPool
from jaxnets.layers.reshape import Flatten, Reshape
from jaxnets.layers.layernorm import LayerNorm
from jaxnets.layers.combinators import FanInConcat, FanInSum, FanOut, branches, residual
from jaxnets.layers.from_function import from_function

__all__ += ["Conv2D", "MaxPool", "L2Pool", "AvgPool", "GlobalAvgPool", "Flatten", "Reshape", "Dropout", "BatchNorm",
            "LayerNorm", "FanOut", "FanInSum", "FanInConcat", "branches", "residual", "from_function"]
