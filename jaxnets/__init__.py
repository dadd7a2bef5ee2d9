"""jaxnets: functional deep learning in JAX with hand-written backprop verified against autodiff.

Models are pure functions over parameter pytrees (see `jaxnets.core`); every layer, activation and loss
carries a hand-written backward pass, cross-checked by `jax.grad` and by finite differences
(`jaxnets.gradcheck`).
"""
from jaxnets import gradcheck, gradients, initializers, losses
from jaxnets import checkpoint, data
from jaxnets.saved_model import load_model
from jaxnets import optim
from jaxnets.core import Ctx, Layer, Meta, apply, init, serial
from jaxnets.compile_cache import clear_compilation_cache, enable_compilation_cache
from jaxnets.layers import (Dense, Elu, Gelu, Identity, LeakyRelu, LogSoftmax, Relu, Sigmoid, Softmax, Softplus, Step,
                            Tanh, elementwise)
from jaxnets.layers import (AvgPool, BatchNorm, Conv2D, Dropout, Flatten, GlobalAvgPool, L2Pool, LayerNorm, MaxPool,
                            Reshape)
from jaxnets.layers import FanInConcat, FanInSum, FanOut, branches, residual
from jaxnets import models
from jaxnets.summary import summary
from jaxnets import training
from jaxnets import parallel
from jaxnets.training import (CSVLogger, EarlyStopping, FitResult, History, JSONLinesLogger, TensorBoardLogger,
                              TrainingDivergedError, evaluate, fit, plot_history, predict)
from jaxnets import diagnostics, ensembles, pretraining, sweeps
from jaxnets.ensembles import EnsembleResult, fit_ensemble, vote
from jaxnets.pretraining import pretrain_layerwise
from jaxnets.sweeps import grid_search, random_search

__version__ = "0.2.0"

__all__ = [
    # modules
    "checkpoint", "data", "diagnostics", "ensembles", "gradcheck", "gradients", "initializers", "losses", "models",
    "optim", "parallel", "pretraining", "sweeps", "training", "core", "layers", "compile_cache", "memo",
    # the Layer protocol and layers
    "Ctx", "Layer", "Meta", "apply", "init", "serial", "summary", "Dense", "Elu", "Gelu", "Identity", "LeakyRelu",
    "LogSoftmax", "Relu", "Sigmoid", "Softmax", "Softplus", "Step", "Tanh", "elementwise", "AvgPool", "BatchNorm",
    "Conv2D", "Dropout", "Flatten", "GlobalAvgPool", "L2Pool", "LayerNorm", "MaxPool", "Reshape", "FanInConcat",
    "FanInSum", "FanOut", "branches", "residual",
    # training and results
    "fit", "evaluate", "predict", "plot_history", "CSVLogger", "EarlyStopping", "FitResult", "History",
    "JSONLinesLogger", "TensorBoardLogger", "TrainingDivergedError", "EnsembleResult", "fit_ensemble", "vote",
    "pretrain_layerwise", "grid_search", "random_search", "load_model",
    # compilation
    "enable_compilation_cache", "clear_compilation_cache",
]
