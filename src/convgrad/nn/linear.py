"""Linear (fully connected) layer: y = x w^T + b."""
from __future__ import annotations

import numpy as np

from ..geometry import positive_int
from ..memory import check_allocation
from .init import as_generator, check_dtype, default_bound, uniform
from .module import Module, quiet_arithmetic
from .parameter import Parameter

__all__ = ["Linear"]


class Linear(Module):
    """y = x @ weight.T + bias, on the last axis, as torch.nn.Linear.

    Args:
        in_features, out_features: positive ints.
        bias: whether to add a learned bias.
        dtype: of the parameters (np.float32 by default).
        rng: None, an int seed or a np.random.Generator; weight and bias start uniform on
            +-1/sqrt(in_features) (PyTorch's default).

    Shape:
        x: (*, in_features)    y: (*, out_features)    (* = any leading axes, e.g. N)
        weight: (out_features, in_features)    bias: (out_features,)
    """

    def __init__(self, in_features, out_features, bias=True, *, dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = positive_int(in_features, "Linear: in_features")
        self.out_features = positive_int(out_features, "Linear: out_features")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"Linear: bias must be True or False, got {bias!r}")
        dtype = check_dtype(dtype, "Linear: dtype")
        check_allocation((self.out_features, self.in_features), dtype, "Linear: the weight")
        rng = as_generator(rng, "Linear: rng")
        bound = default_bound(self.in_features)
        self.weight = Parameter(uniform(rng, bound, (self.out_features, self.in_features), dtype))
        self.bias = Parameter(uniform(rng, bound, (self.out_features,), dtype)) if bias else None
        self._x = None

    @quiet_arithmetic
    def forward(self, x):
        x = self._input(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: x must have shape (*, {self.in_features}) (last axis = "
                             f"in_features), got {x.shape}")
        self._x = x
        y = x @ self.weight.data.T                             # (*, out_features)
        if self.bias is not None:
            y += self.bias.data                                # in place: y is new
        return y

    def backward(self, dy):
        return self._backward(dy, input_grad=True)

    def _backward_parameters(self, dy) -> None:
        """dweight and dbias only (the first layer of a model: no dx)."""
        self._backward(dy, input_grad=False)

    @quiet_arithmetic
    def _backward(self, dy, input_grad: bool):
        x = self._saved(self._x)
        dy = self._grad(dy, x.shape[:-1] + (self.out_features,))
        dy_2d = dy.reshape(-1, self.out_features)              # (M, out), M = prod(*)
        x_2d = x.reshape(-1, self.in_features)                 # (M, in)
        self.weight.grad += dy_2d.T @ x_2d                     # (out, in)
        if self.bias is not None:
            self.bias.grad += dy_2d.sum(axis=0)
        return dy @ self.weight.data if input_grad else None   # (*, in_features)

    def extra_repr(self) -> str:
        text = f"in_features={self.in_features}, out_features={self.out_features}"
        if self.bias is None:
            text += ", bias=False"
        if self.weight.dtype != np.float32:
            text += f", dtype={self.weight.dtype}"
        return text
