"""Random generators, dtypes and PyTorch's default initialization.

PyTorch initializes the weights of Linear and ConvNd with
``kaiming_uniform_(w, a=sqrt(5))``: uniform on [-bound, bound] with

    gain  = sqrt(2 / (1 + a^2)) = sqrt(1/3)
    bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in),

and their biases uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)] too; fan_in is the number
of inputs one output sums over (in_features, or C/groups * prod(kernel)). The numbers are
drawn in float64 and rounded to the layer's dtype, so one seed gives the same weights
(up to rounding) in float32 and float64.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["as_generator", "check_dtype", "default_bound", "uniform"]

_DTYPES = (np.float32, np.float64)


def as_generator(rng, name: str = "rng") -> np.random.Generator:
    """A NumPy Generator from None (fresh entropy), an int seed, or a Generator (used as is)."""
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise ValueError(f"{name}={rng!r}: a seed must be a non-negative int")
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name} must be None, an int seed or a numpy.random.Generator, got "
                    f"{rng!r} ({type(rng).__name__})")


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """np.float32 or np.float64 (or their names) as a np.dtype; anything else is refused."""
    try:
        result = np.dtype(dtype)
    except TypeError:
        result = None
    if result is None or result.type not in _DTYPES:
        raise TypeError(f"{name}={dtype!r} is not supported; expected np.float32 (the "
                        f"default) or np.float64")
    return result


def default_bound(fan_in: int) -> float:
    """1 / sqrt(fan_in): PyTorch's default init bound for weights (a = sqrt(5)) and biases."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def uniform(rng: np.random.Generator, bound: float, shape, dtype) -> np.ndarray:
    """Uniform samples on [-bound, bound), drawn in float64, returned in ``dtype``."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)
