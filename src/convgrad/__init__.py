"""convgrad: the convolution layer, forward and backward, correct for every geometry.

Only NumPy is needed to import it; optional pieces (SymPy, matplotlib, scikit-learn,
PyTorch) are imported by the modules that use them.
"""
from .functional import (conv1d, conv1d_backward, conv2d, conv2d_backward, conv3d,
                         conv3d_backward, conv_transpose1d, conv_transpose1d_backward,
                         conv_transpose2d, conv_transpose2d_backward, conv_transpose3d,
                         conv_transpose3d_backward)
from .memory import get_memory_budget, memory_budget, set_memory_budget

__version__ = "0.1.0"

__all__ = [
    "conv1d", "conv2d", "conv3d",
    "conv1d_backward", "conv2d_backward", "conv3d_backward",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_transpose1d_backward", "conv_transpose2d_backward", "conv_transpose3d_backward",
    "get_memory_budget", "set_memory_budget", "memory_budget",
]
