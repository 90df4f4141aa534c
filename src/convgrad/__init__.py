"""convgrad: the convolution layer, forward and backward, correct for every geometry.

convgrad computes a neural network's convolution (1-D, 2-D, 3-D and transposed) and its
gradients with NumPy alone: stride, padding (ints, per axis, (lo, hi) pairs, 'same',
'valid'), dilation, groups and bias, checked against PyTorch's float64 autograd and
central differences. Every argument is validated first, with a message naming the bad
value; the fast engine (im2col + BLAS) keeps its scratch memory under a budget; a
reference engine of plain loops reads like the equations. Import it as ``import convgrad
as cg`` and call ``cg.conv2d(x, w, b, stride=2, padding='same')`` on x (N, C, H, W) and
w (F, C/groups, HH, WW); ``cg.conv2d_backward(dy, x, w, b, ...)`` returns (dx, dw, db).

The public API:

    conv1d, conv2d, conv3d, conv_transpose1d/2d/3d       the forward pass
    conv*_backward, conv_transpose*_backward             (dx, dw, db) from dy
    conv*_double_backward, conv_transpose*_double_backward   second-order gradients
    set_memory_budget, get_memory_budget, memory_budget   the fast engine's scratch budget
    convgrad.nn          layers (Conv2d, BatchNorm2d, ...), losses, SGD/Adam, save/load
    convgrad.cs231n      the cs231n course's layer API as a drop-in
    convgrad.gradcheck   numerical gradients and a gradient checker
    convgrad.pooling     max and average pooling, forward and backward
    convgrad.explain     symbolic derivations of the backward pass (``import
                         convgrad.explain``; needs SymPy)

The other modules (geometry, memory, engine, apps, _optional) are its inner workings.
Only NumPy is needed to import it; optional pieces (SymPy, matplotlib, scikit-learn,
PyTorch) are imported by the modules that use them; ``convgrad.nn``, ``convgrad.cs231n``,
``convgrad.gradcheck`` and ``convgrad.pooling`` are imported the first time they are
used, so ``import convgrad as cg; cg.nn.Conv2d`` works and the import stays fast. The
command line: ``convgrad --help``.
"""
import importlib
import sys
import types

from . import functional as _functional
from .functional import (conv1d, conv1d_backward, conv1d_double_backward, conv2d,
                         conv2d_backward, conv2d_double_backward, conv3d, conv3d_backward,
                         conv3d_double_backward, conv_transpose1d, conv_transpose1d_backward,
                         conv_transpose1d_double_backward, conv_transpose2d,
                         conv_transpose2d_backward, conv_transpose2d_double_backward,
                         conv_transpose3d, conv_transpose3d_backward,
                         conv_transpose3d_double_backward)
from .memory import get_memory_budget, memory_budget, set_memory_budget

__version__ = "0.1.0"

__all__ = [*_functional.__all__, "get_memory_budget", "set_memory_budget", "memory_budget"]
del _functional                  # only the list above was wanted (help() would show the alias)

_LAZY_SUBMODULES = ("nn", "cs231n", "gradcheck", "pooling")


class _Package(types.ModuleType):
    """convgrad's module type: the submodules above are imported on first attribute use
    (a method here rather than a module-level ``__getattr__``, which help() would list)."""

    def __getattr__(self, name: str):
        if name in _LAZY_SUBMODULES:
            return importlib.import_module(f".{name}", __name__)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_LAZY_SUBMODULES))


sys.modules[__name__].__class__ = _Package
