"""Layers: each a `Layer(init, forward, backward)` with its hand-written backward next to its forward."""
from jaxnets.layers.activations import Identity, Relu, Sigmoid, Softmax, Step, Tanh
from jaxnets.layers.dense import Dense

__all__ = ["Dense", "Sigmoid", "Tanh", "Relu", "Softmax", "Identity", "Step"]
