"""Dropout: in training, zero each value with probability p and scale the rest by 1/(1-p)."""
from __future__ import annotations

import numbers

import numpy as np

from .init import as_generator
from .module import Module, quiet_arithmetic

__all__ = ["Dropout"]


class Dropout(Module):
    """Inverted dropout, as torch.nn.Dropout: the identity in eval mode.

    In training mode each entry is kept with probability 1 - p and then multiplied by
    1 / (1 - p), so the expected output equals the input; the backward pass applies the
    very same mask. p = 1 drops everything (the output is zero).

    Args:
        p: the probability of dropping an entry, in [0, 1].
        rng: None, an int seed or a np.random.Generator: where the masks come from
            (a seeded generator makes the masks, and so training, reproducible).

    Shape:
        x: any shape    y, dy, dx: x's shape
    """

    def __init__(self, p: float = 0.5, *, rng=None) -> None:
        super().__init__()
        if not isinstance(p, numbers.Real) or isinstance(p, bool):
            raise TypeError(f"Dropout: p must be a probability (a float in [0, 1]), got {p!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = as_generator(rng, "Dropout: rng")
        self._scale = None      # mask / (1 - p), or 1.0 where the layer was the identity
        self._shape = None      # the forward input's shape

    @quiet_arithmetic
    def forward(self, x):
        x = self._input(x)                                     # integers -> float64
        self._shape = x.shape
        if not self.training or self.p == 0.0:
            self._scale = 1.0
            return x
        if self.p == 1.0:
            self._scale = np.zeros_like(x)
        else:
            keep = self.rng.random(x.shape) >= self.p          # P(keep) = 1 - p
            self._scale = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._scale

    @quiet_arithmetic
    def backward(self, dy):
        scale = self._saved(self._scale)
        return self._grad(dy, self._shape) * scale

    def extra_repr(self) -> str:
        return f"p={self.p}"
