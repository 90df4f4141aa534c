"""convgrad: the convolution layer, forward and backward, correct for every geometry.

Only NumPy is needed to import it; optional pieces (SymPy, matplotlib, scikit-learn,
PyTorch) are imported by the modules that use them. ``convgrad.nn`` (the layers) is
imported the first time it is used, so ``import convgrad as cg; cg.nn.Conv2d`` works.
"""
from .functional import (conv1d, conv1d_backward, conv1d_double_backward, conv2d,
                         conv2d_backward, conv2d_double_backward, conv3d, conv3d_backward,
                         conv3d_double_backward, conv_transpose1d, conv_transpose1d_backward,
                         conv_transpose1d_double_backward, conv_transpose2d,
                         conv_transpose2d_backward, conv_transpose2d_double_backward,
                         conv_transpose3d, conv_transpose3d_backward,
                         conv_transpose3d_double_backward)
from .memory import get_memory_budget, memory_budget, set_memory_budget

__version__ = "0.1.0"

__all__ = [
    "conv1d", "conv2d", "conv3d",
    "conv1d_backward", "conv2d_backward", "conv3d_backward",
    "conv1d_double_backward", "conv2d_double_backward", "conv3d_double_backward",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_transpose1d_backward", "conv_transpose2d_backward", "conv_transpose3d_backward",
    "conv_transpose1d_double_backward", "conv_transpose2d_double_backward",
    "conv_transpose3d_double_backward",
    "get_memory_budget", "set_memory_budget", "memory_budget",
]

_LAZY_SUBMODULES = ("nn",)


def __getattr__(name: str):
    """``convgrad.nn`` on first use (it is not imported by ``import convgrad``)."""
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
