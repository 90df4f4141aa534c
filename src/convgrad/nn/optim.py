"""Optimizers: SGD (momentum, Nesterov, weight decay) and Adam, with PyTorch's update rules.

Both update each :class:`Parameter`'s ``data`` in place from its ``grad``:

    opt = Adam(model.parameters(), lr=1e-3)
    for x, t in batches:
        opt.zero_grad()
        loss.forward(model(x), t)
        model.backward(loss.backward())
        opt.step()

The formulas follow torch.optim exactly (same order of operations where it matters),
so a run matches PyTorch's to rounding; see each class.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .parameter import Parameter

__all__ = ["Optimizer", "SGD", "Adam"]


def _number(value, name: str, owner: str, *, low: float = 0.0, below: float | None = None):
    """A finite real number >= low (and < below), as a float; the error names the value.

    Not a number (a string, None, a bool): TypeError. NaN, inf, or out of range: ValueError.
    """
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r} "
                        f"({type(value).__name__})")
    allowed = f">= {low}" + (f" and < {below}" if below is not None else "")
    try:
        number = float(value)
    except OverflowError:                                     # an int of 400 digits
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{owner}: {name} must be a finite number {allowed}, got {value!r}")
    if number < low or (below is not None and number >= below):
        raise ValueError(f"{owner}: {name} must be {allowed}, got {value!r}")
    return number


class Optimizer:
    """Holds the parameters; ``step()`` updates them, ``zero_grad()`` clears their grads."""

    def __init__(self, params) -> None:
        name = type(self).__name__
        if isinstance(params, Parameter):
            raise TypeError(f"{name}: params must be an iterable of Parameters (e.g. "
                            f"model.parameters()), got a single Parameter; wrap it in a list")
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{name} got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: params[{i}] is {p!r} ({type(p).__name__}), not a "
                                f"convgrad.nn.Parameter")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{name}: a parameter appears more than once in params")
        self.state: list[dict] = [{} for _ in self.params]

    @property
    def lr(self) -> float:
        """The learning rate: a finite number >= 0, checked whenever it is set (a schedule
        that produces NaN or inf is stopped at once)."""
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = _number(value, "lr", type(self).__name__)

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        """Update every parameter. Overflow to inf and NaN propagate silently, as in
        PyTorch (a training loop checks its loss); NumPy's warnings are not printed."""
        with np.errstate(over="ignore", invalid="ignore"):
            for p, state in zip(self.params, self.state):
                self._update(p, state)

    def _update(self, p: Parameter, state: dict) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, as torch.optim.SGD:

        g = grad + weight_decay * p
        if momentum:  buf = g (first step), else momentum * buf + (1 - dampening) * g
                      g = g + momentum * buf (nesterov)  or  g = buf
        p = p - lr * g
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False) -> None:
        super().__init__(params)
        self.lr = lr
        self.momentum = _number(momentum, "momentum", "SGD")
        self.dampening = _number(dampening, "dampening", "SGD")
        self.weight_decay = _number(weight_decay, "weight_decay", "SGD")
        if not isinstance(nesterov, bool):
            raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"SGD: Nesterov momentum needs momentum > 0 and dampening = 0, "
                             f"got momentum={momentum!r}, dampening={dampening!r}")
        self.nesterov = nesterov

    def _update(self, p: Parameter, state: dict) -> None:
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype)
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= (self.lr * g).astype(p.dtype, copy=False)

    def __repr__(self) -> str:
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, dampening={self.dampening}, "
                f"weight_decay={self.weight_decay}, nesterov={self.nesterov})")


class Adam(Optimizer):
    """Adam, as torch.optim.Adam (amsgrad=False); t counts steps from 1:

        g = grad + weight_decay * p                 (L2 penalty, not AdamW's decoupling)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0) -> None:
        super().__init__(params)
        self.lr = lr
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_number(betas[0], "betas[0]", "Adam", below=1.0),
                      _number(betas[1], "betas[1]", "Adam", below=1.0))
        self.eps = _number(eps, "eps", "Adam")
        self.weight_decay = _number(weight_decay, "weight_decay", "Adam")

    def _update(self, p: Parameter, state: dict) -> None:
        # The same operations in the same order as before (and as torch.optim.Adam), in
        # place into one scratch array: no temporary per operation (BENCHMARKS.md).
        beta1, beta2 = self.betas
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
        state["step"] += 1
        t = state["step"]
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        buf = np.subtract(g, m, out=np.empty_like(m))           # torch's lerp(m, g, 1 - beta1):
        buf *= 1 - beta1                                        # m += (g - m) * (1 - beta1)
        m += buf
        v *= beta2
        np.multiply(g, 1 - beta2, out=buf)                      # v += (1 - beta2) * g * g
        buf *= g
        v += buf
        bias_correction1 = 1 - beta1 ** t
        bias_correction2 = 1 - beta2 ** t
        step_size = self.lr / bias_correction1
        np.sqrt(v, out=buf)                                     # sqrt(v) / sqrt(bc2) + eps
        buf /= math.sqrt(bias_correction2)
        buf += self.eps
        np.divide(m, buf, out=buf)                              # step_size * (m / denom)
        buf *= step_size
        p.data -= buf

    def __repr__(self) -> str:
        return (f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.weight_decay})")
