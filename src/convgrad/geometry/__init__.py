"""The geometry of an N-d convolution or pooling: every argument normalized and validated, once.

Every public function of convgrad passes its arguments through this package before any
work is done, so every error message lives here. Internally padding is always explicit
``(lo, hi)`` pairs per spatial axis; strings ('same', 'valid') never leave this package.
Unbatched inputs (x without its N axis, as PyTorch accepts them) are given the batch axis
here (N = 1) and the geometry records it (``unbatched``); the functions remove it again
from what they return.

One idea per module:

    scalars        sizes, strides, dilations, paddings and switches (ntuple, normalize_padding)
    algorithm      the ``algorithm`` keyword (ALGORITHMS, check_algorithm)
    arrays         what x, w, b, dy may be (as_float_array), their layouts and shapes
    padding_modes  ``padding_mode`` and its limits (what each mode does: convgrad.padding)
    conv           ConvGeometry: convolution and transposed convolution, their gradients
    pool           PoolGeometry: pooling windows with PyTorch's options
"""
from .algorithm import ALGORITHMS, check_algorithm
from .arrays import SUPPORTED_DTYPES, as_float_array, as_ndarray, check_batched, check_shape
from .conv import ConvGeometry, check_grad_output, check_groups, check_second_order, \
    conv_geometry, conv_transpose_geometry, output_size, same_padding
from .padding_modes import PADDING_MODES, check_padding_mode
from .pool import PoolGeometry, check_avg_options, pool_geometry, pool_output_size
from .scalars import PADDING_STRINGS, check_flag, normalize_padding, ntuple, positive_int

__all__ = [
    "ALGORITHMS",
    "PADDING_MODES",
    "PADDING_STRINGS",
    "SUPPORTED_DTYPES",
    "ConvGeometry",
    "PoolGeometry",
    "as_float_array",
    "as_ndarray",
    "check_algorithm",
    "check_avg_options",
    "check_batched",
    "check_flag",
    "check_grad_output",
    "check_groups",
    "check_padding_mode",
    "check_second_order",
    "check_shape",
    "conv_geometry",
    "conv_transpose_geometry",
    "normalize_padding",
    "ntuple",
    "output_size",
    "pool_geometry",
    "pool_output_size",
    "positive_int",
    "same_padding",
]
