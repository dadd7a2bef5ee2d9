"""PyTorch peer (CPU, 2 threads): `nn.Sequential`, `torch.optim`, the standard zero_grad/backward/step loop.

No DataLoader: each epoch permutes the tensors once (`x[perm]`) and slices views for the mini-batches.

OpenMP wait policy: unless the environment says otherwise, this module sets OMP_WAIT_POLICY=PASSIVE before
torch loads. With the default (spinning) policy, on a 2-core machine shared with other processes, a torch
thread that busy-waits at a barrier while its partner is descheduled made steps 50-150× slower (26-75 ms
instead of ~0.5 ms for the nielsen step, measured under a load average of 10); PASSIVE costs a little on an
idle machine and avoids that collapse. Set OMP_WAIT_POLICY=ACTIVE to measure the default.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

THREADS = 2


def _model(cfg):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(cfg.sizes[:-1], cfg.sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        last = i == len(cfg.sizes) - 2
        if cfg.activation == "sigmoid":
            layers.append(nn.Sigmoid())
        elif not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _optimizer(cfg, params):
    kind, lr, *rest = cfg.optimizer
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if kind == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=rest[0])
    return torch.optim.Adam(params, lr=lr)


def build(cfg, x, y, seed):
    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    x = torch.from_numpy(x)
    y = torch.from_numpy(y).long()
    model = _model(cfg)
    opt = _optimizer(cfg, model.parameters())
    n_out = cfg.sizes[-1]

    if cfg.loss == "quadratic":
        def loss_fn(a, yb):
            return 0.5 * ((a - F.one_hot(yb, n_out).to(a.dtype)) ** 2).sum(dim=1).mean()
    else:
        loss_fn = F.cross_entropy

    def run(max_batches=None):
        perm = torch.randperm(x.shape[0])
        xs, ys = x[perm], y[perm]
        loss = None
        for start in list(range(0, x.shape[0], cfg.batch))[:max_batches]:
            xb, yb = xs[start:start + cfg.batch], ys[start:start + cfg.batch]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        return loss.item()

    return run
