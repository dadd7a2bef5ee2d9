"""Ready-made optimizers with optax's names, arguments, defaults and state layout.

Each is a `chain` of building blocks; the comment above each chain gives the full update rule. Hyper-parameters
may be numbers or concrete NumPy/JAX arrays (type, range and finiteness checked here) or tracers (taken as given,
so that `jax.vmap` can sweep them through one compiled program). `learning_rate` may also be a schedule
`count -> lr`. Anything else (a string, a list, None where a number is needed) is a TypeError naming the argument.
"""
from __future__ import annotations

from typing import Any, Optional

from jaxnets.optim import _util
from jaxnets.optim.base import GradientTransformation, ScalarOrSchedule, chain, identity
from jaxnets.optim.transforms import scale_by_adam, scale_by_learning_rate, scale_by_rms, scale_by_rss
from jaxnets.optim.transforms import scale_by_stddev, trace
from jaxnets.optim.weight_decay import add_decayed_weights


def sgd(
    learning_rate: ScalarOrSchedule, momentum: Optional[Any] = None, nesterov: bool = False
) -> GradientTransformation:
    """Stochastic gradient descent, optionally with heavy-ball or Nesterov momentum (PyTorch convention).

        m_t = g_t + μ m_{t-1}  (m_0 = 0);   d_t = m_t, or g_t + μ m_t if nesterov;   u_t = -lr_t d_t
    Without momentum u_t = -lr_t g_t. The buffer holds raw gradients, so with a constant lr this equals
    Nielsen's v → μv − η∇C, w → w + v (v = -lr m).
    State: (TraceState | EmptyState, EmptyState | ScaleByScheduleState).
    """
    _util.check_learning_rate("sgd", learning_rate)
    _util.check_decay("sgd", "momentum", momentum, optional=True)
    _util.check_flag("sgd", "nesterov", nesterov)
    if nesterov and momentum is None:
        raise ValueError("sgd: nesterov=True needs a momentum, e.g. sgd(0.1, momentum=0.9, nesterov=True).")
    first = trace(decay=momentum, nesterov=nesterov) if momentum is not None else identity()
    return chain(first, scale_by_learning_rate(learning_rate))


def adagrad(
    learning_rate: ScalarOrSchedule, initial_accumulator_value: Any = 0.1, eps: Any = 1e-7
) -> GradientTransformation:
    """Adagrad (Duchi et al. 2011) with optax's defaults: eps inside the root, accumulator starting at 0.1.

        γ_t = γ_{t-1} + g_t²  (γ_0 = initial_accumulator_value);   u_t = -lr_t g_t / sqrt(γ_t + eps)
    State: (ScaleByRssState(sum_of_squares), EmptyState | ScaleByScheduleState).
    """
    _util.check_learning_rate("adagrad", learning_rate)
    return chain(scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate))


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: Optional[Any] = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> GradientTransformation:
    """RMSProp (Tieleman & Hinton), optionally centred, bias-corrected and with momentum.

        ν_t = (1-ρ) g_t² + ρ ν_{t-1}  (ν_0 = initial_scale)
        centred: also μ_t = (1-ρ) g_t + ρ μ_{t-1}, and ν - μ² replaces ν below
        s_t = -lr_t g_t / sqrt(ν̂_t + eps)   (or / (sqrt(ν̂_t) + eps) with eps_in_sqrt=False)
        with momentum: b_t = s_t + m b_{t-1}, u_t = b_t (or s_t + m b_t if nesterov); else u_t = s_t
    The learning rate sits *inside* the momentum buffer (TF1 convention; PyTorch's for a constant lr).
    State: (ScaleByRms[WithCount]State | ScaleByRStdDev[WithCount]State, lr state, TraceState | EmptyState).
    """
    _util.check_learning_rate("rmsprop", learning_rate)
    _util.check_decay("rmsprop", "momentum", momentum, optional=True)
    for flag, value in (("eps_in_sqrt", eps_in_sqrt), ("centered", centered), ("nesterov", nesterov),
                        ("bias_correction", bias_correction)):
        _util.check_flag("rmsprop", flag, value)
    if nesterov and momentum is None:
        raise ValueError("rmsprop: nesterov=True needs a momentum, e.g. rmsprop(1e-3, momentum=0.9, nesterov=True).")
    scaler = scale_by_stddev if centered else scale_by_rms
    return chain(
        scaler(decay, eps, initial_scale, eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction),
        scale_by_learning_rate(learning_rate),
        trace(decay=momentum, nesterov=nesterov) if momentum is not None else identity(),
    )


def adam(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    """Adam (Kingma & Ba 2015, Algorithm 1), or NAdam-style with nesterov=True.

        u_t = -lr_t μ̂_t / (sqrt(ν̂_t + eps_root) + eps),  μ̂, ν̂ the bias-corrected moments (see scale_by_adam)
    State: (ScaleByAdamState(count, mu, nu), EmptyState | ScaleByScheduleState).
    """
    _util.check_learning_rate("adam", learning_rate)
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch form: the decay is scaled by lr too.

        u_t = -lr_t (μ̂_t / (sqrt(ν̂_t + eps_root) + eps) + wd p_t)
    `mask` (bool pytree or function of params) selects the leaves that are decayed; Adam's moments are kept
    for all leaves. Needs `params` in `update`. State: (ScaleByAdamState, EmptyState | WeightDecaySchedule |
    MaskedState, EmptyState | ScaleByScheduleState).
    """
    _util.check_learning_rate("adamw", learning_rate)
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, nesterov=nesterov),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
