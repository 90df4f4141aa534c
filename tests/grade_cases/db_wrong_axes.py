"""db summed over the channels and spatial axes instead of the batch and spatial axes."""
import numpy as np

from correct_loops import conv_backward_naive as right_backward
from correct_loops import conv_forward_naive  # noqa: F401


def conv_backward_naive(dout, cache):
    dx, dw, _ = right_backward(dout, cache)
    return dx, dw, np.sum(dout, axis=(1, 2, 3))
